/**
 * Where simple signatures live: registries.d configuration, the lookaside
 * (file:// and http://) and the registry signature extension (X-R-S-S),
 * the latter against a small fake registry (docker-registry lacks it).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { RegistrySourceFactory } from '../../src/adapters/outbound/registry/registry-source.js';
import { parseSignatureList } from '../../src/adapters/outbound/registry/signature-extension.js';
import {
  LookasideSignatureSource,
  MAX_LOOKASIDE_SIGNATURES,
  MAX_SIGNATURE_BYTES,
  signatureUrl,
  simpleSigningBlob,
} from '../../src/adapters/outbound/signatures/lookaside-source.js';
import {
  defaultLookasideBase,
  EMPTY_REGISTRIES_D,
  loadRegistriesD,
  lookasideBaseFor,
  mergeRegistriesD,
  parseRegistriesDFile,
  referenceScopes,
  useSigstoreAttachments,
  type RegistriesDConfig,
} from '../../src/adapters/outbound/signatures/registries-d.js';
import { ImageTsError } from '../../src/domain/errors.js';
import { Digest } from '../../src/domain/image/digest.js';
import { Reference } from '../../src/domain/image/reference.js';

const ref = (s: string): Reference => Reference.parse(s);
const DIGEST = Digest.of('manifest bytes');
const code = (c: string) => (err: unknown): boolean => {
  assert.ok(err instanceof ImageTsError, `not an ImageTsError: ${String(err)}`);
  assert.equal(err.code, c, err.message);
  assert.doesNotMatch(err.message, /\n/);
  return true;
};
const base = (config: RegistriesDConfig, image: string, write = false): string =>
  lookasideBaseFor(config, ref(image), { write, defaultBase: 'file:///default' }).href;

interface Served {
  status?: number;
  body?: Buffer | string;
  headers?: Record<string, string | undefined>;
}

/** A node:http server answering from a handler; records request paths and auth headers. */
async function serve(handler: (req: IncomingMessage) => Served | 'stream-huge'): Promise<{ server: Server; origin: string; seen: { path: string; auth: string | undefined }[] }> {
  const seen: { path: string; auth: string | undefined }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push({ path: req.url ?? '', auth: req.headers.authorization });
    const answer = handler(req);
    if (answer === 'stream-huge') {
      // Chunked, no Content-Length: the reader must count and stop.
      res.writeHead(200);
      const chunk = Buffer.alloc(256 * 1024, 0x41);
      let sent = 0;
      const pump = (): void => {
        while (sent < MAX_SIGNATURE_BYTES * 4) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('error', () => undefined);
      pump();
      return;
    }
    const headers = Object.fromEntries(Object.entries(answer.headers ?? {}).filter((e): e is [string, string] => e[1] !== undefined));
    res.writeHead(answer.status ?? 200, headers);
    res.end(answer.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, origin: `http://127.0.0.1:${port}`, seen };
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('registries.d', () => {
  it('parses sections, deprecated aliases and use-sigstore-attachments; ignores unknown keys', async () => {
    const config = await parseRegistriesDFile(
      [
        'default-docker:',
        '  lookaside: https://sigs.example.com/default',
        '  use-sigstore-attachments: true',
        'docker:',
        '  reg.example.com/team:',
        '    sigstore: file:///legacy',
        '    sigstore-staging: file:///legacy-staging',
        '  reg.example.com:',
        '    lookaside: http://host/l',
        '    lookaside-staging: file:///staging',
        '    future-key: 1',
        '  quiet.example.com:',
        'something-else: {a: 1}',
        '',
      ].join('\n'),
      'a.yaml',
    );
    assert.deepEqual(config.defaultDocker, {
      lookaside: 'https://sigs.example.com/default',
      lookasideStaging: undefined,
      sigstore: undefined,
      sigstoreStaging: undefined,
      useSigstoreAttachments: true,
    });
    assert.equal(config.docker.get('reg.example.com/team')?.sigstore, 'file:///legacy');
    assert.equal(config.docker.get('reg.example.com/team')?.sigstoreStaging, 'file:///legacy-staging');
    assert.equal(config.docker.get('reg.example.com')?.lookasideStaging, 'file:///staging');
    assert.deepEqual(config.docker.get('quiet.example.com'), {});
    assert.deepEqual(await parseRegistriesDFile('', 'empty.yaml'), EMPTY_REGISTRIES_D);
    assert.deepEqual(await parseRegistriesDFile('# only a comment\n', 'c.yaml'), EMPTY_REGISTRIES_D);
  });

  it('refuses files that do not parse or have the wrong types', async () => {
    const bad = [
      'docker: [1, 2]',
      'docker:\n  r.io:\n    lookaside: [x]',
      'default-docker: 3',
      'default-docker:\n  use-sigstore-attachments: maybe',
      'docker:\n  r.io: {lookaside: a}\n  r.io: {lookaside: b}',
      'docker: {r.io: {lookaside: x}',
      '- a list',
    ];
    for (const text of bad) await assert.rejects(parseRegistriesDFile(text, 'bad.yaml'), code('POLICY_INVALID'), text);
    // YAML 1.1 booleans, as Go's decoder takes them.
    assert.equal((await parseRegistriesDFile('default-docker:\n  use-sigstore-attachments: yes', 'y.yaml')).defaultDocker?.useSigstoreAttachments, true);
  });

  it('merges every *.yaml file of a directory and refuses a scope defined twice', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'image-ts-registries-d-'));
    try {
      assert.deepEqual(await loadRegistriesD(join(dir, 'missing')), EMPTY_REGISTRIES_D);
      await writeFile(join(dir, 'a.yaml'), 'docker:\n  a.example.com:\n    lookaside: file:///a\n');
      await writeFile(join(dir, 'b.yaml'), 'default-docker:\n  lookaside: file:///b\ndocker:\n  b.example.com:\n    lookaside: file:///bb\n');
      await writeFile(join(dir, 'ignored.yml'), 'docker:\n  a.example.com:\n    lookaside: file:///dup\n');
      await writeFile(join(dir, 'ignored.conf'), ': not yaml [');
      await mkdir(join(dir, 'dir.yaml'));
      const merged = await loadRegistriesD(dir);
      assert.equal(merged.defaultDocker?.lookaside, 'file:///b');
      assert.deepEqual([...merged.docker.keys()].sort(), ['a.example.com', 'b.example.com']);

      await writeFile(join(dir, 'c.yaml'), 'docker:\n  a.example.com:\n    lookaside: file:///again\n');
      await assert.rejects(loadRegistriesD(dir), (err: unknown) => code('POLICY_INVALID')(err) && /a\.example\.com.*a\.yaml.*c\.yaml/.test((err as Error).message));
      await rm(join(dir, 'c.yaml'));
      await writeFile(join(dir, 'd.yaml'), 'default-docker:\n  lookaside: file:///d\n');
      await assert.rejects(loadRegistriesD(dir), (err: unknown) => code('POLICY_INVALID')(err) && /default-docker/.test((err as Error).message));
      await writeFile(join(dir, 'd.yaml'), 'docker: {x: [oops}\n');
      await assert.rejects(loadRegistriesD(dir), code('POLICY_INVALID'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lists scopes like policy.json: identity, namespaces down to the host, then *. wildcards without the port', () => {
    assert.deepEqual(referenceScopes(ref('reg.a.example.com:5000/ns/app:v1')), [
      'reg.a.example.com:5000/ns/app:v1',
      'reg.a.example.com:5000/ns/app',
      'reg.a.example.com:5000/ns',
      'reg.a.example.com:5000',
      '*.a.example.com',
      '*.example.com',
      '*.com',
    ]);
    assert.deepEqual(referenceScopes(ref(`busybox@${DIGEST}`)), [
      `docker.io/library/busybox@${DIGEST}`,
      'docker.io/library/busybox',
      'docker.io/library',
      'docker.io',
      '*.io',
    ]);
    assert.deepEqual(referenceScopes(ref('localhost:5000/x')), ['localhost:5000/x:latest', 'localhost:5000/x', 'localhost:5000']);
  });

  it('picks the most specific section that names a URL, falling through to less specific ones', async () => {
    const config = mergeRegistriesD([
      {
        file: 'a.yaml',
        config: await parseRegistriesDFile(
          [
            'default-docker:',
            '  lookaside: file:///default-docker',
            'docker:',
            '  reg.example.com/team/app:v1:',
            '    lookaside: file:///identity',
            '  reg.example.com/team/app:',
            '    use-sigstore-attachments: true', // no URL: falls through
            '  reg.example.com/team:',
            '    lookaside: http://team.example.com/sigs/',
            '    lookaside-staging: file:///team-staging',
            '    use-sigstore-attachments: false',
            '  "*.example.com":',
            '    sigstore: file:///wildcard',
            '  example.com:',
            '    lookaside: file:///plain-host',
            '',
          ].join('\n'),
          'a.yaml',
        ),
      },
    ]);
    assert.equal(base(config, 'reg.example.com/team/app:v1'), 'file:///identity');
    assert.equal(base(config, 'reg.example.com/team/app:v2'), 'http://team.example.com/sigs/');
    assert.equal(base(config, 'reg.example.com/team/app:v2', true), 'file:///team-staging');
    assert.equal(base(config, 'reg.example.com/other/app'), 'file:///wildcard');
    assert.equal(base(config, 'deep.sub.example.com:443/x'), 'file:///wildcard');
    // `example.com` is not matched by `*.example.com`, and a port-less scope does not match a host with a port.
    assert.equal(base(config, 'example.com/x'), 'file:///plain-host');
    assert.equal(base(config, 'example.com:5000/x'), 'file:///default-docker');
    assert.equal(base(config, 'quay.io/x/y'), 'file:///default-docker');
    assert.equal(base(EMPTY_REGISTRIES_D, 'quay.io/x/y'), 'file:///default');
    assert.equal(lookasideBaseFor(EMPTY_REGISTRIES_D, ref('quay.io/x/y')).href, defaultLookasideBase());

    assert.equal(useSigstoreAttachments(config, ref('reg.example.com/team/app:v2')), true);
    assert.equal(useSigstoreAttachments(config, ref('reg.example.com/team/other')), false);
    assert.equal(useSigstoreAttachments(config, ref('quay.io/x')), false);
  });

  it('defaults to /var/lib/containers/sigstore for root, per-user data otherwise', () => {
    assert.equal(defaultLookasideBase(0), 'file:///var/lib/containers/sigstore');
    assert.equal(defaultLookasideBase(1000, { HOME: '/home/u' }), 'file:///home/u/.local/share/containers/sigstore');
    assert.equal(defaultLookasideBase(1000, { HOME: '/home/u', XDG_DATA_HOME: '/xdg' }), 'file:///xdg/containers/sigstore');
  });

  it('refuses an unusable lookaside URL when it is needed', async () => {
    const config = await parseRegistriesDFile('docker:\n  r.io/a:\n    lookaside: "not a url"\n  r.io/b:\n    lookaside: ftp://x/y\n', 'u.yaml');
    assert.throws(() => lookasideBaseFor(config, ref('r.io/a')), code('POLICY_INVALID'));
    await assert.rejects(new LookasideSignatureSource({ registriesD: config }).getSignatures(ref('r.io/b'), DIGEST), code('POLICY_INVALID'));
  });
});

describe('lookaside signature source', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'image-ts-lookaside-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const sigDir = (root: string, repoPath: string): string => join(root, `${repoPath}@${DIGEST.algorithm}=${DIGEST.encoded}`);
  const fileSource = (root: string): LookasideSignatureSource =>
    new LookasideSignatureSource({ registriesD: EMPTY_REGISTRIES_D, defaultBase: pathToFileURL(root).href });

  it('builds <base>/<Path()>@<algo>=<hex>/signature-<N>, without the registry host', () => {
    const url = signatureUrl(new URL('https://sigs.example.com/store/'), ref('busybox'), DIGEST, 3);
    assert.equal(url.href, `https://sigs.example.com/store/library/busybox@sha256=${DIGEST.encoded}/signature-3`);
  });

  it('strips the simple-signing prefix and skips sigstore-json blobs', () => {
    assert.deepEqual(simpleSigningBlob(Buffer.from('\0simple-signing\n\xa3abc', 'latin1')), Buffer.from('\xa3abc', 'latin1'));
    assert.equal(simpleSigningBlob(Buffer.from('\0sigstore-json\n{}')), undefined);
    assert.deepEqual(simpleSigningBlob(Buffer.from([0x90, 1, 2])), Buffer.from([0x90, 1, 2]));
  });

  it('reads file:// signature-1..N until ENOENT, in order', async () => {
    const root = join(dir, 'file-basic');
    const d = sigDir(root, 'team/app');
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'signature-1'), Buffer.from([0xa3, 1]));
    await writeFile(join(d, 'signature-2'), Buffer.from('\0sigstore-json\n{"x":1}'));
    await writeFile(join(d, 'signature-3'), Buffer.concat([Buffer.from('\0simple-signing\n'), Buffer.from([0x90, 3])]));
    await writeFile(join(d, 'signature-5'), Buffer.from([0x90, 5])); // after the gap: never read
    const sigs = await fileSource(root).getSignatures(ref('reg.example.com:5000/team/app:v1'), DIGEST);
    assert.deepEqual(sigs, [Buffer.from([0xa3, 1]), Buffer.from([0x90, 3])]);
    assert.deepEqual(await fileSource(root).getSignatures(ref('reg.example.com/none/here'), DIGEST), []);
  });

  it('uses the registries.d section of the image', async () => {
    const root = join(dir, 'file-config');
    await mkdir(sigDir(root, 'library/busybox'), { recursive: true });
    await writeFile(join(sigDir(root, 'library/busybox'), 'signature-1'), 'sig');
    const config = await parseRegistriesDFile(`docker:\n  docker.io/library:\n    lookaside: ${pathToFileURL(root).href}\n`, 'x.yaml');
    const source = new LookasideSignatureSource({ registriesD: config, defaultBase: 'file:///nonexistent' });
    assert.deepEqual(await source.getSignatures(ref('busybox'), DIGEST), [Buffer.from('sig')]);
  });

  it('refuses a file:// signature over 4 MiB, and more than 128 signatures', async () => {
    const big = join(dir, 'file-big');
    await mkdir(sigDir(big, 'x/y'), { recursive: true });
    await writeFile(join(sigDir(big, 'x/y'), 'signature-1'), Buffer.alloc(MAX_SIGNATURE_BYTES + 1));
    await assert.rejects(fileSource(big).getSignatures(ref('r.io/x/y'), DIGEST), code('SIGNATURE_INVALID'));
    await writeFile(join(sigDir(big, 'x/y'), 'signature-1'), Buffer.alloc(MAX_SIGNATURE_BYTES));
    assert.equal((await fileSource(big).getSignatures(ref('r.io/x/y'), DIGEST))[0]?.length, MAX_SIGNATURE_BYTES);

    const many = join(dir, 'file-many');
    const d = sigDir(many, 'x/y');
    await mkdir(d, { recursive: true });
    for (let n = 1; n <= MAX_LOOKASIDE_SIGNATURES; n++) await writeFile(join(d, `signature-${n}`), `s${n}`);
    const sigs = await fileSource(many).getSignatures(ref('r.io/x/y'), DIGEST);
    assert.equal(sigs.length, MAX_LOOKASIDE_SIGNATURES);
    assert.equal(sigs[127]?.toString(), 's128');
    await writeFile(join(d, `signature-${MAX_LOOKASIDE_SIGNATURES + 1}`), 'one too many');
    await assert.rejects(fileSource(many).getSignatures(ref('r.io/x/y'), DIGEST), (err: unknown) => code('SIGNATURE_INVALID')(err) && /128/.test((err as Error).message));
  });

  it('reads http:// signature-1..N until 404, following redirects', async () => {
    const prefix = `/sigs/team/app@sha256=${DIGEST.encoded}/signature-`;
    const { server, origin, seen } = await serve((req) => {
      if (req.url === `${prefix}1`) return { body: Buffer.from([0xa3, 1]), headers: { 'content-type': 'text/html' } };
      if (req.url === `${prefix}2`) return { status: 302, headers: { location: '/elsewhere/2?token=secret' } };
      if (req.url === '/elsewhere/2?token=secret') return { body: '\0simple-signing\nSECOND' };
      return { status: 404, body: 'nope' };
    });
    try {
      const source = new LookasideSignatureSource({ defaultBase: `${origin}/sigs` });
      const sigs = await source.getSignatures(ref('reg.example.com/team/app@' + DIGEST.toString()), DIGEST);
      assert.deepEqual(sigs, [Buffer.from([0xa3, 1]), Buffer.from('SECOND')]);
      assert.deepEqual(seen.map((s) => s.path), [`${prefix}1`, `${prefix}2`, '/elsewhere/2?token=secret', `${prefix}3`]);
      assert.ok(seen.every((s) => s.auth === undefined), 'no credentials go to a lookaside');
    } finally {
      await stop(server);
    }
  });

  it('fails with NETWORK on another HTTP status, without leaking the query', async () => {
    const { server, origin } = await serve((req) => (req.url?.endsWith('signature-1') ? { body: 'x' } : { status: 500 }));
    try {
      const source = new LookasideSignatureSource({ defaultBase: `${origin}/s` });
      await assert.rejects(source.getSignatures(ref('r.io/a/b'), DIGEST), (err: unknown) => code('NETWORK')(err) && /HTTP 500/.test((err as Error).message));
    } finally {
      await stop(server);
    }
  });

  it('refuses an oversized http body, announced or streamed', async () => {
    const { server, origin } = await serve((req) => {
      if (req.url?.startsWith('/announced/')) return { body: Buffer.alloc(MAX_SIGNATURE_BYTES + 1) };
      return 'stream-huge';
    });
    try {
      for (const path of ['announced', 'streamed']) {
        const source = new LookasideSignatureSource({ defaultBase: `${origin}/${path}` });
        await assert.rejects(source.getSignatures(ref('r.io/a/b'), DIGEST), (err: unknown) => code('SIGNATURE_INVALID')(err) && /larger than/.test((err as Error).message));
      }
    } finally {
      await stop(server);
    }
  });

  it('stops at 128 http signatures: 128 are fine, a 129th is an error', async () => {
    let available = MAX_LOOKASIDE_SIGNATURES;
    const { server, origin, seen } = await serve((req) => {
      const n = Number(/signature-(\d+)$/.exec(req.url ?? '')?.[1]);
      return n <= available ? { body: `sig${n}` } : { status: 404 };
    });
    try {
      const source = new LookasideSignatureSource({ defaultBase: origin });
      assert.equal((await source.getSignatures(ref('r.io/a/b'), DIGEST)).length, MAX_LOOKASIDE_SIGNATURES);
      available = 1000;
      seen.length = 0;
      await assert.rejects(source.getSignatures(ref('r.io/a/b'), DIGEST), code('SIGNATURE_INVALID'));
      assert.equal(seen.length, MAX_LOOKASIDE_SIGNATURES + 1, 'no request beyond signature-129');
    } finally {
      await stop(server);
    }
  });
});

