import type { ImageSource } from '../../ports/image-source/image-source.js';
import type { SigstoreSignature } from '../../ports/signatures/signature-verifier.js';
import { InvalidManifestError, UnsupportedError } from '../errors.js';
import { manifestIfPresent } from '../image/manifest-if-present.js';
import { Descriptor } from '../image/descriptor.js';
import { Digest } from '../image/digest.js';
import { readVerifiedBlob } from '../image/verified-blob.js';
import { isObject, optionalString, parseJsonObject } from '../image/json-fields.js';
import { MediaType } from '../image/media-types.js';

/** The layer media type of a cosign simple-signing signature (also the signature's MIME type). */
export const COSIGN_SIGNATURE_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** Layer annotation holding the base64 signature over the payload blob. */
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** Layer annotation holding the Rekor bundle (`{"SignedEntryTimestamp","Payload"}`). */
export const COSIGN_BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';
export const COSIGN_CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const COSIGN_CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';

/** More layers than this in a `.sig` manifest is refused rather than fetched. */
export const MAX_COSIGN_LAYERS = 128;
/** Largest payload blob fetched. */
export const MAX_COSIGN_PAYLOAD_BYTES = 4 << 20;

const fail = (m: string): Error => new InvalidManifestError(m);

/** `sha256-<hex>.sig`: the tag cosign stores the signatures of `digest` under, in the image's own repository. */
export function cosignSignatureTag(digest: Digest): string {
  return `${digest.algorithm}-${digest.encoded}.sig`;
}

/**
 * The cosign signatures of the manifest `manifestDigest`, read from the
 * `sha256-<hex>.sig` tag of the same source. No such tag ⇒ []. Layers of
 * other media types (attestations, other attachments) are skipped. Every
 * payload is bounded and checked against its layer digest; nothing is
 * verified or parsed beyond that.
 */
export async function fetchCosignSignatures(
  source: ImageSource,
  manifestDigest: Digest,
  signal?: AbortSignal,
): Promise<SigstoreSignature[]> {
  if (manifestDigest.algorithm !== 'sha256') {
    throw new UnsupportedError(`cosign signatures can only be looked up for sha256 manifest digests, not ${manifestDigest.algorithm}`);
  }
  const tag = cosignSignatureTag(manifestDigest);
  const fetched = await manifestIfPresent(source, tag, signal);
  if (!fetched) return [];
  const what = `cosign signature manifest ${tag} of ${source.description}`;
  const layers = signatureLayers(fetched.bytes, fetched.mediaType, what);
  const signatures: SigstoreSignature[] = [];
  for (const layer of layers) {
    signatures.push({
      mimeType: layer.mediaType,
      payload: await fetchPayload(source, layer, signal),
      annotations: { ...(layer.annotations ?? {}) },
    });
  }
  return signatures;
}

/**
 * Reads a `.sig` manifest: an OCI image manifest (cosign's default) or a
 * Docker schema 2 one (COSIGN_DOCKER_MEDIA_TYPES). Only the layers of the
 * simple-signing media type are returned. The main Manifest parser is not
 * used: it rightly refuses layers it cannot unpack.
 */
export function signatureLayers(bytes: Uint8Array, contentType: string | undefined, what = 'cosign signature manifest'): Descriptor[] {
  const doc = parseJsonObject(bytes, what, fail);
  if (doc['schemaVersion'] !== 2) throw fail(`${what}: schemaVersion must be 2`);
  const declared = optionalString(doc, 'mediaType', what, fail);
  const transport = genericOrMissing(contentType) ? undefined : contentType?.split(';')[0]?.trim().toLowerCase();
  if (declared !== undefined && transport !== undefined && declared !== transport) {
    throw fail(`${what}: mediaType ${declared} disagrees with Content-Type ${transport}`);
  }
  const mediaType = declared ?? transport ?? (doc['manifests'] !== undefined ? MediaType.OciIndex : MediaType.OciManifest);
  if (mediaType !== MediaType.OciManifest && mediaType !== MediaType.DockerManifest) {
    throw fail(`${what} has media type ${mediaType}, not an image manifest`);
  }
  if (doc['manifests'] !== undefined) throw fail(`${what}: an image manifest must not have manifests`);
  const layers = doc['layers'];
  if (!Array.isArray(layers)) throw fail(`${what}: layers must be an array`);
  if (layers.length > MAX_COSIGN_LAYERS) {
    throw fail(`${what} has ${layers.length} layers, more than the ${MAX_COSIGN_LAYERS} accepted`);
  }
  const found: Descriptor[] = [];
  for (const [i, layer] of layers.entries()) {
    if (!isObject(layer)) throw fail(`${what}: layers[${i}] is not an object`);
    if (layer['mediaType'] !== COSIGN_SIGNATURE_MEDIA_TYPE) continue;
    found.push(Descriptor.parse(layer, `${what}: layers[${i}]`));
  }
  return found;
}

function genericOrMissing(contentType: string | undefined): boolean {
  const ct = contentType?.split(';')[0]?.trim().toLowerCase();
  return !ct || ct === 'application/json' || ct === 'application/octet-stream' || ct === 'text/plain';
}

function fetchPayload(source: ImageSource, layer: Descriptor, signal: AbortSignal | undefined): Promise<Buffer> {
  return readVerifiedBlob(source, layer, { what: `cosign payload ${layer.digest}`, max: MAX_COSIGN_PAYLOAD_BYTES, signal });
}
