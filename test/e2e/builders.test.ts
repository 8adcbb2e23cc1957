import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { layerListings, pushLayout, umociImage, umociUnpack } from '../harness/builders.js';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { cli } from '../helpers/cli.js';
import { unmountBelow } from '../helpers/mounts.js';
import { treeOf } from '../helpers/tree.js';

let dir: string;
let registry: StartedRegistry;

before(async () => {
  assert.equal(process.getuid?.(), 0, 'umoci unpack and the overlay snapshotter need root');
  dir = await mkdtemp(join(tmpdir(), 'image-ts-e2e-builders-'));
  registry = await startRegistry('open');
});

after(async () => {
  if (dir) unmountBelow(dir);
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Pulls host/repo into a fresh bundle with the snapshotter; the rootfs path. */
async function pull(repo: string, snapshotter: 'overlay' | 'copy'): Promise<string> {
  const bundle = join(dir, `bundle-${repo.replace(/[/:]/g, '-')}-${snapshotter}`);
  const r = await cli(['pull', `${registry.host}/${repo}`, bundle, '--work-dir', join(dir, 'work'), '--plain-http', registry.host, '--snapshotter', snapshotter]);
  assert.equal(r.code, 0, r.stderr);
  return join(bundle, 'rootfs');
}

describe('images umoci builds pull into the rootfs umoci unpacks', () => {
  it('directories replaced by a file, a symlink or nothing (umoci writes a whiteout for each deleted child), then made again', async () => {
    const layout = join(dir, 'umoci-replace');
    await umociImage(layout, 'v1', [
      (r) => {
        fs.mkdirSync(join(r, 'd2f'));
        fs.writeFileSync(join(r, 'd2f/child.txt'), 'child\n');
        fs.mkdirSync(join(r, 'd2s/deep'), { recursive: true });
        fs.writeFileSync(join(r, 'd2s/deep/x'), 'x\n');
        fs.mkdirSync(join(r, 'gone/sub'), { recursive: true });
        fs.writeFileSync(join(r, 'gone/sub/y'), 'y\n');
        fs.writeFileSync(join(r, 'f2d'), 'a file first\n');
        fs.mkdirSync(join(r, 'keep'), { mode: 0o750 });
        fs.writeFileSync(join(r, 'keep/a'), 'a\n');
      },
      (r) => {
        fs.rmSync(join(r, 'd2f'), { recursive: true });
        fs.writeFileSync(join(r, 'd2f'), 'now a file\n');
        fs.rmSync(join(r, 'd2s'), { recursive: true });
        fs.symlinkSync('/etc', join(r, 'd2s'));
        fs.rmSync(join(r, 'gone'), { recursive: true });
        fs.rmSync(join(r, 'f2d'));
        fs.mkdirSync(join(r, 'f2d'));
        fs.writeFileSync(join(r, 'f2d/inner'), 'inner\n');
        fs.writeFileSync(join(r, 'keep/b'), 'b\n');
      },
      (r) => {
        fs.mkdirSync(join(r, 'gone'));
        fs.writeFileSync(join(r, 'gone/again'), 'again\n');
        fs.rmSync(join(r, 'd2f'));
        fs.mkdirSync(join(r, 'd2f'));
        fs.writeFileSync(join(r, 'd2f/new.txt'), 'new\n');
        fs.rmSync(join(r, 'keep/a'));
      },
    ], dir);
    // The case at hand: umoci's second layer has the file, then a whiteout below it.
    const listings = await layerListings(layout, 'v1');
    assert.ok(listings[1]!.includes('d2f') && listings[1]!.includes('d2f/.wh.child.txt'), listings[1]!.join(' '));
    assert.ok(listings[1]!.some((n) => n.startsWith('d2s/') && n.includes('.wh.')), listings[1]!.join(' '));

    await pushLayout(layout, 'v1', registry.host, 'umoci/replace:v1');
    const reference = await treeOf(await umociUnpack(layout, 'v1', join(dir, 'ref-replace')), { mtimes: true });
    for (const snapshotter of ['overlay', 'copy'] as const) {
      assert.deepEqual(await treeOf(await pull('umoci/replace:v1', snapshotter), { mtimes: true }), reference, snapshotter);
    }
  });
});
