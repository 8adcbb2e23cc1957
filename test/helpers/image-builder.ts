import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import { encryptBlob } from './encryption.js';

export type LayerCompression = 'gzip' | 'zstd' | 'none';
export type ManifestFormat = 'oci' | 'docker';

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface BlobDesc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface BuiltLayer {
  tar: Buffer;
  bytes: Buffer;
  digest: string;
  diffId: string;
  mediaType: string;
  annotations?: Record<string, string>;
  /** The wrapped secret of an encrypted layer. */
  privopts?: Buffer;
}

export interface BuiltImage {
  manifest: Buffer;
  manifestDigest: string;
  manifestMediaType: string;
  config: Buffer;
  configDigest: string;
  layers: BuiltLayer[];
  /** Every blob by digest, manifest included. */
  blobs: Map<string, Buffer>;
}

export interface LayerSpec {
  tar: Buffer;
  /** The blob itself, for layers too big to hold uncompressed (give diffIdOverride too). */
  precompressed?: Buffer;
  compression?: LayerCompression;
  /** Lies for hostile tests. */
  mediaType?: string;
  digestOverride?: string;
  diffIdOverride?: string;
  /** Encrypts the blob as ocicrypt does; `wrap` turns privopts into key annotations. */
  encrypt?: {
    wrap: (privopts: Buffer) => Record<string, string>;
    /** Changes the blob after the HMAC was taken (the digest is recomputed: only the HMAC can tell). */
    tamperCiphertext?: boolean;
    /** Writes a wrong HMAC into pubopts. */
    tamperHmac?: boolean;
  };
}

export interface ImageSpec {
  layers: LayerSpec[];
  format?: ManifestFormat;
  os?: string;
  architecture?: string;
  variant?: string;
  config?: Record<string, unknown>;
}

const LAYER_TYPES: Record<ManifestFormat, Record<LayerCompression, string>> = {
  oci: {
    gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
    zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
    none: 'application/vnd.oci.image.layer.v1.tar',
  },
  docker: {
    gzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
    zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
    none: 'application/vnd.docker.image.rootfs.diff.tar',
  },
};

export function compressLayer(tar: Buffer, c: LayerCompression): Buffer {
  if (c === 'gzip') return gzipSync(tar);
  if (c === 'zstd') return zstdCompress(tar);
  return tar;
}

export function buildImage(spec: ImageSpec): BuiltImage {
  const format = spec.format ?? 'oci';
  const blobs = new Map<string, Buffer>();
  const layers: BuiltLayer[] = spec.layers.map((l) => {
    const compression = l.compression ?? 'gzip';
    let bytes = l.precompressed ?? compressLayer(l.tar, compression);
    let mediaType = l.mediaType ?? LAYER_TYPES[format][compression];
    let annotations: Record<string, string> | undefined;
    let privopts: Buffer | undefined;
    if (l.encrypt) {
      const enc = encryptBlob(bytes, sha256(bytes));
      bytes = enc.ciphertext;
      if (l.encrypt.tamperCiphertext) {
        bytes = Buffer.from(bytes);
        bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      }
      let pubopts = enc.pubopts;
      if (l.encrypt.tamperHmac) {
        const p = JSON.parse(Buffer.from(pubopts, 'base64').toString()) as { hmac: string };
        const h = Buffer.from(p.hmac, 'base64');
        h[0]! ^= 0xff;
        pubopts = Buffer.from(JSON.stringify({ ...p, hmac: h.toString('base64') })).toString('base64');
      }
      privopts = enc.privopts;
      annotations = { ...l.encrypt.wrap(enc.privopts), 'org.opencontainers.image.enc.pubopts': pubopts };
      mediaType = `${compression === 'none' ? 'application/vnd.oci.image.layer.v1.tar' : `application/vnd.oci.image.layer.v1.tar+${compression}`}+encrypted`;
    }
    const digest = sha256(bytes);
    blobs.set(digest, bytes);
    return {
      tar: l.tar,
      bytes,
      digest: l.digestOverride ?? digest,
      diffId: l.diffIdOverride ?? sha256(l.tar),
      mediaType,
      ...(annotations ? { annotations } : {}),
      ...(privopts ? { privopts } : {}),
    };
  });
  const config = Buffer.from(JSON.stringify({
    architecture: spec.architecture ?? 'amd64',
    os: spec.os ?? 'linux',
    ...(spec.variant ? { variant: spec.variant } : {}),
    config: spec.config ?? { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created_by: 'image-ts test builder' })),
  }));
  const configDigest = sha256(config);
  blobs.set(configDigest, config);
  const manifestMediaType = format === 'oci' ? 'application/vnd.oci.image.manifest.v1+json' : 'application/vnd.docker.distribution.manifest.v2+json';
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: {
      mediaType: format === 'oci' ? 'application/vnd.oci.image.config.v1+json' : 'application/vnd.docker.container.image.v1+json',
      digest: configDigest,
      size: config.length,
    },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length, ...(l.annotations ? { annotations: l.annotations } : {}) })),
  }));
  const manifestDigest = sha256(manifest);
  blobs.set(manifestDigest, manifest);
  return { manifest, manifestDigest, manifestMediaType, config, configDigest, layers, blobs };
}

export interface BuiltIndex {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  blobs: Map<string, Buffer>;
}

export function buildIndex(entries: { image: BuiltImage; platform: { os: string; architecture: string; variant?: string } }[], format: ManifestFormat = 'oci'): BuiltIndex {
  const mediaType = format === 'oci' ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.docker.distribution.manifest.list.v2+json';
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType,
    manifests: entries.map((e) => ({
      mediaType: e.image.manifestMediaType,
      digest: e.image.manifestDigest,
      size: e.image.manifest.length,
      platform: e.platform,
    })),
  }));
  const blobs = new Map<string, Buffer>();
  for (const e of entries) for (const [k, v] of e.image.blobs) blobs.set(k, v);
  const digest = sha256(bytes);
  blobs.set(digest, bytes);
  return { bytes, digest, mediaType, blobs };
}

/** Writes an OCI image layout with the given refs (org.opencontainers.image.ref.name). */
export async function writeOciLayout(
  dir: string,
  entries: { ref?: string; manifest: { digest: string; mediaType: string; bytes: Buffer }; blobs: Map<string, Buffer> }[],
): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const e of entries) {
    for (const [digest, bytes] of e.blobs) await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  }
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: entries.map((e) => ({
      mediaType: e.manifest.mediaType,
      digest: e.manifest.digest,
      size: e.manifest.bytes.length,
      ...(e.ref ? { annotations: { 'org.opencontainers.image.ref.name': e.ref } } : {}),
    })),
  }));
}

export const imageManifestEntry = (image: BuiltImage, ref?: string) => ({
  ref,
  manifest: { digest: image.manifestDigest, mediaType: image.manifestMediaType, bytes: image.manifest },
  blobs: image.blobs,
});
