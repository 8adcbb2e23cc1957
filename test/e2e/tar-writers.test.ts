import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeCorpusTree, TAR_WRITERS, tarFeatures, type WriterCaps } from '../harness/tar-writers.js';
import { startRegistry, type StartedRegistry } from '../harness/registry.js';
import { buildCli, type BuiltCli } from '../helpers/built-cli.js';
import { buildImage } from '../helpers/image-builder.js';
import { unmountBelow } from '../helpers/mounts.js';
import { treeOf } from '../helpers/tree.js';

/**
 * One layer from each tar writer on the machine (test/harness/tar-writers.ts),
 * each of the same source tree as far as its format can hold it, pushed to
 * a real registry as a one-layer image and pulled with both snapshotters.
 * The reference is GNU tar's extraction of the same layer tar: contents,
 * types, modes, owners, xattrs, mtimes, link targets and, so that holes are
 * seen to stay holes, the blocks each file takes.
 */

let dir: string;
let registry: StartedRegistry;
let cli: BuiltCli;

before(async () => {
  assert.equal(process.getuid?.(), 0, 'owners, devices, xattrs and the overlay snapshotter need root');
  dir = await mkdtemp(join(tmpdir(), 'image-ts-e2e-tar-writers-'));
  registry = await startRegistry('open');
  cli = await buildCli(dir);
});

after(async () => {
  if (dir) unmountBelow(dir);
  await registry?.stop();
  await cli?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * GNU tar's extraction, as root: owners by number, every xattr, and
 * directory times set last (--delay-directory-restore; without it GNU tar
 * sets a directory's times at the first member outside it, and bsdtar's
 * member order then leaves some with the time of the extraction).
 */
function gnuExtract(archive: string, into: string): string {
  fs.mkdirSync(into);
  execFileSync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--delay-directory-restore', '-xpf', archive, '-C', into], { stdio: 'pipe' });
  return into;
}

describe('layers from every tar writer pull into the tree GNU tar extracts', () => {
  /** One source tree per set of format capabilities, shared by the writers that have them. */
  const sources = new Map<string, string>();
  const sourceFor = (caps: WriterCaps): string => {
    const key = JSON.stringify(caps);
    let src = sources.get(key);
    if (!src) {
      src = join(dir, `src-${sources.size}`);
      makeCorpusTree(src, caps);
      sources.set(key, src);
    }
    return src;
  };

  TAR_WRITERS.forEach((writer, i) => {
    it(writer.label, async () => {
      const base = join(dir, `w${i}`);
      fs.mkdirSync(base);
      const archive = join(base, 'layer.tar');
      writer.write(sourceFor(writer.caps), archive);
      const tar = fs.readFileSync(archive);
      const shown = tarFeatures(tar);
      assert.deepEqual(writer.shows.filter((f) => !shown.has(f)), [], `the layer shows ${[...shown].join(', ')}`);
      const reference = await treeOf(gnuExtract(archive, join(base, 'gnu')), { mtimes: true, blocks: true });
      assert.ok(reference.length > 30, reference.join('\n'));

      const repo = `writers/w${i}`;
      await registry.pushImage(repo, 'v1', buildImage({ layers: [{ tar }] }));
      for (const snapshotter of ['overlay', 'copy'] as const) {
        const bundle = join(base, `bundle-${snapshotter}`);
        const r = await cli.run(['pull', `${registry.host}/${repo}:v1`, bundle, '--work-dir', join(dir, 'work'), '--plain-http', registry.host, '--snapshotter', snapshotter]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(await treeOf(join(bundle, 'rootfs'), { mtimes: true, blocks: true }), reference, snapshotter);
      }
    });
  });
});
