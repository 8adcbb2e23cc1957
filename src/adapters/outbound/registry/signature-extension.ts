import { decodeBase64 } from '../../../domain/encryption/base64.js';
import { NetworkError } from '../../../domain/errors.js';
import type { Digest } from '../../../domain/image/digest.js';

/** c/image's bound on the signature list a registry may send. */
export const MAX_SIGNATURE_LIST_BYTES = 4 << 20;

/** `/extensions/v2/<Path()>/signatures/<algo:hex>`: the OpenShift ("X-R-S-S") signature list of one manifest. */
export function signatureExtensionPath(repositoryPath: string, manifestDigest: Digest): string {
  return `/extensions/v2/${repositoryPath}/signatures/${manifestDigest.toString()}`;
}

/**
 * `{"signatures":[{"schemaVersion":2,"type":"atomic","content":"<base64>"},…]}`:
 * the decoded contents of the schemaVersion 2 `atomic` entries, in order.
 * Other entries are skipped; a body that is not such a list is an error.
 */
export function parseSignatureList(body: Buffer, what: string): Buffer[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new NetworkError(`${what}: the registry sent a signature list that is not JSON`);
  }
  const list = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>)['signatures'] : undefined;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new NetworkError(`${what}: "signatures" is not a list`);
  const out: Buffer[] = [];
  for (const entry of list as unknown[]) {
    if (typeof entry !== 'object' || entry === null) throw new NetworkError(`${what}: a signature entry is not an object`);
    const e = entry as Record<string, unknown>;
    if (e['schemaVersion'] !== 2 || e['type'] !== 'atomic') continue;
    const content = e['content'];
    const bytes = typeof content === 'string' ? decodeBase64(content.replace(/[\r\n]/g, '')) : undefined;
    if (!bytes) throw new NetworkError(`${what}: a signature's content is not base64`);
    out.push(bytes);
  }
  return out;
}
