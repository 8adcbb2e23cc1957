import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { RegistrySourceFactory } from '../../src/adapters/outbound/registry/registry-source.js';
import { Digest } from '../../src/domain/image/digest.js';
import { ImageTarget } from '../../src/domain/image/image-target.js';
import { MAX_REFERRERS, mergeReferrers, parseReferrersIndex, referrersTag } from '../../src/domain/image/referrers.js';
import type { ImageSource } from '../../src/ports/image-source/image-source.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const SBOM = 'application/vnd.example.sbom.v1+json';
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const subject = Digest.of(Buffer.from('the subject manifest'));
const entry = (name: string, artifactType: string) => ({ mediaType: OCI_MANIFEST, digest: Digest.of(Buffer.from(name)).toString(), size: name.length, artifactType });
const index = (manifests: unknown[]) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));

describe('referrers lists', () => {
  it('the tag schema names the subject <alg>-<hex>', () => {
    assert.equal(referrersTag(subject), `sha256-${subject.encoded}`);
  });

  it('reads an OCI index of descriptors, keeping artifactType', () => {
    const list = parseReferrersIndex(index([entry('a', SBOM), entry('b', BUNDLE)]), OCI_INDEX, 'list');
    assert.deepEqual(list.map((d) => d.artifactType), [SBOM, BUNDLE]);
  });

  it('refuses what is not an OCI index, and lists past the bound', () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, manifests: [] }));
    assert.throws(() => parseReferrersIndex(manifest, undefined, 'list'), { code: 'INVALID_MANIFEST' });
    assert.throws(() => parseReferrersIndex(index([]), 'application/vnd.docker.distribution.manifest.list.v2+json', 'list'), { code: 'INVALID_MANIFEST' });
    assert.throws(() => parseReferrersIndex(Buffer.from('{"schemaVersion":2}'), OCI_INDEX, 'list'), { code: 'INVALID_MANIFEST' });
    assert.throws(() => parseReferrersIndex(index([{ mediaType: OCI_MANIFEST, digest: 'sha256:nothex', size: 1 }]), OCI_INDEX, 'list'), { code: 'INVALID_MANIFEST' });
    const many = Array.from({ length: MAX_REFERRERS + 1 }, (_, i) => entry(`x${i}`, SBOM));
    assert.throws(() => parseReferrersIndex(index(many), OCI_INDEX, 'list'), { code: 'INVALID_MANIFEST' });
  });

  it('merges pages, each digest once', () => {
    const a = parseReferrersIndex(index([entry('a', SBOM), entry('b', BUNDLE)]), OCI_INDEX, 'p1');
    const b = parseReferrersIndex(index([entry('b', BUNDLE), entry('c', SBOM)]), OCI_INDEX, 'p2');
    assert.equal(mergeReferrers([a, b]).length, 3);
  });
});

