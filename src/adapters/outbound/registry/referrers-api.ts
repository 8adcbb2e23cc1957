import { InvalidManifestError } from '../../../domain/errors.js';
import type { Descriptor } from '../../../domain/image/descriptor.js';
import type { Referrer } from '../../../ports/image-source/image-source.js';
import type { Digest } from '../../../domain/image/digest.js';
import { MediaType } from '../../../domain/image/media-types.js';
import {
  asReferrers,
  filterReferrers,
  MAX_REFERRERS_BYTES,
  MAX_REFERRERS_PAGES,
  mergeReferrers,
  parseReferrersIndex,
} from '../../../domain/image/referrers.js';
import { abortError, transportError } from '../http/transport-errors.js';
import { readCapped, type RegistryClient, type Response } from './registry-client.js';

/** `/v2/<name>/referrers/<digest>[?artifactType=…]`. */
export function referrersPath(repositoryPath: string, subject: Digest, artifactType: string | undefined): string {
  const query = artifactType === undefined ? '' : `?artifactType=${encodeURIComponent(artifactType)}`;
  return `/v2/${repositoryPath}/referrers/${subject.toString()}${query}`;
}

/**
 * The referrers API's list for `subject`, every page of it; undefined when
 * the registry has no such API (see `noApi`). The
 * artifactType filter is asked of the registry and applied here as well
 * unless the registry says it applied it (`OCI-Filters-Applied`).
 */
export async function fetchReferrersFromApi(
  client: RegistryClient,
  repositoryPath: string,
  subject: Digest,
  artifactType: string | undefined,
  signal: AbortSignal | undefined,
): Promise<Referrer[] | undefined> {
  const what = `referrers of ${subject.toString()}`;
  const pages: Descriptor[][] = [];
  let path = referrersPath(repositoryPath, subject, artifactType);
  for (let page = 0; ; page++) {
    const res = await client.get(path, { accept: MediaType.OciIndex }, signal);
    if (page === 0 && noApi(res)) {
      await res.body.dump();
      return undefined;
    }
    if (res.statusCode !== 200) throw await client.statusError(res, what);
    const filtered = filtersApplied(res).has('artifacttype');
    const next = nextPage(res, client.origin, what);
    let body: Buffer;
    try {
      body = await readCapped(res, MAX_REFERRERS_BYTES, what);
    } catch (err) {
      if (signal?.aborted) throw abortError(signal);
      throw transportError(err, new URL(client.origin).host);
    }
    const list = parseReferrersIndex(body, header(res, 'content-type'), what);
    pages.push(filtered ? list : filterReferrers(list, artifactType));
    if (next === undefined) break;
    if (page + 1 >= MAX_REFERRERS_PAGES) throw new InvalidManifestError(`${what}: more than ${MAX_REFERRERS_PAGES} pages`);
    path = next;
  }
  return asReferrers(mergeReferrers(pages));
}

/** Statuses that mean "no referrers API here", and fall back to the tag schema. */
const NO_API_STATUSES = new Set([404, 400, 406]);

/**
 * Whether the first answer says the registry has no referrers API: a 404, as
 * the distribution spec tells clients to read it (Debian's docker-registry
 * 2.8 answers so); a 400 or 406 from registries that reject the route or the
 * Accept; or a 200 that is some other document (a web page in front of the
 * registry). go-containerregistry falls back on the same answers. A 401/403
 * or 5xx is not among them: a refusal or a failure must not read as "none".
 */
function noApi(res: Response): boolean {
  if (NO_API_STATUSES.has(res.statusCode)) return true;
  const type = header(res, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  return res.statusCode === 200 && type !== undefined && type !== '' && type !== MediaType.OciIndex;
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** `OCI-Filters-Applied: artifactType`, a comma-separated list of the filters the registry honoured. */
function filtersApplied(res: Response): Set<string> {
  return new Set((header(res, 'oci-filters-applied') ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
}

/**
 * The path of the next page from `Link: <url>; rel="next"`. It must stay on
 * the registry's origin: credentials go with it.
 */
function nextPage(res: Response, origin: string, what: string): string | undefined {
  const link = header(res, 'link');
  if (link === undefined) return undefined;
  for (const part of link.split(',')) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (!m || !/(?:^|;)\s*rel="?next"?\s*(?:;|$)/i.test(m[2] ?? '')) continue;
    let url: URL;
    try {
      url = new URL(m[1] ?? '', origin);
    } catch {
      throw new InvalidManifestError(`${what}: the next page's link is not a URL`);
    }
    if (url.origin !== origin) throw new InvalidManifestError(`${what}: the next page is on another host (${url.host})`);
    return `${url.pathname}${url.search}`;
  }
  return undefined;
}