describe('registry signature extension (X-Registry-Supports-Signatures)', () => {
  const REPO = 'team/app';
  const sigPath = `/extensions/v2/${REPO}/signatures/${DIGEST.toString()}`;
  const AUTH = `Basic ${Buffer.from('user:pass').toString('base64')}`;

  async function fakeRegistry(announce: boolean) {
    // The ping is unauthenticated: the header comes with its 401, as with any answer of the registry.
    const extension: Record<string, string> = announce ? { 'x-registry-supports-signatures': '1' } : {};
    return serve((req) => {
      if (req.headers.authorization !== AUTH) {
        return { status: 401, headers: { 'www-authenticate': 'Basic realm="fake"', ...extension } };
      }
      if (req.url === '/v2/') return { headers: extension };
      if (req.url === sigPath) {
        const body = {
          signatures: [
            { schemaVersion: 2, name: `${DIGEST}@0123456789abcdef0123456789abcdef`, type: 'atomic', content: Buffer.from([0xa3, 1, 2]).toString('base64') },
            { schemaVersion: 1, type: 'atomic', content: Buffer.from('old').toString('base64') },
            { schemaVersion: 2, type: 'other', content: Buffer.from('other').toString('base64') },
            { schemaVersion: 2, type: 'atomic', content: Buffer.from([0x90, 9]).toString('base64') },
          ],
        };
        return { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
      }
      return { status: 404 };
    });
  }

  async function open(origin: string) {
    const host = new URL(origin).host;
    const factory = new RegistrySourceFactory({ insecureRegistries: [host], caFiles: [], retries: 0, credentials: { kind: 'basic', username: 'user', password: 'pass' } });
    return factory.open({ kind: 'registry', reference: ref(`${host}/${REPO}:v1`) });
  }

  it('returns the atomic schemaVersion 2 signatures when the ping announces the extension', async () => {
    const { server, origin, seen } = await fakeRegistry(true);
    const source = await open(origin);
    try {
      const sigs = await source.getSimpleSignatures?.(DIGEST);
      assert.deepEqual(sigs, [Buffer.from([0xa3, 1, 2]), Buffer.from([0x90, 9])]);
      const request = seen.find((s) => s.path === sigPath);
      assert.equal(request?.auth, AUTH, 'sent with the normal registry auth');
    } finally {
      await source.close();
      await stop(server);
    }
  });

  it('returns undefined, and asks nothing more, when the header is absent', async () => {
    const { server, origin, seen } = await fakeRegistry(false);
    const source = await open(origin);
    try {
      assert.equal(await source.getSimpleSignatures?.(DIGEST), undefined);
      assert.ok(!seen.some((s) => s.path.startsWith('/extensions/')));
    } finally {
      await source.close();
      await stop(server);
    }
  });

  it('refuses malformed signature lists', () => {
    assert.deepEqual(parseSignatureList(Buffer.from('{}'), 'x'), []);
    for (const body of ['nope', '{"signatures":{}}', '{"signatures":[1]}', '{"signatures":[{"schemaVersion":2,"type":"atomic","content":"!!"}]}']) {
      assert.throws(() => parseSignatureList(Buffer.from(body), 'x'), code('NETWORK'), body);
    }
  });
});
