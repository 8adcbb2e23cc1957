/**
 * A small Trustee-like KBS for tests, on 127.0.0.1 and a free port: the RCAR
 * handshake at protocol 0.4.0 with the sample verifier, cookie sessions,
 * resources JWE-wrapped to the attested tee-pubkey, Trustee's error bodies
 * and statuses (404 only for a bad path or plugin, 401 for everything else),
 * and switches to simulate faults.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FlattenedEncrypt, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { canonicalJson } from '../../src/domain/encryption/jcs.js';

const VERSION = '0.4.0';
const ERROR_BASE = 'https://github.com/confidential-containers/kbs/errors/';
const SESSION_MINUTES = 5;

export type ResourcePolicy = (path: string, claims: Readonly<Record<string, unknown>>) => boolean;

export interface KbsServerOptions {
  /** Keyed `repo/type/tag`, served by the `resource` plugin. */
  readonly resources: ReadonlyMap<string, Buffer>;
  /** Resource policy; allows everything by default (Trustee's allow_all.rego). */
  readonly allow?: ResourcePolicy;
  /** Put into the challenge's extra-params as `selected-hash-algorithm`; sha384 otherwise. */
  readonly selectedHashAlgorithm?: string;
}

/** Switches a test may flip at any time. */
export interface KbsFaults {
  /** The verifier refuses every attestation (401 AttestationError). */
  denyAttestation: boolean;
  /** The resource policy refuses everything (401 PolicyDeny). */
  denyResource: boolean;
  /** Flip a ciphertext byte of every resource answer. */
  corruptJwe: boolean;
  /** Answer this many more requests with 503 before behaving again. */
  serverErrors: number;
}

export interface KbsRequestRecord {
  readonly method: string;
  /** Path and query as received. */
  readonly path: string;
  readonly status: number;
  readonly cookie: string | undefined;
  readonly body: unknown;
}

export interface KbsStats {
  auth: number;
  attest: number;
  /** GETs of any plugin. */
  resource: number;
  readonly requests: KbsRequestRecord[];
}

export interface StartedKbsServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly stats: KbsStats;
  readonly faults: KbsFaults;
  /** Forgets every session, so that the next GET gets a 401 and the client must attest again. */
  expireSessions(): void;
  /** Session ids issued so far (what the cookie carried), to check they leak nowhere. */
  sessionIds(): string[];
  close(): Promise<void>;
}

interface TeePubkey {
  readonly kty: string;
  readonly crv?: string;
  readonly alg: string;
  readonly x?: string;
  readonly y?: string;
  readonly n?: string;
  readonly e?: string;
}

interface SessionState {
  readonly nonce: string;
  readonly tee: string;
  readonly hash: string;
  attested?: { readonly token: string; readonly teePubkey: TeePubkey; readonly claims: Record<string, unknown> };
}