/** A registry double: `/v2/` and what each test puts in `routes` (path and query → handler). */
describe('the registry source finds referrers', () => {
  let server: Server;
  let host: string;
  const seen: string[] = [];
  let routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  const reply = (status: number, body: Buffer | string, headers: Record<string, string> = {}) => (_: IncomingMessage, res: ServerResponse) => {
    res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const tagIndex = index([entry('from-tag', BUNDLE), entry('sbom-from-tag', SBOM)]);
  const api = `/v2/app/referrers/${subject}`;

  before(async () => {
    server = createServer((req, res) => {
      seen.push(req.url ?? '');
      const route = routes.get(req.url ?? '');
      if (!route && req.url === '/v2/') return reply(200, '{}')(req, res);
      if (route) return route(req, res);
      reply(404, '{"errors":[{"code":"NOT_FOUND"}]}')(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  async function list(artifactType?: string): Promise<{ digests: string[]; types: (string | undefined)[] }> {
    const factory = new RegistrySourceFactory({ insecureRegistries: [], plainHttpRegistries: [host], caFiles: [], retries: 0 });
    const source: ImageSource = await factory.open(ImageTarget.parse(`${host}/app:v1`));
    try {
      const got = await source.listReferrers!(subject, artifactType);
      return { digests: got.map((r) => r.descriptor.digest.toString()), types: got.map((r) => r.artifactType) };
    } finally {
      await source.close();
    }
  }

  const reset = (r: [string, (req: IncomingMessage, res: ServerResponse) => void][]) => {
    routes = new Map(r);
    seen.length = 0;
  };

  it('asks the API with the filter, and trusts a registry that says it applied it', async () => {
    // The registry claims to have filtered: what it sent is taken as is.
    reset([[`${api}?artifactType=${encodeURIComponent(BUNDLE)}`, reply(200, index([entry('a', BUNDLE)]), { 'content-type': OCI_INDEX, 'oci-filters-applied': 'artifactType' })]]);
    assert.deepEqual((await list(BUNDLE)).types, [BUNDLE]);
    assert.ok(seen.includes(`${api}?artifactType=${encodeURIComponent(BUNDLE)}`));
  });

  it('filters itself when the registry ignored artifactType', async () => {
    reset([[`${api}?artifactType=${encodeURIComponent(BUNDLE)}`, reply(200, index([entry('a', BUNDLE), entry('b', SBOM)]), { 'content-type': OCI_INDEX })]]);
    assert.deepEqual((await list(BUNDLE)).types, [BUNDLE]);
  });

  it('follows rel="next" pages on the same origin', async () => {
    reset([
      [api, reply(200, index([entry('p1', BUNDLE)]), { 'content-type': OCI_INDEX, link: `<${api}?last=p1>; rel="next"` })],
      [`${api}?last=p1`, reply(200, index([entry('p2', SBOM)]), { 'content-type': OCI_INDEX })],
    ]);
    assert.deepEqual((await list()).types, [BUNDLE, SBOM]);
  });

  it('refuses a next page on another host: credentials would follow it', async () => {
    reset([[api, reply(200, index([]), { 'content-type': OCI_INDEX, link: '<http://elsewhere.example/v2/x>; rel="next"' })]]);
    await assert.rejects(list(), { code: 'INVALID_MANIFEST' });
  });

  it('falls back to the sha256-<hex> tag on a 404, filtering it itself', async () => {
    reset([[`/v2/app/manifests/${referrersTag(subject)}`, reply(200, tagIndex, { 'content-type': OCI_INDEX })]]);
    assert.deepEqual((await list(BUNDLE)).digests, [entry('from-tag', BUNDLE).digest]);
    assert.deepEqual(seen.filter((u) => u !== '/v2/'), [`${api}?artifactType=${encodeURIComponent(BUNDLE)}`, `/v2/app/manifests/${referrersTag(subject)}`]);
  });

  it('reads a 400, a 406 or a 200 that is no OCI index as "no API" too', async () => {
    const tag: [string, (req: IncomingMessage, res: ServerResponse) => void] = [`/v2/app/manifests/${referrersTag(subject)}`, reply(200, tagIndex, { 'content-type': OCI_INDEX })];
    for (const answer of [reply(400, '{}'), reply(406, '{}'), reply(200, '<html>registry</html>', { 'content-type': 'text/html' })]) {
      reset([[api, answer], tag]);
      assert.equal((await list()).digests.length, 2);
    }
  });

  it('no API and no tag: no referrers', async () => {
    reset([]);
    assert.deepEqual((await list()).digests, []);
  });

  it('checks the tag index against the digest the registry claims', async () => {
    reset([[`/v2/app/manifests/${referrersTag(subject)}`, reply(200, tagIndex, { 'content-type': OCI_INDEX, 'docker-content-digest': Digest.of(Buffer.from('other')).toString() })]]);
    await assert.rejects(list(), { code: 'DIGEST_MISMATCH' });
  });

  it('a refusal or a broken registry is an error, never an empty list', async () => {
    reset([[api, reply(401, '{}')]]);
    await assert.rejects(list(), { code: 'UNAUTHORIZED' });
    reset([[api, reply(500, '{}')]]);
    await assert.rejects(list(), { code: 'NETWORK' });
    reset([[api, reply(200, '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}', { 'content-type': OCI_INDEX })]]);
    await assert.rejects(list(), { code: 'INVALID_MANIFEST' });
  });

  it('sends the registry\'s credentials with the referrers request, as with manifests', async () => {
    const basic = `Basic ${Buffer.from('user:pass').toString('base64')}`;
    const auths: (string | undefined)[] = [];
    reset([[api, (req, res) => {
      auths.push(req.headers.authorization);
      if (req.headers.authorization !== basic) return reply(401, '{}')(req, res);
      reply(200, index([entry('a', BUNDLE)]), { 'content-type': OCI_INDEX })(req, res);
    }]]);
    routes.set('/v2/', (req, res) => reply(401, '{}', { 'www-authenticate': 'Basic realm="test"' })(req, res));
    const factory = new RegistrySourceFactory({ insecureRegistries: [], plainHttpRegistries: [host], caFiles: [], retries: 0, credentials: { kind: 'basic', username: 'user', password: 'pass' } });
    const source = await factory.open(ImageTarget.parse(`${host}/app:v1`));
    try {
      assert.equal((await source.listReferrers!(subject)).length, 1);
    } finally {
      await source.close();
    }
    assert.deepEqual(auths, [basic]);
  });

  it('reads at most 4 MiB of a list', async () => {
    const huge = Buffer.concat([Buffer.from('{"schemaVersion":2,"manifests":[],"pad":"'), Buffer.alloc(5 << 20, 0x61), Buffer.from('"}')]);
    reset([[api, reply(200, huge, { 'content-type': OCI_INDEX })]]);
    await assert.rejects(list(), { code: 'INVALID_MANIFEST', message: /larger than/ });
  });
});
