import type { ImageSource, Referrer } from '../../ports/image-source/image-source.js';
import type { SigstoreBundleBlob } from '../../ports/signatures/sigstore-bundle.js';
import { DigestMismatchError, InvalidManifestError, SizeMismatchError } from '../errors.js';
import { Digest } from '../image/digest.js';
import { MediaType } from '../image/media-types.js';
import { parseReferrerManifest } from '../image/referrers.js';
import { readVerifiedBlob } from '../image/verified-blob.js';

/** cosign v3's bundle type; v0.1–v0.3 also as `application/vnd.dev.sigstore.bundle+json;version=0.N`. */
export const SIGSTORE_BUNDLE_V03_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const BUNDLE_TYPE_RE = /^application\/vnd\.dev\.sigstore\.bundle(?:\.v0\.[1-9]\+json|\+json;\s*version=0\.[1-9])$/i;

/** More bundle referrers than this for one manifest is refused rather than fetched (as `.sig` layers are). */
export const MAX_SIGSTORE_BUNDLES = 128;
/** Largest bundle read: a certificate chain, a log entry and an envelope fit in far less. */
export const MAX_SIGSTORE_BUNDLE_BYTES = 4 << 20;
/** Largest referrer or subject manifest read. */
const MAX_MANIFEST_BYTES = 4 << 20;

/** Whether a media type names a sigstore bundle, of any version. */
export function isSigstoreBundleType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && BUNDLE_TYPE_RE.test(mediaType.trim());
}

/**
 * The sigstore bundles attached to `subject` as OCI 1.1 referrers. The
 * referrers are listed without a server-side filter (three bundle versions
 * are three artifact types), then kept by type: the list's artifactType,
 * else the referrer manifest's own. Each referrer manifest is fetched by
 * digest and checked against it, must name `subject` as its subject and
 * carry exactly one layer, which is read bounded and digest-checked. Nothing
 * is verified beyond that: the bytes go to the verifier. A source without
 * referrers, or no bundle ⇒ [].
 */
export async function fetchSigstoreBundles(source: ImageSource, subject: Digest, signal?: AbortSignal): Promise<SigstoreBundleBlob[]> {
  if (!source.listReferrers) return [];
  const listed = (await source.listReferrers(subject, undefined, signal)).filter(maybeBundle);
  if (listed.length > MAX_SIGSTORE_BUNDLES) {
    throw new InvalidManifestError(`${subject} has ${listed.length} sigstore bundle referrers, more than the ${MAX_SIGSTORE_BUNDLES} accepted`);
  }
  const bundles: SigstoreBundleBlob[] = [];
  for (const referrer of listed) {
    const found = await readBundle(source, subject, referrer, signal);
    if (found) bundles.push(found);
  }
  // A message-signature bundle signs the subject's manifest bytes themselves; the verifier needs them.
  if (bundles.some((b) => signsMessage(b.bytes))) {
    const artifact = await readManifest(source, subject, undefined, `manifest ${subject} of ${source.description}`, signal);
    return bundles.map((b) => (signsMessage(b.bytes) ? { ...b, artifact } : b));
  }
  return bundles;
}

/** A bundle by its listed type; an untyped manifest entry may still be one (its manifest says). */
function maybeBundle(r: Referrer): boolean {
  if (r.descriptor.mediaType !== MediaType.OciManifest) return false;
  return r.artifactType === undefined || isSigstoreBundleType(r.artifactType);
}

async function readBundle(source: ImageSource, subject: Digest, referrer: Referrer, signal: AbortSignal | undefined): Promise<SigstoreBundleBlob | undefined> {
  const what = `sigstore bundle referrer ${referrer.descriptor.digest} of ${source.description}`;
  const bytes = await readManifest(source, referrer.descriptor.digest, referrer.descriptor.size, what, signal);
  const manifest = parseReferrerManifest(bytes, what);
  // A list is only a hint: a manifest that names another subject, or is no bundle after all, is not one of ours.
  if (!manifest.subject?.digest.equals(subject) || !isSigstoreBundleType(manifest.artifactType)) return undefined;
  if (referrer.artifactType !== undefined && referrer.artifactType !== manifest.artifactType) {
    throw new InvalidManifestError(`${what}: listed as ${referrer.artifactType} but its manifest says ${manifest.artifactType}`);
  }
  const layer = manifest.layers[0];
  if (!layer || manifest.layers.length !== 1) throw new InvalidManifestError(`${what} has ${manifest.layers.length} layers, not the one bundle`);
  const bundle = await readVerifiedBlob(source, layer, { what: `${what}: bundle ${layer.digest}`, max: MAX_SIGSTORE_BUNDLE_BYTES, signal });
  return { mediaType: manifest.artifactType!, bytes: bundle, subject };
}

/** A manifest by digest, bounded, and checked against the digest (and size when known) whatever the source did. */
async function readManifest(
  source: ImageSource,
  digest: Digest,
  size: number | undefined,
  what: string,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  const { bytes } = await source.getManifest(digest.toString(), signal);
  if (bytes.length > MAX_MANIFEST_BYTES) throw new InvalidManifestError(`${what} is larger than ${MAX_MANIFEST_BYTES} bytes`);
  const actual = Digest.of(bytes, digest.algorithm);
  if (!actual.equals(digest)) throw new DigestMismatchError(what, digest.toString(), actual.toString());
  if (size !== undefined && size !== bytes.length) throw new SizeMismatchError(what, size, bytes.length);
  return bytes;
}

/** Whether the bundle JSON holds a messageSignature (rather than a DSSE envelope). Unparseable: the verifier says why. */
function signsMessage(bytes: Buffer): boolean {
  try {
    const doc: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof doc === 'object' && doc !== null && 'messageSignature' in doc;
  } catch {
    return false;
  }
}
