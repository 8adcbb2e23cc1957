import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loopDevicesBackedBy, mountErofsImage, unmountErofsImage } from '../../src/adapters/outbound/erofs/loop-mount.js';
import { nativeSyscalls } from '../../src/adapters/outbound/native/syscalls.js';
import { ROOT } from '../helpers/cli.js';
import { unmountBelow } from '../helpers/mounts.js';

/**
 * EROFS layer images mounted through autoclear loop devices: what the mount
 * shows (files, whiteouts, opaque markers), that overlayfs stacks two of them
 * with the whiteout and the opaque dir honoured, and that no loop device
 * outlives its mount, or its process when that dies before mounting.
 */

const NOBODY = 65534;

let tmp: string;
let seq = 0;

before(async () => {
  assert.equal(process.getuid?.(), 0, 'loop devices, mounts, whiteouts and trusted.* xattrs need root');
  assert.equal(typeof nativeSyscalls().loopAttach, 'function', 'the native helper lacks loopAttach: rebuild it (npm run build:native)');
  execFileSync('mkfs.erofs', ['--help'], { stdio: 'pipe' }); // throws ENOENT without erofs-utils
  assert.match(fs.readFileSync('/proc/filesystems', 'utf8'), /\terofs\n/, 'the kernel has no erofs');
  tmp = await mkdtemp(join(tmpdir(), 'image-ts-loop-mount-'));
  fs.chmodSync(tmp, 0o755); // nobody runs the setuid binary from here
});

after(async () => {
  if (!tmp) return;
  unmountBelow(tmp);
  await rm(tmp, { recursive: true, force: true });
});

