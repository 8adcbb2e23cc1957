import { DigestMismatchError, InvalidManifestError, SizeMismatchError, UnsupportedError } from '../errors.js';
import { Digest } from '../image/digest.js';
import { ImageConfig } from '../image/image-config.js';
import { ImageIndex } from '../image/image-index.js';
import type { ImageTarget } from '../image/image-target.js';
import { Manifest } from '../image/manifest.js';
import { Platform } from '../image/platform.js';
import { readVerifiedBlob } from '../image/verified-blob.js';
import type { ImageSource } from '../../ports/image-source/image-source.js';

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** An image as the pull will unpack it: one manifest, its verified config, and the platform chosen. */
export interface ResolvedImage {
  readonly manifest: Manifest;
  readonly manifestDigest: Digest;
  readonly indexDigest: Digest | undefined;
  readonly config: ImageConfig;
  readonly configDigest: Digest;
  readonly platform: Platform;
}

/**
 * The manifest for the target (through an index, by platform), then its
 * config: every byte checked against the digest that names it, and the
 * config's diff_ids against the manifest's layers.
 */
export async function resolveImage(source: ImageSource, target: ImageTarget, wanted: Platform, signal: AbortSignal | undefined): Promise<ResolvedImage> {
  const wantedDigest = target.kind === 'registry' ? target.reference.digest : undefined;
  const ref = target.kind === 'registry' ? target.reference.manifestRef : (target.ref ?? '');
  const top = await fetchManifest(source, ref, wantedDigest, signal);
  let manifest = top.parsed;
  let manifestDigest = top.digest;
  let indexDigest: Digest | undefined;
  let platform = wanted;
  if (manifest.kind === 'index') {
    indexDigest = top.digest;
    const chosen = ImageIndex.selectPlatform(manifest, platform);
    platform = Platform.normalize(chosen.platform ?? platform);
    const inner = await fetchManifest(source, chosen.digest.toString(), chosen.digest, signal);
    if (inner.parsed.kind !== 'manifest') throw new InvalidManifestError('an index entry points at another index');
    if (inner.bytes !== chosen.size) throw new SizeMismatchError(`manifest ${chosen.digest}`, chosen.size, inner.bytes);
    manifest = inner.parsed;
    manifestDigest = inner.digest;
  }
  const configBytes = await readVerifiedBlob(source, manifest.config, { what: `config ${manifest.config.digest}`, max: MAX_CONFIG_BYTES, signal });
  const config = ImageConfig.parse(configBytes);
  if (config.os !== 'linux') throw new UnsupportedError(`image os is ${config.os}; only linux images can be unpacked`);
  if (config.diffIds.length !== manifest.layers.length) {
    throw new InvalidManifestError(`manifest has ${manifest.layers.length} layers but the config has ${config.diffIds.length} diff_ids`);
  }
  return { manifest, manifestDigest, indexDigest, config, configDigest: manifest.config.digest, platform };
}

async function fetchManifest(
  source: ImageSource,
  ref: string,
  expected: Digest | undefined,
  signal: AbortSignal | undefined,
): Promise<{ parsed: Manifest | ImageIndex; digest: Digest; bytes: number }> {
  const fetched = await source.getManifest(ref, signal);
  if (fetched.bytes.length > MAX_MANIFEST_BYTES) throw new InvalidManifestError(`manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  const digest = Digest.of(fetched.bytes, expected?.algorithm ?? 'sha256');
  if (expected && !digest.equals(expected)) {
    throw new DigestMismatchError(`manifest ${ref}`, expected.toString(), digest.toString());
  }
  return { parsed: Manifest.parse(fetched.bytes, fetched.mediaType), digest, bytes: fetched.bytes.length };
}
