import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Dispatcher } from '../http/undici.js';
import { parseChallenges, type AuthChallenge } from '../../../domain/auth/challenge.js';
import { ImageTsError, NetworkError, type ErrorCode, NotFoundError, UnauthorizedError, UnsupportedError } from '../../../domain/errors.js';
import type { Logger } from '../../../ports/observability/logger.js';
import type { Credentials } from '../../../ports/image-source/image-source.js';
import { abortError, backoffMs, isTransientError, transportError } from '../http/transport-errors.js';
import { readAtMost } from '../read-at-most.js';

export type Response = Dispatcher.ResponseData;

export interface RegistryClientOptions {
  /**
   * `insecure`: what containers/image does for an insecure registry, HTTPS
   * without certificate checks, and plain HTTP when the TLS handshake fails.
   * The dispatcher must then skip verification.
   */
  readonly scheme: 'https' | 'http' | 'insecure';
  /** `host[:port]` actually contacted. */
  readonly host: string;
  /** Repository path, e.g. `library/busybox`. */
  readonly repository: string;
  readonly dispatcher: Dispatcher;
  readonly credentials: Credentials | undefined;
  readonly retries: number;
  readonly logger: Logger;
  readonly userAgent: string;
}

const MAX_REDIRECTS = 5;
const MAX_WAIT_MS = 10_000;
const BASE_BACKOFF_MS = 250;
const MAX_TOKEN_BODY = 1 << 20;
const MIN_TOKEN_LIFETIME_S = 60;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

interface CachedToken {
  readonly value: string;
  readonly expiresAt: number;
}

/**
 * Talks to one repository of one registry: pings once for the auth challenge, attaches
 * credentials only to the registry's own origin, retries transient failures.
 */
export class RegistryClient {
  private base: string;
  private challenge: Promise<AuthChallenge | undefined> | undefined;
  private token: CachedToken | undefined;
  private tokenFlight: Promise<string> | undefined;
  private signatureExtension = false;

  constructor(private readonly o: RegistryClientOptions) {
    this.base = new URL(`${o.scheme === 'http' ? 'http' : 'https'}://${o.host}`).origin;
  }

  /** Where requests go, and the only origin that gets credentials; an insecure registry's is settled by the ping. */
  get origin(): string {
    return this.base;
  }

