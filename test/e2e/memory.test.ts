import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { measure } from '../../bench/measure.js';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { zeroBomb } from '../helpers/bombs.js';
import { buildCli, type BuiltCli } from '../helpers/built-cli.js';
import { ROOT } from '../helpers/cli.js';
import { buildImage } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Issue 14's bound: peak RSS on any layer, whatever its compression ratio. */
const BOUND = 200 * MiB;

let dir: string;
let registry: StartedRegistry;
// The CLI as users run it: from source, tsx's transpiler alone holds about 100 MB.
let built: BuiltCli;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-e2e-memory-'));
  registry = await startRegistry('open');
  built = await buildCli(dir);
});

after(async () => {
  if (dir) unmountBelow(dir);
  await registry?.stop();
  await built?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('peak memory stays bounded whatever the compression ratio', () => {
  // 1 GiB of zeros in one file: before the decoder felt the unpacker's
  // backpressure, zstd held the whole decompressed layer (about 1 GB here).
  for (const compression of ['zstd', 'gzip'] as const) {
    it(`a ${compression} layer of 1 GiB of zeros pulls from the registry under ${BOUND / MiB} MB of RSS, CLI and workers together`, async (t) => {
      const bomb = zeroBomb(1 * GiB, compression);
      await registry.pushImage(`memory/${compression}`, 'v1', buildImage({
        layers: [{ tar: Buffer.alloc(0), precompressed: bomb.blob, diffIdOverride: bomb.diffId, compression }],
      }));
      const work = join(dir, `work-${compression}`);
      const bundle = join(dir, `bundle-${compression}`);
      const m = await measure(process.execPath, built.argv([
        'pull', `${registry.host}/memory/${compression}:v1`, bundle, '--work-dir', work, '--plain-http', registry.host,
      ]), { cwd: ROOT });
      assert.equal(m.exitCode, 0, m.stderrTail);
      t.diagnostic(`${compression}: peak RSS ${(m.peakRssBytes / MiB).toFixed(0)} MB, ${(m.wallMs / 1000).toFixed(1)} s`);
      assert.ok(m.peakRssBytes <= BOUND, `peak RSS ${(m.peakRssBytes / MiB).toFixed(0)} MB`);
      // The same pull that stayed small made the whole file.
      assert.equal((await stat(join(bundle, 'rootfs', 'zeros.img'))).size, 1 * GiB);
      unmountBelow(dir);
      await rm(work, { recursive: true, force: true });
      await rm(bundle, { recursive: true, force: true });
    });
  }
});
