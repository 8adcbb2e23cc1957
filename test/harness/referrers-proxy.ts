/**
 * The OCI 1.1 referrers API in front of Debian's docker-registry 2.8, which
 * lacks it. A fault proxy (fault-proxy.ts) forwards everything else to the
 * registry; `GET /v2/<name>/referrers/<digest>` is answered here by scanning
 * the manifests the registry really stores (its filesystem driver's
 * revisions of that repository) for a `subject` of that digest.
 *
 * Modes, switchable between pulls:
 *   api             the API as the distribution spec describes it: filters by
 *                   artifactType and says so in OCI-Filters-Applied
 *   api-unfiltered  the API, but it ignores artifactType (a registry may), so
 *                   the client must filter
 *   tag-schema      no API: the registry's own 404 goes through, and clients
 *                   fall back to the `sha256-<hex>` tag
 * `pageSize` splits the answer into pages linked by `Link: <…>; rel="next"`.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import type { StartedRegistry } from './registry.js';

export type ReferrersMode = 'api' | 'api-unfiltered' | 'tag-schema';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const REFERRERS_PATH = /^\/v2\/(.+)\/referrers\/(sha256:[a-f0-9]{64})$/;

interface Listed {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Record<string, string>;
}

export interface ReferrersProxy {
  /** `127.0.0.1:port`, to pull from. */
  readonly host: string;
  /** The fault proxy underneath: its request log, and faults if a test wants them. */
  readonly proxy: FaultProxy;
  mode: ReferrersMode;
  pageSize: number | undefined;
  /** Referrers API requests answered (not those passed through in tag-schema mode). */
  answered(): number;
  stop(): Promise<void>;
}

export async function startReferrersProxy(registry: StartedRegistry, mode: ReferrersMode = 'api'): Promise<ReferrersProxy> {
  let answered = 0;
  const state: { mode: ReferrersMode; pageSize: number | undefined } = { mode, pageSize: undefined };
  const v2 = join(registry.storageDir, 'docker', 'registry', 'v2');

  const intercept = async (req: IncomingMessage, res: ServerResponse): Promise<number | undefined> => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const m = REFERRERS_PATH.exec(url.pathname);
    if (req.method !== 'GET' || !m || state.mode === 'tag-schema') return undefined;
    answered++;
    const [, name, subject] = m as unknown as [string, string, string];
    const artifactType = url.searchParams.get('artifactType') ?? undefined;
    let list = await referrersOf(v2, name, subject);
    const filtered = state.mode === 'api' && artifactType !== undefined;
    if (filtered) list = list.filter((d) => d.artifactType === artifactType);
    const page = Number(url.searchParams.get('page') ?? '0');
    const headers: Record<string, string> = { 'content-type': OCI_INDEX };
    if (filtered) headers['oci-filters-applied'] = 'artifactType';
    if (state.pageSize !== undefined) {
      const size = state.pageSize;
      if ((page + 1) * size < list.length) {
        const next = new URLSearchParams(url.searchParams);
        next.set('page', String(page + 1));
        headers['link'] = `<${url.pathname}?${next.toString()}>; rel="next"`;
      }
      list = list.slice(page * size, (page + 1) * size);
    }
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: list }));
    headers['content-length'] = String(body.length);
    res.writeHead(200, headers);
    res.end(body);
    return 200;
  };

  const proxy = await startFaultProxy({ upstream: registry.host, intercept });
  return {
    host: proxy.host,
    proxy,
    get mode() {
      return state.mode;
    },
    set mode(m: ReferrersMode) {
      state.mode = m;
    },
    get pageSize() {
      return state.pageSize;
    },
    set pageSize(n: number | undefined) {
      state.pageSize = n;
    },
    answered: () => answered,
    stop: () => proxy.stop(),
  };
}

/** Every manifest revision the registry stores for `name` whose subject is `subject`, as the API lists them. */
async function referrersOf(v2: string, name: string, subject: string): Promise<Listed[]> {
  const revisions = join(v2, 'repositories', name, '_manifests', 'revisions', 'sha256');
  let hexes: string[];
  try {
    hexes = (await readdir(revisions)).sort();
  } catch {
    return []; // no such repository: no referrers, not an error (the spec's answer)
  }
  const out: Listed[] = [];
  for (const hex of hexes) {
    const bytes = await readFile(join(v2, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data')).catch(() => undefined);
    if (!bytes) continue;
    let doc: { mediaType?: string; artifactType?: string; config?: { mediaType?: string }; subject?: { digest?: string }; annotations?: Record<string, string> };
    try {
      doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
    } catch {
      continue;
    }
    if (doc.subject?.digest !== subject) continue;
    const artifactType = doc.artifactType ?? doc.config?.mediaType;
    out.push({
      mediaType: doc.mediaType ?? OCI_MANIFEST,
      digest: `sha256:${hex}`,
      size: bytes.length,
      ...(artifactType !== undefined ? { artifactType } : {}),
      ...(doc.annotations !== undefined ? { annotations: doc.annotations } : {}),
    });
  }
  return out;
}
