import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { LayerImage, VerityRecord } from '../../../ports/layer/layer-store.js';
import { fileSha256, mkfsErofs, type ErofsCompression } from './mkfs-erofs.js';
import { writeVerityTree } from './verity.js';

export interface ErofsLayerOptions {
  readonly compression: ErofsCompression;
  /** Whether each image gets a dm-verity hash tree beside it. */
  readonly verity: boolean;
}

/** What layer.json records of an image; paths are the store's to add. */
export type StoredImage = Omit<LayerImage, 'verity'> & { readonly verity?: Omit<VerityRecord, 'hashPath'> | undefined };

/**
 * A staged layer tree made into the layer's EROFS image, with its sha256
 * and (unless turned off) its dm-verity tree: the image is read once more
 * for each, both reads at once.
 */
export async function buildErofsLayer(tree: string, image: string, hashFile: string, options: ErofsLayerOptions, signal?: AbortSignal): Promise<StoredImage> {
  await mkfsErofs(tree, image, options.compression, signal);
  const [file, verity] = await Promise.all([
    fileSha256(image),
    options.verity ? writeVerityTree(image, hashFile, { salt: randomBytes(32), uuid: randomBytes(16) }) : undefined,
  ]);
  const record = verity && { hashAlgorithm: verity.hashAlgorithm, dataBlockSize: verity.dataBlockSize, hashBlockSize: verity.hashBlockSize,
    dataBlocks: verity.dataBlocks, salt: verity.salt, rootHash: verity.rootHash, hashOffset: verity.hashOffset, uuid: verity.uuid,
    bytes: (await stat(hashFile)).size };
  return {
    bytes: file.bytes,
    sha256: file.sha256,
    compression: options.compression,
    ...(record ? { verity: record } : {}),
  };
}
