import { createHash, type KeyObject } from 'node:crypto';
import type { TrustMaterial } from '@sigstore/verify';
import { SigstoreCheckError } from '../../../../domain/errors.js';
import { parseCosignPublicKey } from '../cosign-public-key.js';
import { sigstoreCore } from './sigstore-modules.js';

type TLogAuthority = TrustMaterial['tlogs'][number];

/** The policy gives no validity periods: every key and CA is trusted for all time, as containers/image does. */
const ALWAYS = { start: new Date(0), end: new Date(8_640_000_000_000_000) };

export interface RekorKey {
  readonly key: KeyObject;
  readonly spkiDer: Buffer;
  /** sha256 of the SPKI: what log entries name the log by. */
  readonly logId: Buffer;
}

export function rekorKeys(pems: readonly Buffer[]): RekorKey[] {
  return pems.map((pem, i) => {
    let k;
    try {
      k = parseCosignPublicKey(pem, `Rekor public key ${i + 1}`);
    } catch (err) {
      throw new SigstoreCheckError('format', (err as Error).message);
    }
    if (k.kind !== 'ecdsa') throw new SigstoreCheckError('format', `Rekor public key ${i + 1} is ${k.kind}, but Rekor keys must be ECDSA`);
    return { key: k.key, spkiDer: k.spkiDer, logId: createHash('sha256').update(k.spkiDer).digest() };
  });
}

/**
 * The logs as sigstore-js wants them. The policy names keys, not log URLs,
 * and sigstore-js matches a checkpoint's signer name (as a pattern) against
 * the log's base URL; so the base URL is made of the names the checkpoints
 * carry. What is trusted is the key: the note's key hint and signature.
 */
export function tlogAuthorities(keys: readonly RekorKey[], checkpointNames: readonly string[]): TLogAuthority[] {
  const baseURL = checkpointNames.join('\n');
  return keys.map((k) => ({ logID: k.logId, baseURL, publicKey: k.key, validFor: ALWAYS }));
}

/** Trust material for sigstore-js, built in memory: no TUF, no network, no CT logs. */
export async function trustMaterial(options: {
  readonly caChains?: readonly (readonly Buffer[])[] | undefined;
  readonly tlogs?: readonly TLogAuthority[] | undefined;
  readonly publicKey?: KeyObject | undefined;
}): Promise<TrustMaterial> {
  const { X509Certificate } = await sigstoreCore();
  const key = options.publicKey;
  return {
    certificateAuthorities: (options.caChains ?? []).map((chain) => ({ certChain: chain.map((der) => X509Certificate.parse(Buffer.from(der))), validFor: ALWAYS })),
    timestampAuthorities: [],
    tlogs: [...(options.tlogs ?? [])],
    ctlogs: [],
    // A bundle's key hint is untrusted and free-form: the one key under test answers for any hint.
    publicKey: () => {
      if (!key) throw new SigstoreCheckError('key-kind', 'the signature names a public key, but the policy trusts certificates');
      return { publicKey: key, validFor: () => true };
    },
  };
}

/** Signer names of the checkpoints in the entries (`— <name> <sig>` lines), for tlogAuthorities. */
export function checkpointNames(envelopes: readonly string[]): string[] {
  const names = new Set<string>();
  for (const env of envelopes) for (const m of env.matchAll(/\u2014 (\S+) \S+\n/g)) if (m[1]) names.add(m[1]);
  return [...names];
}
