import { InvalidManifestError, PlatformNotFoundError } from '../errors.js';
import { Descriptor } from './descriptor.js';
import type { JsonObject } from './json-fields.js';
import { optionalStringMap } from './json-fields.js';
import { MediaType } from './media-types.js';
import { Platform } from './platform.js';

const fail = (m: string): Error => new InvalidManifestError(m);

const MANIFEST_TYPES = new Set<string>([MediaType.OciManifest, MediaType.DockerManifest]);

/** An OCI image index or Docker manifest list: one manifest per platform. */
export interface ImageIndex {
  readonly kind: 'index';
  readonly mediaType: string;
  readonly manifests: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>> | undefined;
}

export const ImageIndex = {
  fromDocument(doc: JsonObject, mediaType: string): ImageIndex {
    const list = doc['manifests'];
    if (!Array.isArray(list)) throw fail('index.manifests must be an array');
    if (doc['layers'] !== undefined) throw fail('an index must not have layers');
    return {
      kind: 'index',
      mediaType,
      manifests: list.map((m, i) => Descriptor.parse(m, `index.manifests[${i}]`)),
      annotations: optionalStringMap(doc, 'annotations', 'index', fail),
    };
  },

  /**
   * The image manifest for `wanted`: an exact match first, then the closest
   * compatible one, then index order. Attestation manifests (platform
   * unknown/unknown) never match.
   */
  selectPlatform(index: ImageIndex, wanted: Platform): Descriptor {
    let best: { d: Descriptor; rank: number } | undefined;
    for (const d of index.manifests) {
      if (!MANIFEST_TYPES.has(d.mediaType) || !d.platform) continue;
      const rank = Platform.matchRank(wanted, d.platform);
      if (rank !== undefined && (!best || rank < best.rank)) best = { d, rank };
    }
    if (best) return best.d;
    const available = index.manifests
      .filter((d) => d.platform && d.platform.os !== 'unknown')
      .map((d) => Platform.format(Platform.normalize(d.platform!)));
    throw new PlatformNotFoundError(Platform.format(Platform.normalize(wanted)), [...new Set(available)]);
  },
};
