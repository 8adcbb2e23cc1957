export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistTar: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciLayerNondistZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifestV1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerManifestV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type Compression = 'gzip' | 'zstd' | 'none';

const LAYER_COMPRESSION: Readonly<Record<string, Compression>> = {
  [MediaType.OciLayerTar]: 'none',
  [MediaType.OciLayerGzip]: 'gzip',
  [MediaType.OciLayerZstd]: 'zstd',
  [MediaType.OciLayerNondistTar]: 'none',
  [MediaType.OciLayerNondistGzip]: 'gzip',
  [MediaType.OciLayerNondistZstd]: 'zstd',
  [MediaType.DockerLayerGzip]: 'gzip',
  [MediaType.DockerLayerTar]: 'none',
  [MediaType.DockerForeignLayerGzip]: 'gzip',
};

/** The compression of a plaintext layer media type, or undefined when it is not a layer we can unpack. */
export function layerCompression(mediaType: string): Compression | undefined {
  return LAYER_COMPRESSION[mediaType];
}

export function isEncryptedLayer(mediaType: string): boolean {
  return mediaType.endsWith('+encrypted');
}

/** The Accept header sent for manifests: every format we can read, plus schema 1 so we can name it. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
  MediaType.DockerManifestV1Signed,
  MediaType.DockerManifestV1,
];