function fresh(what: string): string {
  const dir = join(tmp, `${what}-${seq++}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** An LZ4-compressed EROFS image of the tree `build` makes. */
function erofsImage(what: string, build: (dir: string) => void): string {
  const src = fresh(`${what}-src`);
  build(src);
  const image = join(tmp, `${what}-${seq++}.erofs`);
  execFileSync('mkfs.erofs', ['-zlz4', image, src], { stdio: 'pipe' });
  return image;
}

/** An overlay whiteout: a 0:0 character device. */
const whiteout = (path: string): void => nativeSyscalls().mknod(path, fs.constants.S_IFCHR | 0o600, 0, 0);
const opaque = (dir: string): void => nativeSyscalls().lsetxattr(dir, 'trusted.overlay.opaque', Buffer.from('y'));

function mountOptions(target: string): string[] {
  const line = fs.readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === target);
  return line?.split(' ')[3]?.split(',') ?? [];
}

/** Polls until no loop device is backed by `image`: autoclear may detach after the last close returns. Notes how long that took. */
async function detached(t: TestContext, image: string, what: string): Promise<void> {
  const start = performance.now();
  let left = await loopDevicesBackedBy(image);
  let looks = 1;
  for (; left.length > 0 && performance.now() - start < 5000; looks++) {
    await sleep(10);
    left = await loopDevicesBackedBy(image);
  }
  assert.deepEqual(left, [], `loop devices still backed by ${image} 5 s after ${what}`);
  t.diagnostic(`loop device gone ${looks === 1 ? 'at the first look' : `${(performance.now() - start).toFixed(0)} ms (${looks} looks)`} after ${what}`);
}

/** Runs `script` (an ES module; TypeScript imports need tsx) in a child node, resolves with it and its first line of output. */
async function child(script: string, tsx = true): Promise<{ pid: number; line: string; exited: Promise<unknown> }> {
  const args = [...(tsx ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script];
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(proc, 'exit');
  let out = '';
  let err = '';
  proc.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    proc.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    void exited.then(() => reject(new Error(`child exited before reporting: ${err}`)));
  });
  return { pid: proc.pid!, line, exited };
}

const moduleUrl = (path: string): string => JSON.stringify(new URL(`../../src/adapters/outbound/${path}`, import.meta.url).href);

describe('mountErofsImage', () => {
  it('mounts an image read-only, whiteouts and opaque markers intact, and the loop device goes with the mount', async (t) => {
    const image = erofsImage('layer', (dir) => {
      fs.mkdirSync(join(dir, 'etc'));
      fs.writeFileSync(join(dir, 'etc', 'hostname'), 'erofs\n');
      whiteout(join(dir, 'gone'));
      fs.mkdirSync(join(dir, 'opq'));
      opaque(join(dir, 'opq'));
    });
    const target = fresh('mnt');
    mountErofsImage(image, target);
    try {
      const devices = await loopDevicesBackedBy(image);
      assert.equal(devices.length, 1, `one loop device for the image, not ${devices.join(' ')}`);
      assert.deepEqual(await loopDevicesBackedBy(tmp), devices, 'a directory prefix finds it too');
      const sys = `/sys/block/${devices[0]!.slice('/dev/'.length)}/loop`;
      assert.equal(fs.readFileSync(`${sys}/autoclear`, 'utf8').trim(), '1');
      assert.equal(fs.readFileSync(`${sys}/dio`, 'utf8').trim(), '0');
      assert.equal(fs.readFileSync(`/sys/block/${devices[0]!.slice('/dev/'.length)}/ro`, 'utf8').trim(), '1');
      const options = mountOptions(target);
      for (const o of ['ro', 'nosuid', 'nodev']) assert.ok(options.includes(o), `${o} in ${options.join(',')}`);

      assert.equal(fs.readFileSync(join(target, 'etc', 'hostname'), 'utf8'), 'erofs\n');
      const gone = fs.lstatSync(join(target, 'gone'));
      assert.ok(gone.isCharacterDevice());
      assert.equal(gone.rdev, 0);
      assert.deepEqual(nativeSyscalls().lgetxattr(join(target, 'opq'), 'trusted.overlay.opaque'), Buffer.from('y'));
      assert.throws(() => fs.writeFileSync(join(target, 'new'), ''), { code: 'EROFS' });
    } finally {
      unmountErofsImage(target);
    }
    assert.deepEqual(mountOptions(target), []);
    await detached(t, image, 'the unmount');
    unmountErofsImage(target); // no longer a mount point: nothing to do
  });

  it('leaves no loop device behind when the mount fails', async (t) => {
    const notErofs = join(tmp, `zeros-${seq++}.img`);
    fs.writeFileSync(notErofs, Buffer.alloc(1 << 20));
    const target = fresh('mnt');
    assert.throws(() => mountErofsImage(notErofs, target), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'MOUNT_FAILED', err.message);
      assert.match(err.message ?? '', /\/dev\/loop\d+/);
      return true;
    });
    await detached(t, notErofs, 'the failed mount');

    assert.throws(() => mountErofsImage(join(tmp, 'missing.erofs'), target), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'MOUNT_FAILED');
      assert.match(err.message ?? '', /ENOENT/);
      return true;
    });
  });

  it('gives every one of many concurrent attaches from several processes a device of its own', async (t) => {
    const image = erofsImage('contended', (dir) => fs.writeFileSync(join(dir, 'f'), 'f'));
    // Each child attaches 100 times, holding up to 3 devices, so the lowest free device keeps changing under the others.
    // The addon itself, without tsx, so the children start at once and really overlap.
    const script =
      `import { closeSync } from 'node:fs';\nimport { createRequire } from 'node:module';\n` +
      `const addon = createRequire(import.meta.url)(${JSON.stringify(join(ROOT, 'native', 'build', 'Release', 'syscalls.node'))});\n` +
      `const held = [], failures = [];\nfor (let i = 0; i < 100; i++) {\n` +
      `  try { held.push(addon.loopAttach(${JSON.stringify(image)})[0]); if (held.length > 3) closeSync(held.shift()); }\n` +
      `  catch (err) { failures.push(err.message); }\n}\nfor (const fd of held) closeSync(fd);\n` +
      `process.stdout.write(JSON.stringify(failures) + '\\n');`;
    const children = await Promise.all(Array.from({ length: 8 }, () => child(script, false)));
    for (const c of children) assert.deepEqual(JSON.parse(c.line), []);
    await Promise.all(children.map((c) => c.exited));
    await detached(t, image, 'the children closed their devices');
  });

  it('throws errors shaped like node fs errors from loopAttach', () => {
    assert.throws(() => nativeSyscalls().loopAttach!(join(tmp, 'missing.erofs')), { code: 'ENOENT', syscall: 'open', path: join(tmp, 'missing.erofs') });
  });
});

describe('loop devices of processes that die', () => {
  it('detach when the process is killed between attaching and mounting', async (t) => {
    const image = erofsImage('killed-attached', (dir) => fs.writeFileSync(join(dir, 'f'), 'f'));
    const c = await child(
      `import { nativeSyscalls } from ${moduleUrl('native/syscalls.ts')};\n` +
        `const [, device] = nativeSyscalls().loopAttach(${JSON.stringify(image)});\n` +
        `process.stdout.write(device + '\\n');\nsetInterval(() => {}, 1000);`,
    );
    assert.match(c.line, /^\/dev\/loop\d+$/);
    assert.deepEqual(await loopDevicesBackedBy(image), [c.line], 'bound while the child holds it');
    process.kill(c.pid, 'SIGKILL');
    await c.exited;
    await detached(t, image, 'the kill');
  });

  it('stay bound while the dead process\'s mount stays, and detach at its unmount', async (t) => {
    const image = erofsImage('killed-mounted', (dir) => fs.writeFileSync(join(dir, 'f'), 'still here'));
    const target = fresh('mnt');
    const c = await child(
      `import { mountErofsImage } from ${moduleUrl('erofs/loop-mount.ts')};\n` +
        `mountErofsImage(${JSON.stringify(image)}, ${JSON.stringify(target)});\n` +
        `process.stdout.write('mounted\\n');\nsetInterval(() => {}, 1000);`,
    );
    assert.equal(c.line, 'mounted');
    process.kill(c.pid, 'SIGKILL');
    await c.exited;
    await sleep(100);
    assert.equal(fs.readFileSync(join(target, 'f'), 'utf8'), 'still here', 'the mount outlives its process');
    assert.equal((await loopDevicesBackedBy(image)).length, 1, 'and holds its loop device');
    unmountErofsImage(target);
    await detached(t, image, 'the unmount');
  });
});

describe('EROFS layers as overlay lower dirs', () => {
  it('stack: whiteouts and opaque dirs hide the layer below, setuid binaries and device nodes still work', async (t) => {
    const bottom = erofsImage('bottom', (dir) => {
      fs.writeFileSync(join(dir, 'keep'), 'keep');
      fs.writeFileSync(join(dir, 'gone'), 'whited out above');
      fs.mkdirSync(join(dir, 'opq'));
      fs.writeFileSync(join(dir, 'opq', 'hidden'), 'hidden by the opaque dir above');
      fs.copyFileSync('/usr/bin/id', join(dir, 'id'));
      fs.chmodSync(join(dir, 'id'), 0o4755);
      nativeSyscalls().mknod(join(dir, 'null'), fs.constants.S_IFCHR | 0o666, 1, 3);
    });
    const top = erofsImage('top', (dir) => {
      whiteout(join(dir, 'gone'));
      fs.mkdirSync(join(dir, 'opq'));
      opaque(join(dir, 'opq'));
      fs.writeFileSync(join(dir, 'opq', 'inner'), 'inner');
    });
    const [lowerBottom, lowerTop, merged] = [fresh('lower-bottom'), fresh('lower-top'), fresh('merged')];
    mountErofsImage(bottom, lowerBottom);
    mountErofsImage(top, lowerTop);
    try {
      nativeSyscalls().mount('overlay', merged, 'overlay', 0, `lowerdir=${lowerTop}:${lowerBottom}`);
      try {
        assert.deepEqual(fs.readdirSync(merged).sort(), ['id', 'keep', 'null', 'opq']);
        assert.deepEqual(fs.readdirSync(join(merged, 'opq')), ['inner']);
        assert.equal(fs.readFileSync(join(merged, 'keep'), 'utf8'), 'keep');

        // The lower mounts are nosuid,nodev; the overlay is not, and it is the overlay's mount that exec and open check.
        const asNobody = (path: string): string =>
          execFileSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', path, '-u'], { encoding: 'utf8' }).trim();
        assert.equal(asNobody(join(merged, 'id')), '0', 'setuid honoured through the overlay');
        assert.equal(asNobody(join(lowerBottom, 'id')), String(NOBODY), 'and not through the nosuid EROFS mount itself');
        fs.writeFileSync(join(merged, 'null'), 'discarded'); // opens the device: /dev/null
        assert.throws(() => fs.writeFileSync(join(lowerBottom, 'null'), ''), { code: 'EACCES' });
      } finally {
        nativeSyscalls().umount2(merged, 0);
      }
    } finally {
      unmountErofsImage(lowerTop);
      unmountErofsImage(lowerBottom);
    }
    await detached(t, top, 'the unmount');
    await detached(t, bottom, 'the unmount');
  });
});