  /**
   * GETs a registry path, following redirects by hand. A 401 under bearer auth re-fetches
   * the token once. Any status comes back; callers judge it (see `statusError`).
   */
  async get(path: string, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<Response> {
    const challenge = await this.ping(signal);
    const url = new URL(path, this.origin);
    let res = await this.withRetries(signal, () => this.followRedirects(url, headers, challenge, signal));
    if (res.statusCode === 401 && challenge?.scheme === 'bearer' && this.o.credentials?.kind !== 'registry-token') {
      await res.body.dump();
      this.token = undefined;
      res = await this.withRetries(signal, () => this.followRedirects(url, headers, challenge, signal));
    }
    return res;
  }

  /** A typed error for an unwanted status; consumes the body. Never includes credentials. */
  async statusError(res: Response, what: string): Promise<ImageTsError> {
    const status = res.statusCode;
    if (status === 401 || status === 403) {
      await res.body.dump();
      return new UnauthorizedError(`${what}: ${this.o.host} refused access (HTTP ${status})`);
    }
    const detail = await registryErrorDetail(res);
    if (status === 404) return new NotFoundError(`${what} not found`);
    if (status === 405 || detail.startsWith('UNSUPPORTED')) {
      return new UnsupportedError(`${what}: ${this.o.host} does not support this request (HTTP ${status})`);
    }
    return new NetworkError(`${what}: ${this.o.host} answered HTTP ${status}${detail ? ` (${detail})` : ''}`);
  }

  /** Whether the `/v2/` answer carried `X-Registry-Supports-Signatures: 1` (the OpenShift signature extension). */
  async supportsSignatureExtension(signal: AbortSignal | undefined): Promise<boolean> {
    await this.ping(signal);
    return this.signatureExtension;
  }

  /** The challenge from `GET /v2/`, fetched once and reused for every request. */
  private ping(signal: AbortSignal | undefined): Promise<AuthChallenge | undefined> {
    this.challenge ??= this.doPing(signal).catch((err: unknown) => {
      this.challenge = undefined; // a failed ping is retried by the next request
      throw err;
    });
    return this.challenge;
  }

  private async doPing(signal: AbortSignal | undefined): Promise<AuthChallenge | undefined> {
    const ping = (): Promise<Response> => this.withRetries(signal, () => this.send(new URL('/v2/', this.origin), 'GET', {}, undefined, signal));
    let res: Response;
    if (this.o.scheme === 'insecure' && this.base.startsWith('https:')) {
      // One HTTPS try; if it fails for any reason the insecure registry is spoken to in plain HTTP (containers/image).
      try {
        res = await this.send(new URL('/v2/', this.origin), 'GET', {}, undefined, signal);
        if (res.statusCode === 429 || res.statusCode >= 500) {
          await res.body.dump();
          res = await ping();
        }
      } catch {
        if (signal?.aborted) throw abortError(signal);
        this.base = new URL(`http://${this.o.host}`).origin;
        this.o.logger.log('debug', 'registry.insecure-http', { host: this.o.host });
        res = await ping();
      }
    } else {
      res = await ping();
    }
    await res.body.dump();
    if (res.statusCode !== 200 && res.statusCode !== 401) {
      if (res.statusCode >= 500 || res.statusCode === 429) {
        throw new NetworkError(`${this.o.host} answered HTTP ${res.statusCode} to the registry ping`);
      }
      throw new UnsupportedError(`${this.o.host} is not a registry (HTTP ${res.statusCode} for /v2/)`);
    }
    const ext = res.headers['x-registry-supports-signatures'];
    this.signatureExtension = (Array.isArray(ext) ? ext[0] : ext) === '1';
    // The first challenge we understand wins; others are ignored, as c/image does.
    const challenge = parseChallenges(res.headers['www-authenticate']).find(
      (c) => c.scheme === 'basic' || c.scheme === 'bearer',
    );
    this.o.logger.log('debug', 'registry.ping', { host: this.o.host, status: res.statusCode, auth: challenge?.scheme ?? 'none' });
    return challenge;
  }

  private async followRedirects(
    start: URL,
    headers: Record<string, string>,
    challenge: AuthChallenge | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    let url = start;
    for (let hop = 0; ; hop++) {
      // Credentials go only to the registry itself, never to a CDN or storage host it redirects to.
      const auth = url.origin === this.origin ? await this.authorization(challenge, signal) : undefined;
      const res = await this.send(url, 'GET', headers, auth, signal);
      const location = res.headers['location'];
      if (!REDIRECT_STATUSES.has(res.statusCode) || typeof location !== 'string') return res;
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) throw new NetworkError(`${this.o.host}: more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, url);
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw new NetworkError(`${this.o.host} redirected to an unsupported ${next.protocol} URL`);
      }
      this.o.logger.log('debug', 'registry.redirect', { from: url.host, to: next.host });
      url = next;
    }
  }

  private send(
    url: URL,
    method: 'GET' | 'POST',
    extra: Record<string, string>,
    authorization: string | undefined,
    signal: AbortSignal | undefined,
    body?: string,
  ): Promise<Response> {
    const headers: Record<string, string> = {
      'user-agent': this.o.userAgent,
      'docker-distribution-api-version': 'registry/2.0',
      ...extra,
    };
    if (authorization !== undefined) headers['authorization'] = authorization;
    return request(url, { dispatcher: this.o.dispatcher, method, headers, body, signal });
  }

  /**
   * Runs `attempt` with up to `retries` more tries on connection errors, 429 and 5xx, backing off
   * with jitter (or honouring Retry-After) with at most 10 s of waiting in total.
   */
  private async withRetries(signal: AbortSignal | undefined, attempt: () => Promise<Response>): Promise<Response> {
    let waited = 0;
    for (let n = 0; ; n++) {
      let retryAfter: string | undefined;
      let failure: unknown;
      try {
        const res = await attempt();
        if (!(res.statusCode === 429 || res.statusCode >= 500) || n >= this.o.retries) return res;
        const header = res.headers['retry-after'];
        retryAfter = typeof header === 'string' ? header : undefined;
        failure = `HTTP ${res.statusCode}`;
        await res.body.dump();
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        if (!isTransientError(err) || n >= this.o.retries) throw transportError(err, this.o.host);
        failure = err;
      }
      const wanted = retryAfterMs(retryAfter) ?? backoffMs(n, BASE_BACKOFF_MS, MAX_WAIT_MS);
      const wait = Math.max(0, Math.min(wanted, MAX_WAIT_MS - waited));
      waited += wait;
      this.o.logger.log('debug', 'registry.retry', {
        host: this.o.host,
        attempt: n + 1,
        waitMs: wait,
        reason: typeof failure === 'string' ? failure : transportError(failure, this.o.host).message,
      });
      try {
        await sleep(wait, undefined, { signal });
      } catch {
        throw abortError(signal ?? AbortSignal.abort());
      }
    }
  }

  private async authorization(challenge: AuthChallenge | undefined, signal: AbortSignal | undefined): Promise<string | undefined> {
    const creds = this.o.credentials;
    if (creds?.kind === 'registry-token') return `Bearer ${creds.token}`;
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      // c/image sends Basic even with empty credentials once the registry asked for it.
      const user = creds?.username ?? '';
      const pass = creds?.kind === 'basic' ? creds.password : '';
      return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    }
    return `Bearer ${await this.bearerToken(challenge, signal)}`;
  }

  private async bearerToken(challenge: AuthChallenge, signal: AbortSignal | undefined): Promise<string> {
    if (this.token && Date.now() < this.token.expiresAt) return this.token.value;
    this.tokenFlight ??= this.fetchToken(challenge, signal).finally(() => {
      this.tokenFlight = undefined;
    });
    return this.tokenFlight;
  }

  private async fetchToken(challenge: AuthChallenge, signal: AbortSignal | undefined): Promise<string> {
    const realmText = challenge.params['realm'];
    let realm: URL;
    try {
      realm = new URL(realmText ?? '');
    } catch {
      throw new UnauthorizedError(`${this.o.host} sent a bearer challenge without a usable realm`);
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
      throw new UnauthorizedError(`${this.o.host} sent a bearer realm with unsupported scheme ${realm.protocol}`);
    }
    const service = challenge.params['service'];
    const scope = `repository:${this.o.repository}:pull`;
    const creds = this.o.credentials;
    let res: Response;
    if (creds?.kind === 'identity-token') {
      const form = new URLSearchParams();
      if (service !== undefined) form.set('service', service);
      form.set('scope', scope);
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', creds.token);
      form.set('client_id', 'containers/image');
      const headers = { 'content-type': 'application/x-www-form-urlencoded' };
      res = await this.withRetries(signal, () => this.send(realm, 'POST', headers, undefined, signal, form.toString()));
    } else {
      const url = new URL(realm);
      if (creds?.kind === 'basic' && creds.username !== '') url.searchParams.append('account', creds.username);
      if (service !== undefined) url.searchParams.append('service', service);
      url.searchParams.append('scope', scope);
      const basic =
        creds?.kind === 'basic' && creds.username !== '' && creds.password !== ''
          ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
          : undefined;
      res = await this.withRetries(signal, () => this.send(url, 'GET', {}, basic, signal));
    }
    this.o.logger.log('debug', 'registry.token', { host: this.o.host, realm: realm.host, status: res.statusCode });
    if (res.statusCode !== 200) {
      await res.body.dump();
      if (res.statusCode === 401 || res.statusCode === 403) {
        throw new UnauthorizedError(`token server ${realm.host} refused access to ${this.o.repository} (HTTP ${res.statusCode})`);
      }
      throw new NetworkError(`token server ${realm.host} answered HTTP ${res.statusCode}`);
    }
    const token = parseTokenResponse(await readCapped(res, MAX_TOKEN_BODY, `token from ${realm.host}`, 'UNAUTHORIZED'), realm.host);
    this.token = token;
    return token.value;
  }
}

function parseTokenResponse(body: Buffer, realmHost: string): CachedToken {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new UnauthorizedError(`token server ${realmHost} sent a response that is not JSON`);
  }
  const o = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  const value = typeof o['token'] === 'string' && o['token'] ? o['token'] : o['access_token'];
  if (typeof value !== 'string' || value === '') {
    throw new UnauthorizedError(`token server ${realmHost} sent no token`);
  }
  const expiresIn = typeof o['expires_in'] === 'number' ? Math.max(o['expires_in'], MIN_TOKEN_LIFETIME_S) : MIN_TOKEN_LIFETIME_S;
  const issued = typeof o['issued_at'] === 'string' ? Date.parse(o['issued_at']) : NaN;
  return { value, expiresAt: (Number.isNaN(issued) ? Date.now() : issued) + expiresIn * 1000 };
}

/** Retry-After in seconds or as an HTTP date. */
function retryAfterMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export async function readCapped(res: Response, max: number, what: string, code: ErrorCode = 'INVALID_MANIFEST'): Promise<Buffer> {
  return readAtMost(res.body, max, () => new ImageTsError(code, `${what} is larger than ${max} bytes`));
}

/** `CODE: message` from a distribution error body, flattened to one short line. */
async function registryErrorDetail(res: Response): Promise<string> {
  try {
    const text = (await readCapped(res, 64 * 1024, 'error body')).toString('utf8');
    const doc = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = Array.isArray(doc.errors) ? doc.errors[0] : undefined;
    if (!first) return '';
    const line = [first.code, first.message].filter((x) => typeof x === 'string' && x).join(': ');
    return line.replace(/\s+/g, ' ').slice(0, 200);
  } catch {
    return '';
  }
}
