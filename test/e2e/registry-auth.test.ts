import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { RegistrySourceFactory, type RegistrySourceOptions } from '../../src/adapters/outbound/registry/registry-source.js';
import { ImageTsError } from '../../src/domain/errors.js';
import type { Descriptor } from '../../src/domain/image/descriptor.js';
import { Digest } from '../../src/domain/image/digest.js';
import { ImageTarget } from '../../src/domain/image/image-target.js';
import type { Credentials, ImageSource } from '../../src/ports/image-source/image-source.js';
import { freePort, startRegistry, type PushedImage, type StartedRegistry } from '../harness/registry.js';

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function factory(options: Partial<RegistrySourceOptions>): RegistrySourceFactory {
  return new RegistrySourceFactory({ insecureRegistries: [], caFiles: [], ...options });
}

async function use<T>(f: RegistrySourceFactory, image: string, run: (s: ImageSource) => Promise<T>, credentials?: Credentials): Promise<T> {
  const source = await f.open(ImageTarget.parse(image), { credentials });
  try {
    return await run(source);
  } finally {
    await source.close();
  }
}

/** Fetches the manifest by tag and the first layer, and checks both byte for byte. */
async function pullsCleanly(s: ImageSource, image: PushedImage): Promise<void> {
  const manifest = await s.getManifest('v1');
  assert.ok(manifest.bytes.equals(image.manifestBytes));
  const layer = image.layers[0];
  assert.ok(layer);
  assert.ok((await drain(await s.getBlob(layer.descriptor))).equals(layer.bytes));
}

