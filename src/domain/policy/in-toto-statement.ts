import type { Digest } from '../image/digest.js';
import { SigstoreCheckError } from '../errors.js';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** cosign v3's predicate for an image signature. */
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
const STATEMENT_TYPES: readonly string[] = ['https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1'];

/** What a verified cosign v3 statement claims: the subject naming the image's digest, and its name if any. */
export interface StatementClaim {
  /** The subject's `name`, when it has one (cosign writes the repository). */
  readonly name: string | undefined;
}

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const bad = (m: string): SigstoreCheckError => new SigstoreCheckError('format', `in-toto statement: ${m}`);

/**
 * A DSSE payload whose signature verified: it must be an in-toto Statement
 * with cosign's image-signature predicate, and one of its subjects must be
 * `digest`. Other predicates (provenance, SBOMs) are attestations, not
 * signatures, and are refused here.
 */
export function statementClaim(payloadType: string, payload: Buffer, digest: Digest): StatementClaim {
  if (payloadType !== IN_TOTO_PAYLOAD_TYPE) throw bad(`the envelope carries ${payloadType}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (!isRecord(doc)) throw bad('not an object');
  if (typeof doc['_type'] !== 'string' || !STATEMENT_TYPES.includes(doc['_type'])) throw bad(`_type is ${JSON.stringify(doc['_type'])}`);
  if (doc['predicateType'] !== COSIGN_SIGN_PREDICATE) {
    throw bad(`predicateType is ${JSON.stringify(doc['predicateType'])}, not the image signature ${COSIGN_SIGN_PREDICATE}`);
  }
  const subjects = doc['subject'];
  if (!Array.isArray(subjects) || subjects.length === 0) throw bad('no subject');
  const named: string[] = [];
  for (const s of subjects) {
    const d = isRecord(s) && isRecord(s['digest']) ? s['digest'][digest.algorithm] : undefined;
    if (d === digest.encoded) return { name: isRecord(s) && typeof s['name'] === 'string' && s['name'] !== '' ? s['name'] : undefined };
    if (typeof d === 'string') named.push(`${digest.algorithm}:${d}`);
  }
  throw new SigstoreCheckError('statement-subject', `the statement's subject is ${named.join(', ') || 'no ' + digest.algorithm + ' digest'}, not ${digest}`);
}
