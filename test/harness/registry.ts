/**
 * Starts Debian's docker-registry 2.8 on 127.0.0.1 for tests, in three variants:
 * `open` (plain http), `tls-htpasswd` (TLS + bcrypt htpasswd) and `token` (TLS + bearer tokens
 * from an in-process token issuer). Also pushes content through the distribution API.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, createSign, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootCertificates } from 'node:tls';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import type { Descriptor } from '../../src/domain/image/descriptor.js';
import { Digest } from '../../src/domain/image/digest.js';

const execFileP = promisify(execFile);
const REGISTRY_BIN = '/usr/bin/docker-registry';
const SERVICE = 'image-ts-harness-registry';
const ISSUER = 'image-ts-harness-issuer';

export type RegistryVariant = 'open' | 'tls-htpasswd' | 'token';

export interface StartOptions {
  readonly username?: string;
  readonly password?: string;
  /** Where the registry's temporary dir goes (e.g. a tmpfs); the system temp dir otherwise. */
  readonly parentDir?: string;
  /** Keep the registry's access log in logs(), to count requests. */
  readonly accessLog?: boolean;
}

/** What pushImage needs; test/helpers' BuiltImage fits it. */
export interface PushableImage {
  readonly manifest: Buffer;
  readonly manifestMediaType: string;
  readonly blobs: ReadonlyMap<string, Buffer>;
}

export interface PushedImage {
  readonly manifestBytes: Buffer;
  readonly manifestDigest: string;
  readonly mediaType: string;
  readonly config: { readonly descriptor: Descriptor; readonly bytes: Buffer };
  readonly layers: readonly { readonly descriptor: Descriptor; readonly bytes: Buffer }[];
}

export interface StartedRegistry {
  /** `127.0.0.1:port` */
  readonly host: string;
  readonly variant: RegistryVariant;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** PEM of the CA the registry (and token issuer) certificates chain to; TLS variants only. */
  readonly caFile?: string | undefined;
  /** A refresh token the token issuer accepts for `username` (token variant only). */
  readonly identityToken?: string | undefined;
  /** How many requests reached the token issuer so far (token variant; 0 otherwise). */
  tokenRequests(): number;
  /** The filesystem driver's root: what the registry stores, for harnesses that read it (the referrers proxy). */
  readonly storageDir: string;
  /** The registry's own log so far, for diagnosing a failed test. */
  logs(): string;
  stop(): Promise<void>;
  pushBlob(repo: string, bytes: Buffer): Promise<Descriptor>;
  pushManifest(repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<string>;
  /** Pushes `image` (default: a small one-layer gzip OCI image) and tags it `ref`. */
  pushImage(repo: string, ref: string, image?: PushableImage): Promise<PushedImage>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A port that was free a moment ago: listen on 0, read it, close. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port from listen(0)');
  return address.port;
}

function requireTool(path: string, pkg: string): void {
  if (!existsSync(path)) throw new Error(`${path} not found: apt-get install ${pkg}`);
}

async function selfSignedCert(dir: string, name: string, cn: string): Promise<{ key: string; cert: string }> {
  const key = join(dir, `${name}-key.pem`);
  const cert = join(dir, `${name}-cert.pem`);
  await execFileP('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  return { key, cert };
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** An RS256 JWT as distribution 2.8 accepts it: the signer's cert goes in `x5c`, and the bundle trusts it. */
function signToken(keyPem: string, certDerB64: string, subject: string, access: { name: string; actions: string[] }[]): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { typ: 'JWT', alg: 'RS256', x5c: [certDerB64] };
  const claims = {
    iss: ISSUER,
    sub: subject,
    aud: SERVICE,
    exp: now + 300,
    nbf: now - 30,
    iat: now,
    jti: randomBytes(8).toString('hex'),
    access: access.map((a) => ({ type: 'repository', ...a })),
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(input).sign(keyPem);
  return `${input}.${b64url(signature)}`;
}

/** `repository:name:pull,push` → access entries; other scope types are ignored. */
function parseScopes(scopes: string[]): { name: string; actions: string[] }[] {
  return scopes.flatMap((s) => s.split(' ')).flatMap((s) => {
    const m = /^repository:(.+):([a-z,*]+)$/.exec(s);
    return m && m[1] && m[2] ? [{ name: m[1], actions: m[2].split(',') }] : [];
  });
}

interface TokenIssuer {
  readonly port: number;
  count(): number;
  mint(repo: string, actions: string[]): string;
  close(): Promise<void>;
}

async function startTokenIssuer(
  tls: { key: string; cert: string },
  signer: { key: string; cert: string },
  username: string,
  password: string,
  identityToken: string,
): Promise<TokenIssuer> {
  const signerKey = await readFile(signer.key, 'utf8');
  const signerDer = new X509Certificate(await readFile(signer.cert)).raw.toString('base64');
  let requests = 0;
  const respond = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server: Server = createHttpsServer(
    { key: await readFile(tls.key), cert: await readFile(tls.cert) },
    (req, res) => {
      requests++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'https://issuer');
        if (url.pathname !== '/token') return respond(res, 404, { error: 'not found' });
        let granted = false;
        let scopes = url.searchParams.getAll('scope');
        if (req.method === 'POST') {
          const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
          scopes = form.getAll('scope');
          granted =
            (form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === identityToken) ||
            (form.get('grant_type') === 'password' && form.get('username') === username && form.get('password') === password);
        } else {
          const expected = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
          granted = req.headers.authorization === expected;
        }
        if (!granted) return respond(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] });
        const token = signToken(signerKey, signerDer, username, parseScopes(scopes));
        respond(res, 200, { token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() });
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('token issuer has no port');
  return {
    port: address.port,
    count: () => requests,
    mint: (repo, actions) => signToken(signerKey, signerDer, username, [{ name: repo, actions }]),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A one-file tar archive (ustar), enough for a layer. */
export function tinyTar(name: string, content: Buffer | string): Buffer {
  const data = Buffer.from(content);
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512), Buffer.alloc(1024)]);
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A small one-layer OCI image. */
export function smallImage(text = 'hello from image-ts\n'): PushableImage {
  const tar = tinyTar('hello.txt', text);
  const layer = gzipSync(tar);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
  }));
  const manifestMediaType = 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
  }));
  return { manifest, manifestMediaType, blobs: new Map([[sha256(config), config], [sha256(layer), layer]]) };
}

