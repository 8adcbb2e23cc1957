/**
 * The suites can fail. Each file under contract-tests/wrong/ runs one
 * contract suite against an adapter with one deliberate flaw; run in its
 * own process, it must exit non-zero with exactly the tests meant to catch
 * that flaw reported `not ok`, for the reason meant, and the rest passing.
 * A suite that passed a wrong adapter, or failed it for another reason,
 * would prove nothing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD_TIMEOUT_MS = 180_000;
const CONCURRENCY = 2;

interface WrongAdapter {
  /** Under contract-tests/wrong/. */
  readonly file: string;
  readonly flaw: string;
  /** The titles of the tests that must fail, and only they. */
  readonly failing: readonly string[];
  /** What each failing test's report must say: the flaw, not an accident. */
  readonly because: RegExp;
}

const MISSING_REJECTION = /Missing expected rejection/;

const WRONG: readonly WrongAdapter[] = [
  {
    file: 'attestation-agent.wrong.ts',
    flaw: 'an agent that ignores its signal',
    failing: ['stops at once when the caller\'s signal is aborted, recording nothing'],
    because: MISSING_REJECTION,
  },
  {
    file: 'bundle-directory.wrong.ts',
    flaw: 'a bundle fs that reuses an existing bundle',
    failing: ['creates a bundle once and refuses it a second time with BUNDLE_EXISTS'],
    because: MISSING_REJECTION,
  },
  {
    file: 'decompressor.wrong.ts',
    flaw: 'a gzip decoder that accepts truncated input',
    failing: ['fails truncated gzip with INVALID_LAYER'],
    because: MISSING_REJECTION,
  },
  {
    file: 'image-source.wrong.ts',
    flaw: 'a source that serves a missing blob as an empty stream, and lists referrers of every artifact type',
    failing: ['a missing blob is NOT_FOUND', 'filters by artifactType'],
    because: /Missing expected rejection|the artifactType filter let other artifacts through/,
  },
  {
    file: 'key-broker.wrong.ts',
    flaw: 'a broker that answers a missing resource with a key of zeros',
    failing: ['refuses a resource it does not hold with KEY_BROKER_DENIED, naming the URI and no secret'],
    because: MISSING_REJECTION,
  },
  {
    file: 'key-provider.wrong.ts',
    flaw: 'a provider whose errors carry no code',
    failing: [
      'answers a kid the broker does not hold with KEY_BROKER_DENIED and no key material',
      'reports an endpoint where nothing answers as KEY_BROKER_UNAVAILABLE',
    ],
    // The plain Errors themselves are what the assertions report.
    because: /(?:Error: resource kbs:\/\/\/default\/key\/missing is not released|in-memory key broker is down)/,
  },
  {
    file: 'key-unwrapper.wrong.ts',
    flaw: 'an unwrapper that names the keys it tried in its errors',
    failing: ['refuses an item that is not of its scheme with DECRYPT_FAILED, echoing no key material'],
    because: /the message echoes key material/,
  },
  {
    file: 'layer-store.wrong.ts',
    flaw: 'a store that commits a half-written layer',
    failing: ['commit before the stream ended fails'],
    because: MISSING_REJECTION,
  },
  {
    file: 'metadata-store.wrong.ts',
    flaw: 'a store that does not roll back a failed mutation',
    failing: ['leaves the state untouched when a mutation throws'],
    because: /Expected values to be strictly equal/,
  },
  {
    file: 'resource-loader.wrong.ts',
    flaw: 'a loader that keeps local files forever',
    failing: ['reads a file afresh on every call: a local edit takes effect at once'],
    because: /'one' !== 'two'/,
  },
  {
    file: 'signature-source.wrong.ts',
    flaw: 'a source that reads an unreachable store as "no signatures"',
    failing: ['reports a store it cannot reach or read as NETWORK or IO, never as "no signatures"'],
    because: MISSING_REJECTION,
  },
  {
    file: 'sigstore-verifier.wrong.ts',
    flaw: 'a verifier that ignores its Rekor keys',
    failing: [
      'with Rekor keys, accepts a bundle whose SET verifies and that names this signature, and refuses one that does not',
      'with Rekor keys, refuses a signature that has no bundle',
    ],
    because: MISSING_REJECTION,
  },
  {
    file: 'simple-signing-verifier.wrong.ts',
    flaw: 'a verifier satisfied by a known key ID, whatever the signature says',
    failing: ['refuses a signature whose payload was altered with SIGNATURE_INVALID'],
    because: MISSING_REJECTION,
  },
  {
    file: 'snapshotter-record.wrong.ts',
    flaw: 'a snapshotter whose remove() fails the second time',
    failing: ['says which snapshotter and rootfs it made, and is removable twice'],
    because: /snapshot rec-1 does not exist/,
  },
  {
    file: 'snapshotter.wrong.ts',
    flaw: 'a snapshotter that ignores opaque directories',
    failing: [
      'an opaque directory hides what lower layers put in it',
      'a directory no entry declared keeps the lower directory\'s mode, owner and times',
    ],
    // The lower layer's files show through the opaque directory.
    because: /'old'/,
  },
];

