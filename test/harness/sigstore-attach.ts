/**
 * Attaches sigstore bundles to images in the harness registry as cosign v3
 * does: an OCI 1.1 referrer manifest (empty config, one layer holding the
 * bundle JSON, `subject` = the signed manifest). Debian's docker-registry has
 * no referrers API, so, as cosign's client does then, the referrer is also
 * added to the referrers tag schema's index (`sha256-<hex>`). The referrers
 * proxy (referrers-proxy.ts) serves the API for the same stored manifests.
 */
import { createHash } from 'node:crypto';
import { request } from 'undici';
import type { StartedRegistry } from './registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Subject {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

export interface AttachedBundle {
  readonly manifest: Buffer;
  readonly manifestDigest: string;
}

export interface AttachOptions {
  /** Keep the referrer out of the tag schema's index: only a referrers API finds it. */
  readonly skipTagSchema?: boolean | undefined;
  /** Annotations of the referrer manifest, beside cosign's. */
  readonly annotations?: Readonly<Record<string, string>> | undefined;
}

/** Pushes `bundle` (JSON bytes of `mediaType`) as a referrer of `subject` in `repo`. */
export async function attachBundle(
  registry: StartedRegistry,
  repo: string,
  subject: Subject,
  bundle: { readonly json: Buffer; readonly mediaType: string },
  options: AttachOptions = {},
): Promise<AttachedBundle> {
  const empty = Buffer.from('{}');
  await registry.pushBlob(repo, empty);
  await registry.pushBlob(repo, bundle.json);
  const dsse = (JSON.parse(bundle.json.toString('utf8')) as { dsseEnvelope?: unknown }).dsseEnvelope !== undefined;
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: bundle.mediaType,
    config: { mediaType: EMPTY_CONFIG, digest: sha256(empty), size: empty.length },
    layers: [{ mediaType: bundle.mediaType, digest: sha256(bundle.json), size: bundle.json.length }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: {
      'dev.sigstore.bundle.content': dsse ? 'dsse-envelope' : 'message-signature',
      ...(dsse ? { 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1' } : {}),
      'org.opencontainers.image.created': new Date().toISOString(),
      ...options.annotations,
    },
  }));
  const manifestDigest = sha256(manifest);
  await registry.pushManifest(repo, manifestDigest, manifest, OCI_MANIFEST);
  if (!options.skipTagSchema) {
    await addToTagIndex(registry, repo, subject.digest, { mediaType: OCI_MANIFEST, digest: manifestDigest, size: manifest.length, artifactType: bundle.mediaType });
  }
  return { manifest, manifestDigest };
}

/** Read-modify-write of the subject's `sha256-<hex>` index, as a client without the referrers API keeps it. */
async function addToTagIndex(registry: StartedRegistry, repo: string, subjectDigest: string, entry: Record<string, unknown>): Promise<void> {
  if (registry.variant !== 'open') throw new Error('attachBundle reads the tag index anonymously: open registries only');
  const tag = subjectDigest.replace(':', '-');
  const res = await request(`http://${registry.host}/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_INDEX } });
  let manifests: unknown[] = [];
  if (res.statusCode === 200) {
    manifests = (JSON.parse(await res.body.text()) as { manifests?: unknown[] }).manifests ?? [];
  } else {
    await res.body.dump();
    if (res.statusCode !== 404) throw new Error(`reading ${repo}:${tag}: HTTP ${res.statusCode}`);
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...manifests, entry] }));
  await registry.pushManifest(repo, tag, index, OCI_INDEX);
}
