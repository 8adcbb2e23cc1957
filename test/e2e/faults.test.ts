import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FaultProxy, type FaultRule, type RequestRecord } from '../harness/fault-proxy.js';
import { buildCli, type BuiltCli } from '../helpers/built-cli.js';
import { pseudoRandomBytes } from '../helpers/seeded-random.js';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { assertCliError, type CliResult } from '../helpers/cli.js';
import { MTIME, base, upper } from '../helpers/fixture-layers.js';
import { buildImage, type BuiltImage } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';
import { tar } from '../helpers/tar-writer.js';
import { treeOf } from '../helpers/tree.js';

/**
 * Fault injection between image-ts and Debian's real docker-registry: a proxy
 * written for the test (test/harness/fault-proxy.ts) resets, stalls, truncates,
 * corrupts, slows and refuses. Each scenario ends in a rootfs byte-identical to
 * a clean pull, or in a clean failure with the right code that commits nothing
 * and leaves the store fit for the next pull.
 */
let dir: string;
let registry: StartedRegistry;
let image: BuiltImage;
let reference: string[];
let n = 0;
const proxies: FaultProxy[] = [];
/** The CLI built from src at the start: some 35 CLI runs cannot each start tsx on a small machine. */
let built: BuiltCli | undefined;
const cli = (args: string[]): Promise<CliResult> => built!.run(args);

const REPO = 'faults/app';
/** Three gzip layers of a few hundred KB of incompressible data, plus the fixture trees. */
function faultImage(): BuiltImage {
  return buildImage({
    layers: [
      { tar: tar([...base, { name: 'blob/one', content: pseudoRandomBytes(1, 300 * 1024), mtime: MTIME }]), compression: 'gzip' },
      { tar: tar([...upper, { name: 'blob/two', content: pseudoRandomBytes(2, 400 * 1024), mtime: MTIME }]), compression: 'gzip' },
      {
        tar: tar([
          { name: 'blob/three', content: pseudoRandomBytes(3, 250 * 1024), mtime: MTIME },
          { name: 'blob/one', content: 'replaced by the top layer', mtime: MTIME },
        ]),
        compression: 'gzip',
      },
    ],
  });
}

const layerUrl = (i: number): RegExp => new RegExp(`/blobs/${image.layers[i]!.digest}$`);
const manifestUrl = /\/manifests\//;
const blobUrl = /\/blobs\/sha256:/;

interface Pulled extends CliResult {
  bundle: string;
  work: string;
}

interface PullOptions {
  work?: string;
  config?: Record<string, unknown>;
  ref?: string;
}

async function configFile(settings: Record<string, unknown>): Promise<string> {
  const path = join(dir, `config-${n++}.json`);
  await writeFile(path, JSON.stringify(settings));
  return path;
}

/** Pulls from `host` into a fresh bundle; a fresh work dir unless one is given. */
async function pullFrom(host: string, opts: PullOptions = {}): Promise<Pulled> {
  const bundle = join(dir, `bundle-${n++}`);
  const work = opts.work ?? join(dir, `work-${n++}`);
  const args = ['pull', `${host}/${REPO}${opts.ref ?? ':v1'}`, bundle, '--work-dir', work, '--insecure-registry', host, '--snapshotter', 'copy', '--quiet'];
  if (opts.config) args.push('--config', await configFile(opts.config));
  return { ...(await cli(args)), bundle, work };
}

async function assertIdentical(p: Pulled): Promise<void> {
  assert.equal(p.code, 0, `pull failed: ${p.stderr}`);
  assert.deepEqual(await treeOf(join(p.bundle, 'rootfs')), reference, 'the rootfs differs from a clean pull');
}

/**
 * No bundle dir, no image, no bundle record, no lease, no staging left behind.
 * `list` also asks the CLI (`list --json`); otherwise metadata.json, which is what list reads, is checked directly.
 */