function descriptorOf(mediaType: string, bytes: Buffer): Descriptor {
  return { mediaType, digest: Digest.of(bytes), size: bytes.length };
}

export async function startRegistry(variant: RegistryVariant, opts: StartOptions = {}): Promise<StartedRegistry> {
  requireTool(REGISTRY_BIN, 'docker-registry');
  const dir = await mkdtemp(join(opts.parentDir ?? tmpdir(), 'image-ts-registry-'));
  const children: { child?: ChildProcess; issuer?: TokenIssuer; agent?: Agent } = {};
  try {
    return await start(variant, opts, dir, children);
  } catch (err) {
    children.child?.kill('SIGKILL');
    await children.issuer?.close();
    await children.agent?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function start(
  variant: RegistryVariant,
  opts: StartOptions,
  dir: string,
  out: { child?: ChildProcess; issuer?: TokenIssuer; agent?: Agent },
): Promise<StartedRegistry> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const secure = variant !== 'open';
  const username = secure ? (opts.username ?? 'alice') : undefined;
  const password = secure ? (opts.password ?? `s3cret-${randomBytes(4).toString('hex')}`) : undefined;
  const identityToken = variant === 'token' ? `refresh-${randomBytes(8).toString('hex')}` : undefined;

  const config: Record<string, unknown> = {
    version: '0.1',
    log: { level: 'warn', accesslog: { disabled: opts.accessLog !== true } },
    storage: { filesystem: { rootdirectory: join(dir, 'data') }, delete: { enabled: true } },
    http: { addr: host, secret: randomBytes(16).toString('hex') },
  };
  let caFile: string | undefined;
  let tls: { key: string; cert: string } | undefined;
  if (secure) {
    tls = await selfSignedCert(dir, 'tls', 'localhost');
    caFile = tls.cert;
    (config['http'] as Record<string, unknown>)['tls'] = { certificate: tls.cert, key: tls.key };
  }
  if (variant === 'tls-htpasswd') {
    requireTool('/usr/bin/htpasswd', 'apache2-utils');
    const htpasswd = join(dir, 'htpasswd');
    await execFileP('htpasswd', ['-Bbc', htpasswd, username ?? '', password ?? '']);
    config['auth'] = { htpasswd: { realm: 'harness-realm', path: htpasswd } };
  }
  if (variant === 'token' && tls) {
    const signer = await selfSignedCert(dir, 'token-signer', 'token-signer');
    out.issuer = await startTokenIssuer(tls, signer, username ?? '', password ?? '', identityToken ?? '');
    config['auth'] = {
      token: { realm: `https://127.0.0.1:${out.issuer.port}/token`, service: SERVICE, issuer: ISSUER, rootcertbundle: signer.cert },
    };
  }
  // YAML is a superset of JSON, so the registry reads this as is.
  const configFile = join(dir, 'config.yml');
  await writeFile(configFile, JSON.stringify(config, null, 2));

  let log = '';
  const child = spawn(REGISTRY_BIN, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  out.child = child;
  running.add(child);
  const append = (b: Buffer): void => {
    log = (log + b.toString('utf8')).slice(-65536);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    running.delete(child);
    resolve();
  }));

  const agent = new Agent(caFile ? { connect: { ca: [...rootCertificates, await readFile(caFile, 'utf8')] } } : {});
  out.agent = agent;
  const base = `${secure ? 'https' : 'http'}://${host}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) throw new Error(`docker-registry exited during startup:\n${log}`);
    try {
      const res = await request(`${base}/v2/`, { dispatcher: agent });
      await res.body.dump();
      if (res.statusCode === 200 || res.statusCode === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`docker-registry did not become ready on ${host}:\n${log}`);
    await sleep(50);
  }

  const issuer = out.issuer;
  const authFor = (repo: string): Record<string, string> => {
    if (variant === 'tls-htpasswd') {
      return { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
    }
    if (issuer) return { authorization: `Bearer ${issuer.mint(repo, ['pull', 'push'])}` };
    return {};
  };
  const expect = async (res: Awaited<ReturnType<typeof request>>, status: number, what: string): Promise<void> => {
    const body = await res.body.text();
    if (res.statusCode !== status) throw new Error(`${what}: HTTP ${res.statusCode}: ${body}`);
  };

  const pushBlob = async (repo: string, bytes: Buffer): Promise<Descriptor> => {
    const digest = sha256(bytes);
    const started = await request(`${base}/v2/${repo}/blobs/uploads/`, { dispatcher: agent, method: 'POST', headers: authFor(repo) });
    const location = started.headers['location'];
    await expect(started, 202, `start upload to ${repo}`);
    if (typeof location !== 'string') throw new Error('upload has no Location');
    const url = new URL(location, base);
    url.searchParams.set('digest', digest);
    const put = await request(url, {
      dispatcher: agent,
      method: 'PUT',
      headers: { ...authFor(repo), 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
      body: bytes,
    });
    await expect(put, 201, `upload ${digest} to ${repo}`);
    return descriptorOf('application/octet-stream', bytes);
  };

  const pushManifest = async (repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<string> => {
    const res = await request(`${base}/v2/${repo}/manifests/${ref}`, {
      dispatcher: agent,
      method: 'PUT',
      headers: { ...authFor(repo), 'content-type': mediaType },
      body: bytes,
    });
    await expect(res, 201, `put manifest ${repo}:${ref}`);
    return sha256(bytes);
  };

  const pushImage = async (repo: string, ref: string, image: PushableImage = smallImage()): Promise<PushedImage> => {
    const manifestDigest = sha256(image.manifest);
    for (const [digest, bytes] of image.blobs) if (digest !== manifestDigest) await pushBlob(repo, bytes);
    await pushManifest(repo, ref, image.manifest, image.manifestMediaType);
    const doc = JSON.parse(image.manifest.toString('utf8')) as {
      config?: { mediaType: string; digest: string };
      layers?: { mediaType: string; digest: string }[];
    };
    const blob = (d: { mediaType: string; digest: string }): { descriptor: Descriptor; bytes: Buffer } => {
      const bytes = image.blobs.get(d.digest);
      if (!bytes) throw new Error(`image lacks blob ${d.digest}`);
      return { descriptor: descriptorOf(d.mediaType, bytes), bytes };
    };
    if (!doc.config) throw new Error('pushImage needs an image manifest (push indexes with pushManifest)');
    return {
      manifestBytes: image.manifest,
      manifestDigest,
      mediaType: image.manifestMediaType,
      config: blob(doc.config),
      layers: (doc.layers ?? []).map(blob),
    };
  };

  return {
    host,
    variant,
    username,
    password,
    caFile,
    identityToken,
    storageDir: join(dir, 'data'),
    tokenRequests: () => issuer?.count() ?? 0,
    logs: () => log,
    pushBlob,
    pushManifest,
    pushImage,
    async stop(): Promise<void> {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(timer);
      }
      await issuer?.close();
      await agent.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
