import type { ImageSource } from '../../ports/image-source/image-source.js';
import type { SigstoreBundleBlob } from '../../ports/signatures/sigstore-bundle.js';
import { DigestMismatchError, InvalidManifestError } from '../errors.js';
import { Descriptor } from '../image/descriptor.js';
import { Digest } from '../image/digest.js';
import { isObject, optionalString, parseJsonObject } from '../image/json-fields.js';
import { readVerifiedBlob } from '../image/verified-blob.js';
import { COSIGN_SIGN_PREDICATE } from './in-toto-statement.js';

/** The sigstore bundle media types: v0.1 and v0.2 with a version parameter, v0.3 in both spellings. */
export const SIGSTORE_BUNDLE_MEDIA_TYPES: readonly string[] = [
  'application/vnd.dev.sigstore.bundle+json;version=0.1',
  'application/vnd.dev.sigstore.bundle+json;version=0.2',
  'application/vnd.dev.sigstore.bundle+json;version=0.3',
  'application/vnd.dev.sigstore.bundle.v0.3+json',
];

/** More referrer bundles than this for one digest are refused rather than fetched. */
export const MAX_SIGSTORE_BUNDLES = 64;
export const MAX_BUNDLE_BYTES = 1 << 20;
const MAX_REFERRER_MANIFEST_BYTES = 1 << 20;
const PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType';

const fail = (m: string): Error => new InvalidManifestError(m);
const isBundleType = (t: string | undefined): boolean => t !== undefined && SIGSTORE_BUNDLE_MEDIA_TYPES.includes(t);

/**
 * The sigstore bundles attached to `subject` as OCI 1.1 referrers. The
 * source lists them (referrers API or tag schema); each referrer manifest is
 * read by digest and checked, must name `subject` as its subject, and gives
 * its one bundle layer, bounded and digest-checked. Referrers of other types,
 * and bundles the referrer says carry another predicate than cosign's image
 * signature (provenance, SBOMs), are skipped: they are not signatures. A source that cannot
 * have referrers gives [].
 */
export async function fetchSigstoreBundles(source: ImageSource, subject: Digest, signal?: AbortSignal): Promise<SigstoreBundleBlob[]> {
  const referrers = (await source.listReferrers?.(subject, undefined, signal)) ?? [];
  const candidates = referrers.filter((r) => r.artifactType === undefined || isBundleType(r.artifactType));
  if (candidates.length > MAX_SIGSTORE_BUNDLES) {
    throw fail(`${source.description} lists ${candidates.length} sigstore bundle referrers of ${subject}, more than the ${MAX_SIGSTORE_BUNDLES} accepted`);
  }
  const found: SigstoreBundleBlob[] = [];
  for (const r of candidates) {
    const blob = await readBundle(source, r.descriptor, subject, signal);
    if (blob) found.push(blob);
  }
  return found;
}

async function readBundle(source: ImageSource, desc: Descriptor, subject: Digest, signal: AbortSignal | undefined): Promise<SigstoreBundleBlob | undefined> {
  const what = `referrer ${desc.digest} of ${subject}`;
  if (desc.size > MAX_REFERRER_MANIFEST_BYTES) throw fail(`${what} is ${desc.size} bytes, more than the ${MAX_REFERRER_MANIFEST_BYTES} accepted`);
  const fetched = await source.getManifest(desc.digest.toString(), signal);
  const actual = Digest.of(fetched.bytes, desc.digest.algorithm);
  if (!actual.equals(desc.digest)) throw new DigestMismatchError(what, desc.digest.toString(), actual.toString());
  const doc = parseJsonObject(fetched.bytes, what, fail);
  // The listing is the registry's word; the manifest's own subject is what binds it.
  const subj = doc['subject'];
  const named = isObject(subj) ? Descriptor.parse(subj, `${what}: subject`) : undefined;
  if (!named || !named.digest.equals(subject)) return undefined;
  // cosign names the predicate of a DSSE bundle on the referrer: attestations (provenance, SBOMs) are not signatures.
  const annotations = doc['annotations'];
  const predicate = isObject(annotations) ? annotations[PREDICATE_ANNOTATION] : undefined;
  if (typeof predicate === 'string' && predicate !== COSIGN_SIGN_PREDICATE) return undefined;
  const config = doc['config'];
  const artifactType = optionalString(doc, 'artifactType', what, fail) ?? (isObject(config) ? optionalString(config, 'mediaType', `${what}: config`, fail) : undefined);
  const layers = doc['layers'];
  if (!Array.isArray(layers)) return undefined;
  const bundleLayers = layers.filter((l) => isObject(l) && isBundleType(typeof l['mediaType'] === 'string' ? l['mediaType'] : undefined));
  if (bundleLayers.length === 0 && !isBundleType(artifactType)) return undefined;
  if (bundleLayers.length !== 1) throw fail(`${what} is a sigstore bundle referrer with ${bundleLayers.length} bundle layers, not one`);
  const layer = Descriptor.parse(bundleLayers[0]!, `${what}: layers`);
  const bytes = await readVerifiedBlob(source, layer, { what: `sigstore bundle ${layer.digest}`, max: MAX_BUNDLE_BYTES, signal });
  return { mediaType: layer.mediaType, bytes, subject };
}
