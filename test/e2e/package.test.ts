/**
 * The published package, as a new user gets it: `npm pack`, installed into
 * a clean project (so none of image-ts's dev dependencies are there), the
 * examples typechecked under strict against the shipped .d.ts and run. They
 * import only public entry points: an out-of-tree key broker and Attestation
 * Agent pass the exported contract suites, and a program embeds image-ts to
 * pull a Confidential Containers image through them.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSecretStore } from '../../examples/custom-adapters/src/secret-store.js';
import { ROOT } from '../helpers/cli.js';
import { annotationPacket, PROVIDER_AA } from '../helpers/encryption.js';
import { buildImage, imageManifestEntry, writeOciLayout } from '../helpers/image-builder.js';
import { tar } from '../helpers/tar-writer.js';

const execFileP = promisify(execFile);
let dir: string;
let project: string;

const tsc = (tsconfig: string): ReturnType<typeof spawnSync> =>
  spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig, '--typeRoots', join(ROOT, 'node_modules', '@types')], { encoding: 'utf8' });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-package-'));
  // dist/ is built by npm test's setup; packing must not rebuild it.
  const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--silent'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
  project = join(dir, 'consumer');
  cpSync(join(ROOT, 'examples'), project, { recursive: true, filter: (src) => !/\/(node_modules|dist)(\/|$)/.test(src) });
  await writeFile(join(project, 'package.json'), JSON.stringify({
    name: 'image-ts-consumer', private: true, type: 'module', dependencies: { 'image-ts': `file:${join(dir, packed)}` },
  }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--omit=dev', '--loglevel=error'], { cwd: project, stdio: 'pipe' });
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the package, installed from its tarball', () => {
  it('installs without any of image-ts\'s dev dependencies, and strict consumers typecheck against the shipped .d.ts', () => {
    for (const dev of ['tsx', 'esbuild', 'typescript', 'tar']) assert.equal(existsSync(join(project, 'node_modules', dev)), false, dev);
    assert.ok(existsSync(join(project, 'node_modules', 'image-ts', 'native', 'build', 'Release', 'syscalls.node')), 'the addon was built at install');
    for (const example of ['custom-adapters', 'embedding']) {
      const r = tsc(join(project, example, 'tsconfig.json'));
      assert.equal(r.status, 0, `${example}: ${r.stdout}${r.stderr}`);
    }
  });

  it('an out-of-tree key broker and Attestation Agent pass the exported contract suites', () => {
    // Not as a child of this test runner (NODE_TEST_CONTEXT), which would take its report in its own format.
    const env = { ...process.env };
    delete env['NODE_TEST_CONTEXT'];
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', join(project, 'custom-adapters', 'dist', 'test', 'contracts.test.js')], { cwd: project, encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /# fail 0/);
    assert.ok(Number(/# pass (\d+)/.exec(r.stdout)?.[1]) >= 10, r.stdout);
    assert.match(r.stdout, /KeyBroker contract: HTTP secret store/);
    assert.match(r.stdout, /AttestationAgent contract: JSON-lines event log/);
  });

  it('a program embedding image-ts pulls a CoCo image through them, reports progress, and an aborted pull leaves nothing', async () => {
    const kek = randomBytes(32);
    const kid = 'kbs:///default/image-key/1';
    const coco = buildImage({ layers: [{
      tar: tar([{ name: 'etc/', type: 'dir' }, { name: 'etc/secret-app', content: 'decrypted by the embedder\'s broker\n' }]),
      encrypt: { wrap: (privopts) => ({ [PROVIDER_AA]: annotationPacket(kek, privopts, kid).toString('base64') }) },
    }] });
    const other = buildImage({ layers: [{ tar: tar([{ name: 'big.bin', content: randomBytes(8 * 1024 * 1024) }]), compression: 'none' }] });
    const layout = join(dir, 'layout');
    await writeOciLayout(layout, [imageManifestEntry(coco, 'coco'), imageManifestEntry(other, 'other')]);
    const store = await startSecretStore(new Map([['default/image-key/1', kek]]));
    try {
      const events = join(dir, 'events.jsonl');
      const bundle = join(dir, 'bundles', 'coco');
      // Asynchronously: the secret store answers from this process's event loop.
      const r = await execFileP(process.execPath, [join(project, 'embedding', 'dist', 'embedding', 'src', 'main.js'),
        join(dir, 'work'), `oci:${layout}:coco`, bundle, `oci:${layout}:other`, store.url, events], { cwd: project, encoding: 'utf8' })
        .catch((err: { stderr?: string; message: string }) => assert.fail(err.stderr || err.message));
      const out = JSON.parse(r.stdout) as {
        pulled: { manifestDigest: string; bundle: string; layers: unknown[] }; progress: string[]; aborted: string;
        leftBehind: boolean; staging: string[]; images: string[];
      };
      assert.equal(out.pulled.manifestDigest, coco.manifestDigest);
      assert.equal(out.pulled.bundle, bundle);
      assert.equal(readFileSync(join(bundle, 'rootfs', 'etc', 'secret-app'), 'utf8'), 'decrypted by the embedder\'s broker\n');
      assert.deepEqual(out.progress, ['fetching', 'verifying', 'committed', 'done']);
      assert.match(out.aborted, /^[A-Z_]+$/, 'the aborted pull rejected with an ImageTsError code');
      assert.equal(out.leftBehind, false);
      assert.deepEqual(out.staging, []);
      assert.equal(out.images.length, 1, 'only the finished pull is recorded');
      const measured = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { operation: string; content: string });
      assert.equal(measured.length, 1);
      assert.equal(measured[0]!.operation, 'PullImage');
      assert.ok(measured[0]!.content.includes(coco.manifestDigest));
    } finally {
      await store.close();
    }
  });
});
