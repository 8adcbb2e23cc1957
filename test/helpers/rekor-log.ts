/**
 * A test transparency log: a Rekor-like ECDSA key, entry bodies
 * (hashedrekord 0.0.1, dsse 0.0.1), SETs over them, an RFC 6962 Merkle tree
 * with an inclusion proof, and a checkpoint signed as a note.
 */
import { createHash, randomBytes, sign } from 'node:crypto';
import { canonicalJson, type JsonValue } from '../../src/domain/encryption/jcs.js';
import { ecKey, toPem, type KeyPair } from './x509-builder.js';

export interface RekorLog {
  readonly key: KeyPair;
  /** PKIX PEM, as `rekorPublicKeyData` takes it. */
  readonly publicPem: string;
  /** sha256 of the SPKI DER. */
  readonly logId: Buffer;
  /** The checkpoint origin line and the signer name of the note. */
  readonly origin: string;
  readonly name: string;
}

export function rekorLog(name = 'rekor.test.example'): RekorLog {
  const key = ecKey();
  const spki = key.publicKey.export({ type: 'spki', format: 'der' });
  return { key, publicPem: toPem('PUBLIC KEY', spki), logId: createHash('sha256').update(spki).digest(), origin: `${name} - 1234567890`, name };
}

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** A hashedrekord 0.0.1 body for a signature over `data` by the key or certificate `verifierPem`. */
export function hashedRekordBody(data: Buffer, signature: Buffer, verifierPem: string): Buffer {
  return Buffer.from(canonicalJson({
    apiVersion: '0.0.1',
    kind: 'hashedrekord',
    spec: {
      data: { hash: { algorithm: 'sha256', value: sha256(data).toString('hex') } },
      signature: { content: signature.toString('base64'), publicKey: { content: Buffer.from(verifierPem).toString('base64') } },
    },
  }), 'utf8');
}

/** A dsse 0.0.1 body for an envelope whose one signature is `signature` by `verifierPem`. */
export function dsseBody(envelopeJson: string, payload: Buffer, signature: Buffer, verifierPem: string): Buffer {
  return Buffer.from(canonicalJson({
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(Buffer.from(envelopeJson)).toString('hex') },
      payloadHash: { algorithm: 'sha256', value: sha256(payload).toString('hex') },
      signatures: [{ signature: signature.toString('base64'), verifier: Buffer.from(verifierPem).toString('base64') }],
    },
  }), 'utf8');
}

export interface LoggedEntry {
  readonly body: Buffer;
  readonly integratedTime: number;
  readonly logIndex: number;
  readonly logId: Buffer;
  /** The SET: the log's signature over the canonical JSON of body, integratedTime, logID, logIndex. */
  readonly signedEntryTimestamp: Buffer;
  readonly inclusionProof: InclusionProof;
}

export interface InclusionProof {
  readonly logIndex: number;
  readonly treeSize: number;
  readonly rootHash: Buffer;
  readonly hashes: readonly Buffer[];
  readonly checkpoint: string;
}

export function signedEntryTimestamp(log: RekorLog, body: Buffer, integratedTime: number, logIndex: number): Buffer {
  const payload: JsonValue = { body: body.toString('base64'), integratedTime, logID: log.logId.toString('hex'), logIndex };
  return sign('sha256', Buffer.from(canonicalJson(payload), 'utf8'), { key: log.key.privateKey, dsaEncoding: 'der' });
}

/**
 * Logs `body` at `logIndex` of a tree of `treeSize` leaves (the others
 * random), with its SET, inclusion proof and signed checkpoint.
 */
export function logEntry(log: RekorLog, body: Buffer, integratedTime: number, options: { logIndex?: number; treeSize?: number } = {}): LoggedEntry {
  const treeSize = options.treeSize ?? 13;
  const logIndex = options.logIndex ?? 6;
  const leaves = Array.from({ length: treeSize }, (_, i) => (i === logIndex ? body : randomBytes(40)));
  const leafHashes = leaves.map((l) => sha256(Buffer.from([0]), l));
  const rootHash = merkleRoot(leafHashes);
  return {
    body,
    integratedTime,
    logIndex,
    logId: log.logId,
    signedEntryTimestamp: signedEntryTimestamp(log, body, integratedTime, logIndex),
    inclusionProof: { logIndex, treeSize, rootHash, hashes: inclusionPath(logIndex, leafHashes), checkpoint: checkpoint(log, treeSize, rootHash) },
  };
}

/** RFC 6962 MTH: split at the largest power of two below n. */
export function merkleRoot(hashes: readonly Buffer[]): Buffer {
  if (hashes.length === 0) return sha256();
  if (hashes.length === 1) return hashes[0]!;
  const k = largestPowerOfTwoBelow(hashes.length);
  return sha256(Buffer.from([1]), merkleRoot(hashes.slice(0, k)), merkleRoot(hashes.slice(k)));
}

/** RFC 6962 PATH(m, D[n]), leaf to root. */
export function inclusionPath(m: number, hashes: readonly Buffer[]): Buffer[] {
  if (hashes.length <= 1) return [];
  const k = largestPowerOfTwoBelow(hashes.length);
  return m < k
    ? [...inclusionPath(m, hashes.slice(0, k)), merkleRoot(hashes.slice(k))]
    : [...inclusionPath(m - k, hashes.slice(k)), merkleRoot(hashes.slice(0, k))];
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** A signed note: `origin\nsize\nb64(root)\n`, a blank line, then `— name b64(keyHint ‖ sig)`. */
export function checkpoint(log: RekorLog, treeSize: number, rootHash: Buffer): string {
  const note = `${log.origin}\n${treeSize}\n${rootHash.toString('base64')}\n`;
  const sig = sign('sha256', Buffer.from(note, 'utf8'), { key: log.key.privateKey, dsaEncoding: 'der' });
  return `${note}\n\u2014 ${log.name} ${Buffer.concat([log.logId.subarray(0, 4), sig]).toString('base64')}\n`;
}