interface TapTest {
  readonly name: string;
  readonly ok: boolean;
  readonly skipped: boolean;
  /** The YAML diagnostics under the result line. */
  readonly details: string;
}

/** Undoes the TAP reporter's escapes (`\#`, `\\`, `\n`, ...). */
const tapUnescape = (s: string): string =>
  s.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', v: '\v' })[c] ?? c);

/** The test results (not the suites) of `node --test --test-reporter=tap` output. */
export function parseTap(output: string): TapTest[] {
  const lines = output.split('\n');
  const out: TapTest[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/.exec(lines[i]!);
    if (!m) continue;
    const indent = m[1]!.length + 2;
    const details: string[] = [];
    if (lines[i + 1]?.slice(indent).startsWith('---')) {
      for (i += 2; i < lines.length && lines[i]!.slice(indent) !== '...'; i++) details.push(lines[i]!.slice(indent));
    }
    if (details.some((l) => l === "type: 'suite'")) continue;
    out.push({ name: tapUnescape(m[3]!), ok: m[2] === 'ok', skipped: m[4] === 'SKIP', details: details.join('\n') });
  }
  return out;
}

interface ChildRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function runWrong(file: string): Promise<ChildRun> {
  const started = Date.now();
  // Without this the child reports to us in the runner's binary protocol, not TAP.
  const env = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', `contract-tests/wrong/${file}`], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => stdout.push(b));
  child.stderr.on('data', (b: Buffer) => stderr.push(b));
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), ms: Date.now() - started });
    });
  });
}

/** Runs the jobs `limit` at a time; one promise per job, in order. */
function pooled<T>(limit: number, jobs: readonly (() => Promise<T>)[]): Promise<T>[] {
  const settle = jobs.map(() => {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined); // awaited by its test; not unhandled meanwhile
    return { promise, resolve, reject };
  });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      try {
        settle[i]!.resolve(await jobs[i]!());
      } catch (err) {
        settle[i]!.reject(err);
      }
    }
  };
  for (let k = 0; k < Math.min(limit, jobs.length); k++) void worker();
  return settle.map((s) => s.promise);
}

describe('the contract suites can fail', () => {
  it('has a wrong adapter for every suite, and knows every wrong file', () => {
    const suites = readdirSync(new URL('.', import.meta.url)).filter((f) => f.endsWith('.contract.ts')).map((f) => f.replace(/\.contract\.ts$/, ''));
    const wrong = readdirSync(new URL('./wrong/', import.meta.url)).filter((f) => f.endsWith('.wrong.ts'));
    assert.deepEqual(suites.map((s) => `${s}.wrong.ts`).sort(), [...wrong].sort());
    assert.deepEqual(WRONG.map((w) => w.file).sort(), [...wrong].sort());
  });

  it('reads node\'s TAP: tests, not suites, with their diagnostics', () => {
    const tap = [
      'TAP version 13',
      '# Subtest: S',
      '    # Subtest: a \\# b',
      '    ok 1 - a \\# b',
      '      ---',
      '      duration_ms: 1',
      '      ...',
      '    not ok 2 - c \\\\ d',
      '      ---',
      "      error: 'boom'",
      '      ...',
      '    ok 3 - e # SKIP why',
      '    1..3',
      'not ok 1 - S',
      '  ---',
      "  type: 'suite'",
      '  ...',
    ].join('\n');
    assert.deepEqual(parseTap(tap), [
      { name: 'a # b', ok: true, skipped: false, details: 'duration_ms: 1' },
      { name: 'c \\ d', ok: false, skipped: false, details: "error: 'boom'" },
      { name: 'e', ok: true, skipped: true, details: '' },
    ]);
  });

  const runs = pooled(CONCURRENCY, WRONG.map((w) => () => runWrong(w.file)));
  WRONG.forEach((w, i) => {
    it(`${w.file}: ${w.flaw}`, async (t) => {
      const run = await runs[i]!;
      t.diagnostic(`${w.file} ran in ${run.ms} ms`);
      const where = `\n--- stdout\n${run.stdout.slice(-4000)}\n--- stderr\n${run.stderr.slice(-2000)}`;
      assert.notEqual(run.code, 0, `the wrong adapter passed its suite${where}`);
      const tests = parseTap(run.stdout);
      const failed = tests.filter((r) => !r.ok);
      assert.deepEqual(failed.map((r) => r.name).sort(), [...w.failing].sort(), `other tests than the ones meant failed${where}`);
      for (const r of failed) assert.match(r.details, w.because, `${r.name} failed for another reason:\n${r.details}`);
      // Every test the run counted was read, so none can hide from the check above.
      assert.equal(tests.length, Number(/^# tests (\d+)$/m.exec(run.stdout)?.[1]), `the TAP was not read whole${where}`);
    });
  });
});
