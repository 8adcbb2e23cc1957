/**
 * Edits an OCI layout the way an attacker or a newer tool would: change the
 * first manifest's layers (annotations, blobs), then store the new manifest
 * and point index.json at it, so every digest is consistent again.
 */
import { createHash } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JweKeyUnwrapper } from '../../src/adapters/outbound/keys/unwrappers/jwe-unwrapper.js';
import { EMPTY_DECRYPT_CONFIG } from '../../src/domain/encryption/decrypt-config.js';
import { LayerEncryption } from '../../src/domain/encryption/layer-encryption.js';
import { Descriptor } from '../../src/domain/image/descriptor.js';
import { annotationPacket, PROVIDER_AA } from '../helpers/encryption.js';

interface LayerJson {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

const blobFile = (dir: string, digest: string): string => join(dir, 'blobs', ...digest.split(':'));

async function putBlob(dir: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(blobFile(dir, digest), bytes);
  return digest;
}

export interface LayerEdit {
  readonly layer: LayerJson;
  readonly blob: Buffer;
  /** Replaces the blob; digest and size follow. */
  setBlob(bytes: Buffer): Promise<void>;
}

/** Copies `src` to `dst` and lets `edit` change each layer of its first manifest. */
export async function rewriteLayout(src: string, dst: string, edit: (l: LayerEdit, index: number) => Promise<void> | void): Promise<void> {
  await cp(src, dst, { recursive: true });
  const index = JSON.parse(await readFile(join(dst, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number }[] };
  const top = index.manifests[0]!;
  const manifest = JSON.parse(await readFile(blobFile(dst, top.digest), 'utf8')) as { layers: LayerJson[] };
  for (const [i, layer] of manifest.layers.entries()) {
    const blob = await readFile(blobFile(dst, layer.digest));
    await edit({
      layer,
      blob,
      async setBlob(bytes) {
        layer.digest = await putBlob(dst, bytes);
        layer.size = bytes.length;
      },
    }, i);
  }
  const bytes = Buffer.from(JSON.stringify(manifest));
  top.digest = await putBlob(dst, bytes);
  top.size = bytes.length;
  await writeFile(join(dst, 'index.json'), JSON.stringify(index));
}

/**
 * The spec's recipe for Confidential Containers provider images (skopeo 1.9
 * cannot make them): recover each layer's private options with the jwe key,
 * seal them under `kek` as an AnnotationPacket for `kid`, and replace the jwe
 * recipient with `provider.attestation-agent`. Blobs and pubopts stay as skopeo made them.
 */
export async function toProviderImage(src: string, dst: string, privateKeyPem: Buffer, kek: Buffer, kid: string): Promise<void> {
  const jwe = new JweKeyUnwrapper();
  const dc = { ...EMPTY_DECRYPT_CONFIG, privateKeys: [{ bytes: privateKeyPem }] };
  await rewriteLayout(src, dst, async ({ layer }) => {
    if (!layer.mediaType.endsWith('+encrypted')) return;
    const enc = LayerEncryption.of(Descriptor.parse(layer, 'layer'));
    const item = enc.wrapped.find((w) => w.scheme === 'jwe')?.items[0];
    const privopts = item && await jwe.unwrap(item, dc);
    if (!privopts) throw new Error(`layer ${layer.digest}: the jwe key does not open it`);
    const annotations = Object.fromEntries(Object.entries(layer.annotations ?? {}).filter(([k]) => !k.startsWith('org.opencontainers.image.enc.keys.')));
    layer.annotations = { ...annotations, [PROVIDER_AA]: annotationPacket(kek, privopts, kid).toString('base64') };
  });
}