class KbsFailure extends Error {
  constructor(
    readonly status: 401 | 404 | 400,
    readonly variant: string,
    readonly detail: string,
  ) {
    super(detail);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Keeps exactly the members Trustee's typed tee-pubkey struct has, as the server re-serialises it before hashing. */
function typedPubkey(v: unknown): TeePubkey {
  if (!isRecord(v)) throw new KbsFailure(401, 'AttestationError', 'tee-pubkey is not an object');
  const kty = str(v['kty']);
  const alg = str(v['alg']);
  if (kty === 'EC' && alg) {
    const crv = str(v['crv']);
    const x = str(v['x']);
    const y = str(v['y']);
    if (crv && x && y) return { kty, crv, alg, x, y };
  }
  if (kty === 'RSA' && alg) {
    const n = str(v['n']);
    const e = str(v['e']);
    if (n && e) return { kty, alg, n, e };
  }
  throw new KbsFailure(401, 'AttestationError', 'unsupported tee-pubkey');
}

export async function startKbsServer(options: KbsServerOptions): Promise<StartedKbsServer> {
  const sessions = new Map<string, SessionState>();
  const issued: string[] = [];
  const tokenKey = randomBytes(32);
  const stats: KbsStats = { auth: 0, attest: 0, resource: 0, requests: [] };
  const faults: KbsFaults = { denyAttestation: false, denyResource: false, corruptJwe: false, serverErrors: 0 };
  const allow: ResourcePolicy = options.allow ?? (() => true);

  const setCookie = (res: ServerResponse, id: string): void => {
    const expires = new Date(Date.now() + SESSION_MINUTES * 60_000).toUTCString();
    res.setHeader('set-cookie', `kbs-session-id=${id}; Expires=${expires}`);
  };

  const sessionOf = (req: IncomingMessage): [string, SessionState] | undefined => {
    const m = /(?:^|;\s*)kbs-session-id=([^;]*)/.exec(req.headers.cookie ?? '');
    const id = m?.[1];
    const s = id ? sessions.get(id) : undefined;
    return id && s ? [id, s] : undefined;
  };

  const auth = (req: IncomingMessage, res: ServerResponse, body: unknown): unknown => {
    stats.auth++;
    if (!isRecord(body) || typeof body['tee'] !== 'string') throw new KbsFailure(401, 'AttestationError', 'malformed request');
    // Trustee demands an exact semver match.
    if (body['version'] !== VERSION) throw new KbsFailure(401, 'AttestationError', 'KBS Client Protocol Version Mismatch');
    const id = randomBytes(16).toString('hex');
    const nonce = randomBytes(32).toString('base64');
    const hash = options.selectedHashAlgorithm ?? 'sha384';
    sessions.set(id, { nonce, tee: body['tee'], hash });
    issued.push(id);
    setCookie(res, id);
    return { nonce, 'extra-params': options.selectedHashAlgorithm ? { 'selected-hash-algorithm': hash } : '' };
  };

  const attest = async (req: IncomingMessage, res: ServerResponse, body: unknown): Promise<unknown> => {
    stats.attest++;
    const found = sessionOf(req);
    if (!found) throw new KbsFailure(401, 'UnAuthenticatedCookie', 'no valid kbs-session-id cookie');
    const [id, session] = found;
    if (session.attested) {
      setCookie(res, id);
      return { token: session.attested.token };
    }
    if (!isRecord(body)) throw new KbsFailure(401, 'AttestationError', 'malformed attestation');
    const runtime = body['runtime-data'];
    const evidence = body['tee-evidence'];
    if (!isRecord(runtime) || !isRecord(evidence)) throw new KbsFailure(401, 'AttestationError', 'missing runtime-data or tee-evidence');
    if (runtime['nonce'] !== session.nonce) throw new KbsFailure(401, 'AttestationError', 'nonce mismatch');
    const teePubkey = typedPubkey(runtime['tee-pubkey']);
    const additional = str(evidence['additional_evidence']) ?? '';
    const expected = createHash(session.hash)
      .update(canonicalJson({ 'additional-evidence': additional, nonce: session.nonce, 'tee-pubkey': { ...teePubkey } }))
      .digest();
    // The sample verifier.
    if (session.tee !== 'sample') throw new KbsFailure(401, 'AttestationError', `no verifier for TEE ${session.tee}`);
    const primary = evidence['primary_evidence'];
    const reportData = isRecord(primary) ? str(primary['report_data']) : undefined;
    const got = reportData === undefined ? Buffer.alloc(0) : Buffer.from(reportData, 'base64');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      throw new KbsFailure(401, 'AttestationError', 'sample evidence: report data does not match the runtime data');
    }
    if (faults.denyAttestation) throw new KbsFailure(401, 'AttestationError', 'attestation policy denied the evidence');
    const claims: Record<string, unknown> = {
      tee: 'sample',
      svn: isRecord(primary) ? primary['svn'] : undefined,
      report_data: reportData,
      launch_digest: 'abcde',
      platform_version: { major: 1, minor: 4 },
      debug: false,
      'init-data': body['init-data'] ?? null,
      'tee-pubkey': teePubkey,
    };
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(tokenKey);
    session.attested = { token, teePubkey, claims };
    setCookie(res, id);
    return { token };
  };

  const resource = async (req: IncomingMessage, url: URL): Promise<unknown> => {
    stats.resource++;
    const parts = url.pathname.split('/').slice(3); // '', 'kbs', 'v0'
    const plugin = parts[0];
    const path = parts.slice(1).map(decodeURIComponent);
    if (plugin !== 'resource') throw new KbsFailure(404, 'PluginNotFound', `plugin ${plugin ?? ''} not found`);
    if (path.length !== 3 || path.some((p) => p === '')) throw new KbsFailure(404, 'InvalidRequestPath', 'invalid resource path');
    const found = sessionOf(req);
    if (!found?.[1].attested) throw new KbsFailure(401, 'TokenNotFound', 'no attested session and no bearer token');
    const attested = found[1].attested;
    try {
      await jwtVerify(attested.token, tokenKey);
    } catch {
      throw new KbsFailure(401, 'TokenVerifierError', 'token does not verify');
    }
    const joined = path.join('/');
    if (faults.denyResource || !allow(joined, attested.claims)) throw new KbsFailure(401, 'PolicyDeny', 'resource policy denied the request');
    const bytes = options.resources.get(joined);
    if (!bytes) throw new KbsFailure(401, 'PluginInternalError', `resource ${joined} not found in storage`);
    const key = await importJWK(attested.teePubkey as JWK, attested.teePubkey.alg);
    const jwe = await new FlattenedEncrypt(bytes)
      .setProtectedHeader({ alg: attested.teePubkey.alg, enc: 'A256GCM' })
      .encrypt(key);
    if (faults.corruptJwe) {
      const ct = Buffer.from(jwe.ciphertext, 'base64url');
      ct[0] = (ct[0] ?? 0) ^ 0xff;
      jwe.ciphertext = ct.toString('base64url');
    }
    return jwe;
  };

  const route = async (req: IncomingMessage, res: ServerResponse, url: URL, body: unknown): Promise<unknown> => {
    if (req.method === 'POST' && url.pathname === '/kbs/v0/auth') return auth(req, res, body);
    if (req.method === 'POST' && url.pathname === '/kbs/v0/attest') return attest(req, res, body);
    if (req.method === 'GET' && url.pathname.startsWith('/kbs/v0/')) return resource(req, url);
    throw new KbsFailure(404, 'InvalidRequestPath', `no route for ${req.method ?? ''} ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://kbs.invalid');
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = raw ? (JSON.parse(raw) as unknown) : undefined;
      } catch {
        body = raw;
      }
      const record = (status: number): void => {
        const m = /(?:^|;\s*)kbs-session-id=([^;]*)/.exec(req.headers.cookie ?? '');
        stats.requests.push({ method: req.method ?? '', path: req.url ?? '', status, cookie: m?.[1], body });
      };
      if (faults.serverErrors > 0) {
        faults.serverErrors--;
        record(503);
        res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
        return;
      }
      route(req, res, url, body).then(
        (answer) => {
          record(200);
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
        },
        (err: unknown) => {
          const f = err instanceof KbsFailure ? err : new KbsFailure(401, 'InternalError', String(err));
          record(f.status);
          res.removeHeader('set-cookie');
          res.writeHead(f.status, { 'content-type': 'application/json' }).end(JSON.stringify({ type: `${ERROR_BASE}${f.variant}`, detail: f.detail }));
        },
      );
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    faults,
    expireSessions: () => sessions.clear(),
    sessionIds: () => [...issued],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
