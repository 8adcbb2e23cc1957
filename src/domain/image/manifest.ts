import { InvalidManifestError, UnsupportedError } from '../errors.js';
import { Descriptor } from './descriptor.js';
import type { Digest } from './digest.js';
import { parseJsonObject, optionalString, optionalStringMap } from './json-fields.js';
import { ImageIndex } from './image-index.js';
import { MediaType, isEncryptedLayer, layerCompression } from './media-types.js';

const fail = (m: string): Error => new InvalidManifestError(m);

/** An image manifest, OCI v1 or Docker schema 2: one config and an ordered list of layers. */
export interface Manifest {
  readonly kind: 'manifest';
  readonly mediaType: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>> | undefined;
}

export type ParsedManifest = Manifest | ImageIndex;

const CONFIG_TYPES = new Set<string>([MediaType.OciConfig, MediaType.DockerConfig]);

export const Manifest = {
  /**
   * Reads a manifest or index. The media type comes from the document, then
   * from the transport's Content-Type; the two must agree when both are given.
   */
  parse(bytes: Uint8Array, contentType?: string): ParsedManifest {
    const doc = parseJsonObject(bytes, 'manifest', fail);
    const declared = optionalString(doc, 'mediaType', 'manifest', fail);
    const transport = normalizeContentType(contentType);
    const schemaVersion = doc['schemaVersion'];
    if (schemaVersion === 1 || declared === MediaType.DockerManifestV1 || declared === MediaType.DockerManifestV1Signed ||
      transport === MediaType.DockerManifestV1 || transport === MediaType.DockerManifestV1Signed) {
      throw new UnsupportedError('Docker schema 1 manifests are not supported; convert the image to schema 2 or OCI');
    }
    if (schemaVersion !== 2) throw fail('manifest.schemaVersion must be 2');
    let mediaType = declared ?? transport;
    if (declared && transport && transport !== declared && transport !== 'application/json' && transport !== 'application/octet-stream') {
      throw fail(`manifest mediaType ${declared} disagrees with Content-Type ${transport}`);
    }
    if (!mediaType || mediaType === 'application/json' || mediaType === 'application/octet-stream') {
      // OCI allows an absent mediaType; the shape decides.
      mediaType = Array.isArray(doc['manifests']) ? MediaType.OciIndex : MediaType.OciManifest;
    }
    if (mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList) {
      return ImageIndex.fromDocument(doc, mediaType);
    }
    if (mediaType !== MediaType.OciManifest && mediaType !== MediaType.DockerManifest) {
      throw new UnsupportedError(`unsupported manifest media type ${mediaType}`);
    }
    if (doc['manifests'] !== undefined) throw fail('an image manifest must not have manifests');
    const config = Descriptor.parse(doc['config'], 'manifest.config');
    if (!CONFIG_TYPES.has(config.mediaType)) {
      throw new UnsupportedError(`manifest config has media type ${config.mediaType}, which is not an image config (an artifact?)`);
    }
    const layersValue = doc['layers'];
    if (!Array.isArray(layersValue)) throw fail('manifest.layers must be an array');
    const layers = layersValue.map((l, i) => Descriptor.parse(l, `manifest.layers[${i}]`));
    for (const [i, layer] of layers.entries()) {
      if (layerCompression(layer.mediaType) === undefined && !isEncryptedLayer(layer.mediaType)) {
        throw new UnsupportedError(`manifest.layers[${i}] has unsupported media type ${layer.mediaType}`);
      }
    }
    return { kind: 'manifest', mediaType, config, layers, annotations: optionalStringMap(doc, 'annotations', 'manifest', fail) };
  },
};

/** Layers whose digests repeat are fetched once; the first position wins. */
export function uniqueLayers(layers: readonly Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return layers.filter((l) => {
    const key = (l.digest as Digest).toString();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function normalizeContentType(ct: string | undefined): string | undefined {
  if (!ct) return undefined;
  return ct.split(';')[0]!.trim().toLowerCase() || undefined;
}