async function assertNothingCommitted(p: Pulled, list = false): Promise<void> {
  assert.equal(existsSync(p.bundle), false, 'a failed pull leaves no bundle dir');
  if (list) {
    const l = await cli(['list', '--work-dir', p.work, '--json']);
    assert.equal(l.code, 0, l.stderr);
    assert.deepEqual(JSON.parse(l.stdout), [], 'a failed pull records no image');
  }
  const staging = join(p.work, 'staging');
  if (existsSync(staging)) assert.deepEqual(await readdir(staging), [], 'a failed pull leaves no staging');
  const metadata = join(p.work, 'metadata.json');
  if (existsSync(metadata)) {
    const state = JSON.parse(await readFile(metadata, 'utf8')) as { bundles: object; leases: object; images: object };
    assert.deepEqual(state.images, {}, 'a failed pull records no image');
    assert.deepEqual(state.bundles, {}, 'a failed pull records no bundle');
    assert.deepEqual(state.leases, {}, 'a failed pull releases its lease');
  }
}

/** One scenario: its own proxy in front of the registry (so scenarios can run side by side), its rules. */
class Scenario {
  constructor(readonly proxy: FaultProxy) {}

  pull(opts: PullOptions = {}): Promise<Pulled> {
    return pullFrom(this.proxy.host, opts);
  }

  /** After a failure: without faults, the same work dir pulls cleanly and gives the reference tree. */
  async assertStoreHealthy(failed: Pulled): Promise<void> {
    this.proxy.clearRules();
    await assertIdentical(await this.pull({ work: failed.work }));
  }

  /** Requests whose URL matches, in order. */
  seen(url: RegExp): RequestRecord[] {
    return this.proxy.requests().filter((r) => url.test(r.url));
  }

  /** Resumes: requests for `url` with `Range: bytes=N-`, N > 0. */
  ranged(url: RegExp): RequestRecord[] {
    return this.seen(url).filter((r) => r.range !== undefined && /^bytes=[1-9]\d*-$/.test(r.range));
  }

  log(): string {
    return this.proxy.requests()
      .map((r) => `${r.method} ${r.url.replace(/sha256:([0-9a-f]{12})[0-9a-f]+/, 'sha256:$1')} range=${r.range ?? '-'} -> ${r.status ?? '-'} [${r.faults.join(',')}] ${r.bytes}B`)
      .join('\n');
  }
}

async function scenario(...rules: FaultRule[]): Promise<Scenario> {
  const proxy = new FaultProxy({ upstream: registry.host, seed: proxies.length + 1 });
  proxies.push(proxy);
  await proxy.start();
  for (const r of rules) proxy.add(r);
  return new Scenario(proxy);
}

const offsetOf = (range: string | undefined): number => Number(/^bytes=(\d+)-$/.exec(range ?? '')?.[1] ?? NaN);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-faults-'));
  built = await buildCli(dir);
  registry = await startRegistry('open', { parentDir: dir });
  image = faultImage();
  for (const l of image.layers) assert.ok(l.bytes.length > 200 * 1024, 'layers are big enough for mid-body faults');
  await registry.pushImage(REPO, 'v1', image);
  // The reference: a clean pull straight from the registry.
  const clean = await pullFrom(registry.host);
  assert.equal(clean.code, 0, clean.stderr);
  reference = await treeOf(join(clean.bundle, 'rootfs'));
  assert.ok(reference.some((l) => l.startsWith('blob/two ')), 'the reference has the big files');
});

after(async () => {
  await Promise.all(proxies.map((p) => p.stop()));
  await registry?.stop();
  await built?.cleanup();
  unmountBelow(dir);
  await rm(dir, { recursive: true, force: true });
});

/** A failure with NETWORK or DIGEST_MISMATCH, one line, whichever the client reached first. */

