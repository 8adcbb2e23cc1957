import { createHash, generateKeyPair as generateKeyPairCb, getHashes, type KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { flattenedDecrypt, type FlattenedJWE } from 'jose';
import { Agent, request } from '../../http/undici.js';
import { canonicalJson, type JsonValue } from '../../../../domain/encryption/jcs.js';
import type { ResourceUri } from '../../../../domain/encryption/resource-uri.js';
import {
  AttestationFailedError,
  ImageTsError,
  InvalidArgumentError,
  KeyBrokerDeniedError,
  KeyBrokerUnavailableError,
} from '../../../../domain/errors.js';
import type { AttestationAgent } from '../../../../ports/keys/attestation-agent.js';
import type { KeyBroker } from '../../../../ports/keys/key-broker.js';
import type { Logger } from '../../../../ports/observability/logger.js';
import { abortError, isTransientError } from '../../http/transport-errors.js';
import { readAtMost } from '../../read-at-most.js';
import { withPublicRoots } from '../../registry/ca-bundle.js';
import { silentLogger } from '../../silent-logger.js';

const generateKeyPair = promisify(generateKeyPairCb);

/** The KBS checks this with an exact semver match. */
export const KBS_PROTOCOL_VERSION = '0.4.0';
const SESSION_COOKIE = 'kbs-session-id';
/** guest-components' bound; in practice a call makes at most two (see getResource). */
const MAX_GETS = 3;
const MAX_BODY = 64 << 20;
const MAX_DETAIL = 200;
/** 401 variants that a fresh attestation does not change: asking again is pointless. */
const DEFINITIVE_REFUSALS = new Set(['PolicyDeny', 'PluginInternalError']);
const HASHES = ['sha256', 'sha384', 'sha512', 'sm3'].filter((h) => getHashes().includes(h));

/** The `tee-pubkey` JWK with exactly the members the KBS's typed struct keeps; it re-serialises that struct to hash. */
export interface TeePubkey {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly alg: 'ECDH-ES+A256KW';
  readonly x: string;
  readonly y: string;
}

/**
 * The report data the TEE evidence must carry: H(JCS(runtime data)), where the
 * runtime data always includes `additional-evidence`, empty without extra devices.
 */
export function kbsReportData(hash: string, nonce: string, teePubkey: TeePubkey, additionalEvidence = ''): Buffer {
  const runtimeData = { 'additional-evidence': additionalEvidence, nonce, 'tee-pubkey': { ...teePubkey } };
  return createHash(hash).update(canonicalJson(runtimeData), 'utf8').digest();
}

export interface KbsKeyBrokerOptions {
  /** `http(s)://host[:port]`, optionally with a path prefix in front of `/kbs/v0`. */
  readonly url: string;
  /** PEM certificates trusted for an https KBS besides the system roots. */
  readonly extraCaPems?: readonly string[];
  readonly attester: AttestationAgent;
  /** Initdata TOML the guest was started with; sent as `init-data` so the KBS can check its digest. */
  readonly initdata?: string;
  readonly connectTimeoutMs?: number;
  /** Limit on waiting for response headers, and then between body chunks. */
  readonly requestTimeoutMs?: number;
  /** Extra attempts after a transport failure or a 5xx; guest-components makes 5 attempts 1 s apart. */
  readonly retries?: number;
  readonly retryDelayMs?: number;
  readonly logger?: Logger;
}

interface Session {
  readonly cookie: string;
  readonly privateKey: KeyObject;
  /** performance.now() when the attestation completed. */
  readonly establishedAt: number;
}

interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

interface KbsProblem {
  readonly variant: string;
  readonly text: string;
}

/**
 * Talks the Trustee KBS protocol directly (background-check mode): RCAR
 * handshake with the attester's evidence, then resources over the session
 * cookie, each JWE-wrapped to an ephemeral key that never leaves this object.
 * One session serves every resource until the KBS stops accepting it.
 */
export class KbsKeyBroker implements KeyBroker {
  readonly description: string;
  private readonly base: URL;
  private readonly agent: Agent;
  private readonly logger: Logger;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly closing = new AbortController();
  private flight: Promise<Session> | undefined;

  constructor(private readonly o: KbsKeyBrokerOptions) {
    let url: URL;
    try {
      url = new URL(o.url);
    } catch {
      throw new InvalidArgumentError('the KBS URL is not a URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InvalidArgumentError(`the KBS URL must be http or https, not ${url.protocol.replace(/:$/, '')}`);
    }
    if (url.username || url.password) throw new InvalidArgumentError('the KBS URL must not carry credentials');
    const prefix = url.pathname.replace(/\/+$/, '');
    this.base = new URL(`${url.origin}${prefix}/kbs/v0`);
    this.description = `KBS ${url.origin}${prefix}`;
    for (const [i, pem] of (o.extraCaPems ?? []).entries()) {
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new InvalidArgumentError(`KBS CA certificate #${i + 1} is not PEM`);
    }
    const extra = o.extraCaPems ?? [];
    const requestTimeout = o.requestTimeoutMs ?? 30_000;
    this.agent = new Agent({
      connect: {
        timeout: o.connectTimeoutMs ?? 10_000,
        // `ca` replaces node's bundle, so keep the public roots next to the extra CAs.
        ...(extra.length > 0 ? { ca: withPublicRoots(extra) } : {}),
      },
      headersTimeout: requestTimeout,
      bodyTimeout: requestTimeout,
    });
    this.logger = o.logger ?? silentLogger;
    this.retries = o.retries ?? 4;
    this.retryDelayMs = o.retryDelayMs ?? 1000;
  }

  /**
   * A 401 means "attest again" unless it came on a session attested during
   * this very call with a variant a new attestation cannot change (policy
   * denial, resource missing): then it is the KBS's answer.
   */
  async getResource(uri: ResourceUri, signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted) throw abortError(signal);
    const started = performance.now();
    const path = `/${encodeURIComponent(uri.plugin)}/${uri.segments.map(encodeURIComponent).join('/')}${uri.query ? `?${uri.query}` : ''}`;
    let refusal: KbsProblem | undefined;
    for (let get = 1; get <= MAX_GETS; get++) {
      const flight = this.sessionFlight();
      const session = await raceAbort(flight, signal);
      const res = await this.call(`the request for ${uri}`, 'GET', path, session.cookie, undefined, signal);
      this.logger.log('debug', 'kbs.resource', { kbs: this.description, uri: uri.toString(), status: res.status });
      if (res.status === 200) return this.open(res.body, session, uri);
      if (res.status === 404) {
        const p = problem(res, [session.cookie]);
        throw new KeyBrokerDeniedError(`${this.description} has no ${uri}: ${p.text}`);
      }
      if (res.status !== 401) throw this.unexpected(`the request for ${uri}`, res, [session.cookie]);
      refusal = problem(res, [session.cookie]);
      if (session.establishedAt >= started && DEFINITIVE_REFUSALS.has(refusal.variant)) break;
      if (this.flight === flight) this.flight = undefined;
      if (get < MAX_GETS) this.logger.log('debug', 'kbs.reattest', { kbs: this.description, uri: uri.toString(), reason: refusal.variant });
    }
    throw new KeyBrokerDeniedError(`${this.description} refused ${uri}: ${refusal?.text ?? 'HTTP 401'}`);
  }

  /** Drops the session and any open connection; the broker can still be used afterwards only by a new instance. */
  async close(): Promise<void> {
    this.closing.abort(new KeyBrokerUnavailableError(`${this.description}: the key broker was closed`));
    this.flight = undefined;
    await this.agent.destroy();
  }

  /** One handshake at a time, shared by every caller; a failed one is forgotten so that the next call tries again. */
  private sessionFlight(): Promise<Session> {
    if (this.flight) return this.flight;
    const flight = this.handshake(this.closing.signal);
    this.flight = flight;
    flight.catch(() => {
      if (this.flight === flight) this.flight = undefined;
    });
    return flight;
  }

  private async handshake(signal: AbortSignal): Promise<Session> {
    const tee = await this.fromAttester('the TEE type', () => this.o.attester.getTeeType(signal));
    const authBody = { version: KBS_PROTOCOL_VERSION, tee, 'extra-params': { 'supported-hash-algorithms': HASHES } };
    const auth = await this.call('the authentication request', 'POST', '/auth', undefined, JSON.stringify(authBody), signal);
    if (auth.status === 401) {
      throw new AttestationFailedError(`${this.description} refused to start attestation for TEE ${tee}: ${problem(auth, []).text}`);
    }
    if (auth.status !== 200) throw this.unexpected('the authentication request', auth, []);
    let cookie = sessionCookie(auth.headers);
    if (!cookie) throw new KeyBrokerUnavailableError(`${this.description} answered the authentication request without a ${SESSION_COOKIE} cookie`);
    const { nonce, hash } = this.challenge(auth.body);

    const { publicKey, privateKey } = await generateKeyPair('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new ImageTsError('INTERNAL', 'node exported an EC key without coordinates');
    const teePubkey: TeePubkey = { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: jwk.x, y: jwk.y };

    const reportData = kbsReportData(hash, nonce, teePubkey);
    const evidence = await this.fromAttester('evidence', () => this.o.attester.getEvidence(reportData, signal));
    let primary: JsonValue;
    try {
      primary = JSON.parse(evidence.toString('utf8')) as JsonValue;
    } catch {
      throw new AttestationFailedError(`the ${tee} attester produced evidence that is not JSON`);
    }
    const attestation = {
      'init-data': this.o.initdata === undefined ? null : { format: 'toml', body: this.o.initdata },
      'runtime-data': { nonce, 'tee-pubkey': teePubkey },
      'tee-evidence': { primary_evidence: primary, additional_evidence: '' },
    };
    const attest = await this.call('the attestation', 'POST', '/attest', cookie, JSON.stringify(attestation), signal);
    if (attest.status === 401) {
      throw new AttestationFailedError(`${this.description} refused the ${tee} attestation: ${problem(attest, [cookie]).text}`);
    }
    if (attest.status !== 200) throw this.unexpected('the attestation', attest, [cookie]);
    // Only the cookie is used afterwards (background-check mode); the token is checked for shape, never kept.
    const token = parseJson(attest.body);
    if (!isRecord(token) || typeof token['token'] !== 'string') {
      throw new KeyBrokerUnavailableError(`${this.description} answered the attestation without a token`);
    }
    cookie = sessionCookie(attest.headers) ?? cookie;
    this.logger.log('debug', 'kbs.attested', { kbs: this.description, tee, hash });
    return { cookie, privateKey, establishedAt: performance.now() };
  }

  private challenge(body: Buffer): { nonce: string; hash: string } {
    const c = parseJson(body);
    if (!isRecord(c) || typeof c['nonce'] !== 'string' || c['nonce'] === '') {
      throw new KeyBrokerUnavailableError(`${this.description} answered the authentication request without a nonce`);
    }
    const extra = c['extra-params'];
    // An empty string or an object without a choice both mean the protocol's default.
    const selected = isRecord(extra) ? extra['selected-hash-algorithm'] : undefined;
    if (selected === undefined) return { nonce: c['nonce'], hash: 'sha384' };
    if (typeof selected !== 'string' || !HASHES.includes(selected.toLowerCase())) {
      throw new KeyBrokerUnavailableError(`${this.description} selected a hash algorithm this client did not offer`);
    }
    return { nonce: c['nonce'], hash: selected.toLowerCase() };
  }

  private async fromAttester<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof ImageTsError) throw err;
      throw new AttestationFailedError(`the attestation agent could not produce ${what}`, { cause: err });
    }
  }

  private async open(body: Buffer, session: Session, uri: ResourceUri): Promise<Buffer> {
    const j = parseJson(body);
    const str = (k: string): string | undefined => (isRecord(j) && typeof j[k] === 'string' ? j[k] : undefined);
    const [prot, iv, ciphertext, tag] = [str('protected'), str('iv'), str('ciphertext'), str('tag')];
    if (prot === undefined || iv === undefined || ciphertext === undefined || tag === undefined) {
      throw new KeyBrokerUnavailableError(`${this.description} answered ${uri} with something that is not a JWE`);
    }
    const jwe: FlattenedJWE = { protected: prot, iv, ciphertext, tag };
    const encryptedKey = str('encrypted_key');
    if (encryptedKey !== undefined) jwe.encrypted_key = encryptedKey;
    const aad = str('aad');
    if (aad !== undefined) jwe.aad = aad;
    try {
      const { plaintext } = await flattenedDecrypt(jwe, session.privateKey, {
        keyManagementAlgorithms: ['ECDH-ES+A256KW', 'RSA-OAEP-256'],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      return Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
    } catch (err) {
      // A KBS that wraps to another key or garbles the answer is misbehaving; the resource itself may be fine.
      throw new KeyBrokerUnavailableError(`${this.description} answered ${uri} with a JWE that does not decrypt with this session's key`, {
        cause: err,
      });
    }
  }

  /** One request, retried after transport failures and 5xx; any other status comes back to the caller. */
  private async call(
    what: string,
    method: 'GET' | 'POST',
    path: string,
    cookie: string | undefined,
    body: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<HttpResult> {
    const url = new URL(this.base.href + path);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (cookie !== undefined) headers['cookie'] = `${SESSION_COOKIE}=${cookie}`;
    for (let attempt = 0; ; attempt++) {
      let result: HttpResult | undefined;
      let failure: unknown;
      try {
        result = await this.send(url, method, headers, body, signal);
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        if (err instanceof ImageTsError) throw err;
        failure = err;
      }
      const retriable = result ? result.status >= 500 : isTransientError(failure);
      if (result && !retriable) return result;
      if (!retriable || attempt >= this.retries) {
        if (result) return result;
        throw new KeyBrokerUnavailableError(`cannot reach ${this.description} for ${what}: ${errorCode(failure)}`, { cause: failure });
      }
      this.logger.log('debug', 'kbs.retry', { kbs: this.description, what, attempt: attempt + 1, reason: result ? `HTTP ${result.status}` : errorCode(failure) });
      try {
        await sleep(this.retryDelayMs, undefined, signal ? { signal } : undefined);
      } catch {
        throw abortError(signal ?? this.closing.signal);
      }
    }
  }

  private async send(
    url: URL,
    method: 'GET' | 'POST',
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<HttpResult> {
    const res = await request(url, { method, headers, body, dispatcher: this.agent, signal });
    const answer = await readAtMost(res.body, MAX_BODY, () => new KeyBrokerUnavailableError(`${this.description} answered with more than ${MAX_BODY} bytes`));
    return { status: res.statusCode, headers: res.headers, body: answer };
  }

  private unexpected(what: string, res: HttpResult, secrets: readonly string[]): KeyBrokerUnavailableError {
    return new KeyBrokerUnavailableError(`${this.description} answered HTTP ${res.status} to ${what} (${problem(res, secrets).text})`);
  }
}

/** Resolves like `p`, or rejects as soon as `signal` aborts; `p` itself keeps running for other callers. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function sessionCookie(headers: Record<string, string | string[] | undefined>): string | undefined {
  const raw = headers['set-cookie'];
  for (const line of Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) {
    const m = /^\s*kbs-session-id=([^;\s]*)/.exec(line);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The KBS error body (`type` ending in the variant, `detail`) as one short
 * line, with the session's secrets masked in case the server echoes them.
 */
function problem(res: HttpResult, secrets: readonly string[]): KbsProblem {
  const j = parseJson(res.body);
  const type = isRecord(j) && typeof j['type'] === 'string' ? j['type'] : '';
  const variant = type.split('/').pop() ?? '';
  let detail = isRecord(j) && typeof j['detail'] === 'string' ? j['detail'] : '';
  for (const s of secrets) if (s) detail = detail.split(s).join('<redacted>');
  detail = detail.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (detail.length > MAX_DETAIL) detail = `${detail.slice(0, MAX_DETAIL)}…`;
  const text = variant ? (detail ? `${variant}: ${detail}` : variant) : `HTTP ${res.status}`;
  return { variant, text };
}

function errorCode(err: unknown): string {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return err instanceof Error ? err.name : 'unknown error';
}
