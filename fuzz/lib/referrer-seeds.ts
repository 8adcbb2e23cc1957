/**
 * Manifest-target seeds for OCI 1.1 referrers, made by the image-source
 * contract's own encoder: an artifact typed by artifactType, one typed by its
 * config only (both with a subject), and the tag schema's index listing them.
 */
import { createHash } from 'node:crypto';
import { referrerContent } from '../../contract-tests/referrer-artifacts.js';

export function referrerSeeds(subjectManifest: Buffer): Record<string, Buffer> {
  const digest = `sha256:${createHash('sha256').update(subjectManifest).digest('hex')}`;
  const content = referrerContent({ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest, size: subjectManifest.length });
  return {
    'referrer-sbom.json': content.referrers[0]!.bytes,
    'referrer-bundle.json': content.referrers[1]!.bytes,
    'referrers-index.json': content.tagIndex.bytes,
  };
}
