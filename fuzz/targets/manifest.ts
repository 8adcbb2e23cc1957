/**
 * Manifests and indexes as a registry or an OCI layout serves them
 * (Manifest.parse, with and without a Content-Type), then what a pull does
 * with them: the platform choice of an index, the layer list of a manifest
 * and the encryption annotations of its layers. The same bytes as an OCI
 * 1.1 referrers list (the API's answer, the tag schema's index) and as a
 * referrer manifest (its subject, artifact type and layers).
 */
import { LayerEncryption } from '../../src/domain/encryption/layer-encryption.js';
import { ImageIndex } from '../../src/domain/image/image-index.js';
import { Manifest, uniqueLayers } from '../../src/domain/image/manifest.js';
import { MediaType } from '../../src/domain/image/media-types.js';
import { filterReferrers, mergeReferrers, parseReferrerManifest, parseReferrersIndex, referrerDescriptor } from '../../src/domain/image/referrers.js';
import { Digest } from '../../src/domain/image/digest.js';
import { attempt, Finding } from '../lib/verdict.js';

const CONTENT_TYPES = [undefined, MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList, 'application/json; charset=utf-8'];
const PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
  { os: 'windows', architecture: 'amd64' },
];

export function fuzz(data: Buffer): void {
  const contentType = CONTENT_TYPES[data.length % CONTENT_TYPES.length];
  referrers(data, contentType);
  const parsed = attempt(() => Manifest.parse(data, contentType));
  if (!parsed) return;
  if (parsed.kind === 'index') {
    for (const p of PLATFORMS) {
      const d = attempt(() => ImageIndex.selectPlatform(parsed, p), ['PLATFORM_NOT_FOUND']);
      if (d && !parsed.manifests.includes(d)) throw new Finding('selectPlatform returned a descriptor not in the index');
    }
    return;
  }
  const unique = uniqueLayers(parsed.layers);
  if (unique.length > parsed.layers.length) throw new Finding('uniqueLayers grew the layer list');
  for (const layer of parsed.layers) {
    LayerEncryption.schemes(layer);
    if (LayerEncryption.isEncrypted(layer)) attempt(() => LayerEncryption.of(layer));
  }
}

function referrers(data: Buffer, contentType: string | undefined): void {
  const list = attempt(() => parseReferrersIndex(data, contentType, 'referrers'));
  if (list) {
    const type = list[0]?.artifactType;
    const kept = filterReferrers(list, type);
    // No type asked for keeps every referrer; a type keeps exactly those of that type.
    const meant = type === undefined ? list : list.filter((d) => d.artifactType === type);
    if (kept.length !== meant.length || kept.some((d, i) => d !== meant[i])) throw new Finding('filterReferrers kept other descriptors than those of the type asked for');
    const merged = attempt(() => mergeReferrers([list, kept]));
    if (merged && new Set(merged.map((d) => d.digest.toString())).size !== merged.length) throw new Finding('mergeReferrers kept a digest twice');
  }
  const manifest = attempt(() => parseReferrerManifest(data, 'referrer'));
  if (manifest) {
    const d = referrerDescriptor(Digest.of(data), data.length, manifest);
    if (d.artifactType !== manifest.artifactType) throw new Finding('referrerDescriptor lost the artifact type');
  }
}