// Scenarios run side by side (each has its own proxy and work dir): most of their time is backoff and waiting.
describe('fault injection between image-ts and a real registry', { concurrency: 3 }, () => {
  it('a connection reset mid-blob resumes with Range and gives an identical rootfs', async () => {
    // Trickled up to the reset, so that the client has read what was sent before the RST (a RST drops unread bytes).
    const s = await scenario(
      { url: layerUrl(1), fault: { kind: 'reset', after: 150_000 }, times: 1 },
      { url: layerUrl(1), fault: { kind: 'trickle', chunk: 16 * 1024, delayMs: 5 }, times: 1 },
    );
    await assertIdentical(await s.pull());
    assert.equal(s.proxy.faultCounts().reset, 1);
    const [first, ...rest] = s.seen(layerUrl(1));
    assert.equal(first?.faults[0], 'reset', s.log());
    assert.equal(rest.length, 1, `one resume:\n${s.log()}`);
    assert.equal(rest[0]!.status, 206, s.log());
    // The resume asked for what had arrived before the reset, not for the whole blob again
    // (a RST can drop bytes still in flight, so at most what the proxy wrote).
    const offset = offsetOf(rest[0]!.range);
    assert.ok(offset > 0 && offset <= first.bytes, `resumed at ${rest[0]!.range} after ${first.bytes} bytes sent:\n${s.log()}`);
  });

  it('500 on the first three blob requests is retried to success', async () => {
    const s = await scenario({ url: blobUrl, fault: { kind: 'status', status: 500 }, times: 3 });
    await assertIdentical(await s.pull());
    assert.equal(s.proxy.faultCounts().status, 3);
  });

  it('500 on every request for a layer fails with NETWORK, commits nothing, leaves the store healthy', async () => {
    const s = await scenario({ url: layerUrl(1), fault: { kind: 'status', status: 500 } });
    const p = await s.pull();
    assertCliError(p, 'NETWORK');
    assert.match(p.stderr, /HTTP 500/);
    // The first attempt and three retries, then no more.
    assert.equal(s.seen(layerUrl(1)).length, 4, s.log());
    await assertNothingCommitted(p, true);
    await s.assertStoreHealthy(p);
  });

  it('a manifest body cut by a reset is fetched again', async () => {
    const s = await scenario({ url: manifestUrl, fault: { kind: 'reset', after: 200 }, times: 1 });
    await assertIdentical(await s.pull());
    assert.equal(s.proxy.faultCounts().reset, 1);
    assert.equal(s.seen(manifestUrl).length, 2, s.log());
  });

  it('429 with Retry-After: 1 waits about a second, then succeeds', async () => {
    const s = await scenario({ url: layerUrl(0), fault: { kind: 'status', status: 429, retryAfter: '1' }, times: 1 });
    await assertIdentical(await s.pull());
    const reqs = s.seen(layerUrl(0));
    assert.equal(reqs[0]?.status, 429, s.log());
    assert.equal(reqs.length, 2, s.log());
    const waited = reqs[1]!.startedAt - reqs[0]!.startedAt;
    assert.ok(waited >= 950, `the retry came ${waited} ms later; Retry-After said 1 s`);
  });

  it('a stalled blob is abandoned at read_timeout_seconds and resumed', async () => {
    const s = await scenario({ url: layerUrl(2), fault: { kind: 'stall', after: 100_000 }, times: 1 });
    await assertIdentical(await s.pull({ config: { read_timeout_seconds: 0.5 } }));
    assert.equal(s.proxy.faultCounts().stall, 1);
    assert.ok(s.ranged(layerUrl(2)).length >= 1, s.log());
  });

  it('truncation keeping the original Content-Length (short body, then FIN) is resumed', async () => {
    const s = await scenario({ url: layerUrl(1), fault: { kind: 'truncate', after: 120_000, contentLength: 'keep' }, times: 1 });
    await assertIdentical(await s.pull());
    assert.equal(s.proxy.faultCounts().truncate, 1);
    assert.deepEqual(s.ranged(layerUrl(1)).map((r) => r.range), ['bytes=120000-'], s.log());
  });

  it('truncation with a rewritten Content-Length (a well-formed short body) is resumed', async () => {
    const s = await scenario({ url: layerUrl(0), fault: { kind: 'truncate', after: 90_000, contentLength: 'rewrite' }, times: 1 });
    await assertIdentical(await s.pull());
    assert.deepEqual(s.ranged(layerUrl(0)).map((r) => r.range), ['bytes=90000-'], s.log());
  });

  it('permanent truncation (every response short, rewritten Content-Length) fails cleanly, commits nothing', async (t) => {
    const s = await scenario({ url: layerUrl(1), fault: { kind: 'truncate', after: 40_000, contentLength: 'rewrite' } });
    const p = await s.pull();
    // A body that keeps ending short is a transport failure, whether it ends cleanly or not (the `keep` variant below).
    t.diagnostic(p.stderr.trim());
    assertCliError(p, 'NETWORK');
    await assertNothingCommitted(p);
    await s.assertStoreHealthy(p);
  });

  it('permanent truncation (every response short, original Content-Length) fails cleanly, commits nothing', async (t) => {
    const s = await scenario({ url: layerUrl(2), fault: { kind: 'truncate', after: 40_000, contentLength: 'keep' } });
    const p = await s.pull();
    t.diagnostic(p.stderr.trim());
    assertCliError(p, 'NETWORK');
    await assertNothingCommitted(p);
    await s.assertStoreHealthy(p);
  });

  it('a flipped byte in a layer blob (every response) is DIGEST_MISMATCH, nothing committed', async () => {
    const s = await scenario({ url: layerUrl(1), fault: { kind: 'flip', offset: 200_000 } });
    const p = await s.pull();
    assertCliError(p, 'DIGEST_MISMATCH');
    assert.ok(s.proxy.faultCounts().flip >= 1);
    await assertNothingCommitted(p, true);
    await s.assertStoreHealthy(p);
  });

  it('a byte flipped once in transit breaks the codec; the blob re-reads intact, so the layer is fetched again', async () => {
    const s = await scenario({ url: layerUrl(0), fault: { kind: 'flip', offset: 100_000 }, times: 1 });
    const p = await s.pull();
    assert.equal(p.code, 0, p.stderr);
    await assertIdentical(p);
    // The failed pass, the re-read that tells transit from a bad layer, and the second pass.
    assert.equal(s.seen(layerUrl(0)).length, 3, s.log());
  });

  it('a flipped byte in the manifest is DIGEST_MISMATCH, pulling by digest and by tag', async () => {
    const s = await scenario({ url: manifestUrl, fault: { kind: 'flip', offset: 40 } });
    const byDigest = await s.pull({ ref: `@${image.manifestDigest}` });
    assertCliError(byDigest, 'DIGEST_MISMATCH');
    assert.match(byDigest.stderr, /manifest/);
    await assertNothingCommitted(byDigest);
    // By tag, the registry's Docker-Content-Digest is the digest to match.
    const byTag = await s.pull({ work: byDigest.work });
    assertCliError(byTag, 'DIGEST_MISMATCH');
    await assertNothingCommitted(byTag);
    await s.assertStoreHealthy(byTag);
  });

  it('a slow trickle (16 KB every 20 ms) is slow but identical', async () => {
    const s = await scenario({ url: blobUrl, fault: { kind: 'trickle', chunk: 16 * 1024, delayMs: 20 } });
    await assertIdentical(await s.pull({ config: { read_timeout_seconds: 5 } }));
    assert.ok(s.proxy.faultCounts().trickle >= 4, s.log());
    assert.equal(s.ranged(blobUrl).length, 0, `slow is not broken:\n${s.log()}`);
  });

  it('a server that ignores Range, after a reset, still gives an identical rootfs', async () => {
    const s = await scenario(
      { url: layerUrl(1), fault: { kind: 'reset', after: 150_000 }, times: 1 },
      { url: layerUrl(1), fault: { kind: 'trickle', chunk: 16 * 1024, delayMs: 5 }, times: 1 },
      { url: blobUrl, fault: { kind: 'ignore-range' } },
    );
    await assertIdentical(await s.pull());
    const answered = s.seen(layerUrl(1)).filter((r) => r.range !== undefined);
    assert.equal(answered.length, 1, s.log());
    assert.equal(answered[0]!.status, 200, `a 200 answered the Range request:\n${s.log()}`);
    assert.deepEqual(answered[0]!.faults, ['ignore-range']);
  });

  it('a Content-Length larger than the body (then FIN) is harmless: every byte arrived and the digest decides', async () => {
    const s = await scenario({ url: layerUrl(1), fault: { kind: 'length', delta: 1000 } });
    const p = await s.pull();
    assert.equal(p.code, 0, p.stderr);
    await assertIdentical(p);
  });

  it('a Content-Length smaller than the blob (every response) fails cleanly, commits nothing', async (t) => {
    const s = await scenario({ url: layerUrl(0), fault: { kind: 'length', delta: -1000 } });
    const p = await s.pull();
    t.diagnostic(p.stderr.trim());
    assertCliError(p, 'NETWORK');
    await assertNothingCommitted(p);
    await s.assertStoreHealthy(p);
  });

  it('a blob replaced by other bytes of the same length is DIGEST_MISMATCH, nothing committed', async () => {
    const s = await scenario({ url: layerUrl(2), fault: { kind: 'replace' } });
    const p = await s.pull();
    assertCliError(p, 'DIGEST_MISMATCH');
    await assertNothingCommitted(p);
    await s.assertStoreHealthy(p);
  });
});