const hasCode = (code: string, not?: string) => (err: unknown): boolean => {
  assert.ok(err instanceof ImageTsError, `not an ImageTsError: ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.ok(!err.message.includes('\n'), 'message is one line');
  if (not !== undefined) assert.ok(!err.message.includes(not), `message leaks a secret: ${err.message}`);
  return true;
};

interface Listening {
  readonly host: string;
  close(): Promise<void>;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Listening> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    host: `127.0.0.1:${address.port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

interface Upstream {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/**
 * A buffering http proxy in front of a plain-http registry. `hook` may answer a request
 * itself (returning true), e.g. to cut a body short, after looking at the upstream answer.
 */
async function startProxy(
  upstreamHost: string,
  hook: (req: IncomingMessage, res: ServerResponse, upstream: Upstream) => boolean,
  dropRequestHeaders: readonly string[] = [],
): Promise<Listening & { seen: { url: string; headers: IncomingHttpHeaders }[] }> {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const proxy = await listen((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    void (async () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'connection' && !dropRequestHeaders.includes(k)) headers[k] = v;
      const up = await request(`http://${upstreamHost}${req.url ?? '/'}`, { method: req.method ?? 'GET', headers });
      const body = Buffer.from(await up.body.arrayBuffer());
      const outHeaders: Record<string, string> = {};
      for (const [k, v] of Object.entries(up.headers)) {
        if (typeof v === 'string' && k !== 'transfer-encoding' && k !== 'connection' && k !== 'keep-alive') outHeaders[k] = v;
      }
      outHeaders['content-length'] = String(body.length);
      const upstream = { status: up.statusCode, headers: outHeaders, body };
      if (hook(req, res, upstream)) return;
      res.writeHead(upstream.status, upstream.headers);
      res.end(body);
    })().catch(() => res.destroy());
  });
  return { ...proxy, seen };
}

describe('registry auth e2e: TLS + htpasswd', () => {
  let reg: StartedRegistry;
  let image: PushedImage;
  let creds: Credentials;
  let dir: string;
  before(async () => {
    reg = await startRegistry('tls-htpasswd');
    image = await reg.pushImage('team/app', 'v1');
    creds = { kind: 'basic', username: reg.username ?? '', password: reg.password ?? '' };
    dir = await mkdtemp(join(tmpdir(), 'image-ts-auth-'));
  });
  after(async () => {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('pulls with the right credentials and the CA', async () => {
    await use(factory({ caFiles: [reg.caFile ?? ''] }), `${reg.host}/team/app:v1`, (s) => pullsCleanly(s, image), creds);
  });

  it('accepts a directory of *.crt files as CAs', async () => {
    const certs = join(dir, 'certs.d');
    await mkdir(certs, { recursive: true });
    await copyFile(reg.caFile ?? '', join(certs, 'ca.crt'));
    await use(factory({ caFiles: [certs] }), `${reg.host}/team/app:v1`, (s) => pullsCleanly(s, image), creds);
  });

  it('wrong credentials give UNAUTHORIZED without echoing them', async () => {
    const wrong: Credentials = { kind: 'basic', username: 'alice', password: 'Wr0ngPassw0rd' };
    await assert.rejects(
      use(factory({ caFiles: [reg.caFile ?? ''] }), `${reg.host}/team/app:v1`, (s) => s.getManifest('v1'), wrong),
      hasCode('UNAUTHORIZED', 'Wr0ngPassw0rd'),
    );
    await assert.rejects(
      use(factory({ caFiles: [reg.caFile ?? ''] }), `${reg.host}/team/app:v1`, (s) => s.getManifest('v1')),
      hasCode('UNAUTHORIZED'),
    );
  });

  it('without the CA the connection fails with code TLS', async () => {
    await assert.rejects(
      use(factory({}), `${reg.host}/team/app:v1`, (s) => s.getManifest('v1'), creds),
      hasCode('TLS', reg.password),
    );
  });

  it('finds credentials in an auth file, with explicit ones winning over it', async () => {
    const authFile = join(dir, 'auth.json');
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    await writeFile(authFile, JSON.stringify({
      auths: {
        [`${reg.host}/team/app`]: { auth: b64(`${reg.username}:${reg.password}`) },
        [reg.host]: { auth: b64('alice:not-it') },
      },
    }));
    const withFile = factory({ caFiles: [reg.caFile ?? ''], authFiles: [join(dir, 'absent.json'), authFile] });
    await use(withFile, `${reg.host}/team/app:v1`, (s) => pullsCleanly(s, image));
    // Per-open credentials win over the file; factory defaults win over the file too.
    const bad: Credentials = { kind: 'basic', username: 'alice', password: 'nope' };
    await assert.rejects(use(withFile, `${reg.host}/team/app:v1`, (s) => s.getManifest('v1'), bad), hasCode('UNAUTHORIZED'));
    const withDefaults = factory({ caFiles: [reg.caFile ?? ''], authFiles: [authFile], credentials: bad });
    await assert.rejects(use(withDefaults, `${reg.host}/team/app:v1`, (s) => s.getManifest('v1')), hasCode('UNAUTHORIZED'));
    await use(withDefaults, `${reg.host}/team/app:v1`, (s) => pullsCleanly(s, image), creds);
    // A malformed file is a config error that names the file, not the secret.
    await writeFile(authFile, `{"auths":{"${reg.host}":{"auth":"${reg.password}!"}}}`);
    await assert.rejects(use(withFile, `${reg.host}/team/app:v1`, (s) => s.getManifest('v1')), hasCode('CONFIG_FILE_INVALID', reg.password));
  });

  it('a missing tag is NOT_FOUND naming the image', async () => {
    await assert.rejects(
      use(factory({ caFiles: [reg.caFile ?? ''] }), `${reg.host}/team/app:nope`, (s) => s.getManifest('nope'), creds),
      (err: unknown) => hasCode('NOT_FOUND')(err) && (err as Error).message.includes(`${reg.host}/team/app:nope`),
    );
  });
});

describe('registry auth e2e: bearer tokens', () => {
  let reg: StartedRegistry;
  let image: PushedImage;
  let creds: Credentials;
  let dir: string;
  before(async () => {
    reg = await startRegistry('token');
    image = await reg.pushImage('team/app', 'v1');
    creds = { kind: 'basic', username: reg.username ?? '', password: reg.password ?? '' };
    dir = await mkdtemp(join(tmpdir(), 'image-ts-token-'));
  });
  after(async () => {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('pulls with credentials and fetches the token once per source', async () => {
    const before = reg.tokenRequests();
    await use(factory({ caFiles: [reg.caFile ?? ''] }), `${reg.host}/team/app:v1`, async (s) => {
      await pullsCleanly(s, image);
      await pullsCleanly(s, image);
      assert.ok((await s.getManifest(image.manifestDigest)).bytes.equals(image.manifestBytes));
    }, creds);
    assert.equal(reg.tokenRequests() - before, 1);
  });

  it('re-fetches a rejected token once', async () => {
    const issued: string[] = [];
    const fake = await listen((req, res) => {
      if (req.url?.startsWith('/token')) {
        const token = `t${issued.length + 1}`;
        issued.push(token);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: token, expires_in: 3600 }));
        return;
      }
      const ok = req.url !== '/v2/' && req.headers.authorization === 'Bearer t2';
      if (!ok) {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="fake"` });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': image.mediaType });
      res.end(image.manifestBytes);
    });
    try {
      const got = await use(factory({ insecureRegistries: [fake.host] }), `${fake.host}/team/app:v1`, (s) => s.getManifest('v1'));
      assert.ok(got.bytes.equals(image.manifestBytes));
      assert.deepEqual(issued, ['t1', 't2']);
    } finally {
      await fake.close();
    }
  });

  it('wrong or missing credentials give UNAUTHORIZED', async () => {
    const wrong: Credentials = { kind: 'basic', username: 'alice', password: 'Wr0ngPassw0rd' };
    const f = factory({ caFiles: [reg.caFile ?? ''] });
    await assert.rejects(use(f, `${reg.host}/team/app:v1`, (s) => s.getManifest('v1'), wrong), hasCode('UNAUTHORIZED', 'Wr0ngPassw0rd'));
    await assert.rejects(use(f, `${reg.host}/team/app:v1`, (s) => s.getManifest('v1')), hasCode('UNAUTHORIZED'));
  });

  it('uses auth.json credentials, basic and identity token', async () => {
    const authFile = join(dir, 'auth.json');
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    await writeFile(authFile, JSON.stringify({ auths: { [`https://${reg.host}`]: { auth: b64(`${reg.username}:${reg.password}`) } } }));
    await use(factory({ caFiles: [reg.caFile ?? ''], authFiles: [authFile] }), `${reg.host}/team/app:v1`, (s) => pullsCleanly(s, image));
    await writeFile(authFile, JSON.stringify({ auths: { [reg.host]: { auth: b64(`${reg.username}:`), identitytoken: reg.identityToken } } }));
    await use(factory({ caFiles: [reg.caFile ?? ''], authFiles: [authFile] }), `${reg.host}/team/app:v1`, (s) => pullsCleanly(s, image));
  });
});

describe('registry e2e: plain http, redirects, resume, retries', () => {
  let reg: StartedRegistry;
  let image: PushedImage;
  let big: { descriptor: Descriptor; bytes: Buffer };
  const closers: (() => Promise<void>)[] = [];
  before(async () => {
    reg = await startRegistry('open');
    image = await reg.pushImage('team/app', 'v1');
    const bytes = randomBytes(3 << 20);
    big = { descriptor: await reg.pushBlob('team/app', bytes), bytes };
  });
  after(async () => {
    for (const close of closers) await close();
    await reg?.stop();
  });

  it('speaks plain http only to hosts listed as insecure', async () => {
    await use(factory({ insecureRegistries: [reg.host] }), `${reg.host}/team/app:v1`, (s) => pullsCleanly(s, image));
    await assert.rejects(use(factory({}), `${reg.host}/team/app:v1`, (s) => s.getManifest('v1')), hasCode('TLS'));
    // host:port must match exactly.
    await assert.rejects(
      use(factory({ insecureRegistries: ['127.0.0.1'], retries: 0 }), `${reg.host}/team/app:v1`, (s) => s.getManifest('v1')),
      hasCode('TLS'),
    );
  });

  it('reports an unreachable registry as NETWORK', async () => {
    const host = `127.0.0.1:${await freePort()}`;
    await assert.rejects(
      use(factory({ insecureRegistries: [host], retries: 0 }), `${host}/team/app:v1`, (s) => s.getManifest('v1')),
      (err: unknown) => hasCode('NETWORK')(err) && /cannot reach 127\.0\.0\.1:\d+: ECONNREFUSED/.test((err as Error).message),
    );
  });

  it('does not forward Authorization when a blob redirects to another host', async () => {
    const blobBytes = Buffer.from('redirected blob content');
    const digest = Digest.of(blobBytes);
    const authHeaders: { where: string; authorization: string | undefined }[] = [];
    const storage = await listen((req, res) => {
      authHeaders.push({ where: 'storage', authorization: req.headers.authorization });
      res.writeHead(200, { 'content-length': String(blobBytes.length) });
      res.end(blobBytes);
    });
    closers.push(storage.close);
    const expected = `Basic ${Buffer.from('bob:pw').toString('base64')}`;
    const fake = await listen((req, res) => {
      if (req.url === '/v2/') {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' });
        res.end();
        return;
      }
      authHeaders.push({ where: 'registry', authorization: req.headers.authorization });
      if (req.headers.authorization !== expected) {
        res.writeHead(401);
        res.end();
        return;
      }
      res.writeHead(307, { location: `http://${storage.host}/bucket/blob?signature=xyz` });
      res.end();
    });
    closers.push(fake.close);
    const got = await use(
      factory({ insecureRegistries: [fake.host] }),
      `${fake.host}/team/app:v1`,
      async (s) => drain(await s.getBlob({ mediaType: 'application/octet-stream', digest, size: blobBytes.length })),
      { kind: 'basic', username: 'bob', password: 'pw' },
    );
    assert.ok(got.equals(blobBytes));
    assert.deepEqual(authHeaders, [
      { where: 'registry', authorization: expected },
      { where: 'storage', authorization: undefined },
    ]);
  });

  it('resumes a blob with Range after a connection reset', async () => {
    let cut = false;
    const proxy = await startProxy(reg.host, (req, res, up) => {
      if (cut || !req.url?.includes('/blobs/') || up.status !== 200) return false;
      cut = true;
      res.writeHead(200, up.headers);
      res.write(up.body.subarray(0, 1 << 20), () => setTimeout(() => res.socket?.destroy(), 20));
      return true;
    });
    closers.push(proxy.close);
    const got = await use(factory({ insecureRegistries: [proxy.host] }), `${proxy.host}/team/app:v1`, async (s) =>
      drain(await s.getBlob(big.descriptor)));
    assert.ok(cut);
    assert.ok(got.equals(big.bytes), 'resumed bytes differ');
    const ranges = proxy.seen.filter((r) => r.url.includes('/blobs/')).map((r) => r.headers.range);
    assert.equal(ranges.length, 2);
    assert.equal(ranges[0], undefined);
    assert.match(ranges[1] ?? '', /^bytes=[1-9]\d*-$/);
  });

  it('resumes by skipping bytes when the server ignores Range', async () => {
    let requests = 0;
    const proxy = await startProxy(reg.host, (req, res, up) => {
      if (!req.url?.includes('/blobs/') || up.status !== 200) return false;
      requests++;
      res.writeHead(200, up.headers);
      if (requests === 1) {
        res.write(up.body.subarray(0, 777_777), () => setTimeout(() => res.socket?.destroy(), 20));
      } else {
        res.end(up.body);
      }
      return true;
    }, ['range']); // the registry never sees Range, so it sends the whole blob again with 200
    closers.push(proxy.close);
    const got = await use(factory({ insecureRegistries: [proxy.host] }), `${proxy.host}/team/app:v1`, async (s) =>
      drain(await s.getBlob(big.descriptor)));
    assert.equal(requests, 2);
    assert.match(proxy.seen.filter((r) => r.url.includes('/blobs/'))[1]?.headers.range ?? '', /^bytes=777777-$/);
    assert.ok(got.equals(big.bytes), 'bytes differ after a 200 resume');
  });

  it('retries a 503 and then succeeds', async () => {
    let failures = 0;
    const proxy = await startProxy(reg.host, (req, res) => {
      if (!req.url?.includes('/manifests/') || failures >= 2) return false;
      failures++;
      res.writeHead(503, { 'retry-after': '0', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}');
      return true;
    });
    closers.push(proxy.close);
    const got = await use(factory({ insecureRegistries: [proxy.host] }), `${proxy.host}/team/app:v1`, (s) => s.getManifest('v1'));
    assert.ok(got.bytes.equals(image.manifestBytes));
    assert.equal(failures, 2);
    // With no retries left the 503 surfaces as NETWORK.
    failures = 0;
    await assert.rejects(
      use(factory({ insecureRegistries: [proxy.host], retries: 1 }), `${proxy.host}/team/app:v1`, (s) => s.getManifest('v1')),
      hasCode('NETWORK'),
    );
  });

  it('rejects a manifest whose bytes do not match Docker-Content-Digest', async () => {
    const proxy = await startProxy(reg.host, (req, res, up) => {
      if (!req.url?.includes('/manifests/')) return false;
      const body = Buffer.concat([up.body, Buffer.from(' ')]);
      res.writeHead(up.status, { ...up.headers, 'content-length': String(body.length) });
      res.end(body);
      return true;
    });
    closers.push(proxy.close);
    await assert.rejects(
      use(factory({ insecureRegistries: [proxy.host] }), `${proxy.host}/team/app:v1`, (s) => s.getManifest('v1')),
      hasCode('DIGEST_MISMATCH'),
    );
  });

  it('closes without waiting for a blob stream nobody reads', { timeout: 10_000 }, async () => {
    const source = await factory({ insecureRegistries: [reg.host] }).open(ImageTarget.parse(`${reg.host}/team/app:v1`));
    const stream = await source.getBlob(big.descriptor);
    stream.on('error', () => undefined);
    await source.close();
    stream.destroy();
  });

  it('stops a blob stream when the signal aborts', async () => {
    const controller = new AbortController();
    await use(factory({ insecureRegistries: [reg.host] }), `${reg.host}/team/app:v1`, async (s) => {
      const stream = await s.getBlob(big.descriptor, { signal: controller.signal });
      controller.abort(new ImageTsError('INTERNAL', 'stop now'));
      await assert.rejects(drain(stream), { message: 'stop now' });
    });
  });
});
