import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalBundleDirectory } from '../../src/adapters/outbound/snapshot/local-bundle-directory.js';
import { ImageTsError } from '../../src/domain/errors.js';
import type { RuntimeSpec } from '../../src/domain/runtime/runtime-spec.js';

let tmp: string;
before(async () => { tmp = await mkdtemp(join(tmpdir(), 'image-ts-bundle-')); });
after(async () => { await rm(tmp, { recursive: true, force: true }); });

describe('LocalBundleDirectory', () => {
  const b = new LocalBundleDirectory();
  it('create: new dir, existing empty dir, non-empty dir, file', async () => {
    const r = await b.create(join(tmp, 'new/nested'));
    assert.deepEqual(r, { rootfs: join(tmp, 'new/nested/rootfs'), createdDir: true });
    fs.mkdirSync(join(tmp, 'empty'));
    assert.equal((await b.create(join(tmp, 'empty'))).createdDir, false);
    await assert.rejects(b.create(join(tmp, 'empty')), { code: 'BUNDLE_EXISTS' });
    fs.writeFileSync(join(tmp, 'afile'), 'x');
    await assert.rejects(b.create(join(tmp, 'afile')), { code: 'BUNDLE_EXISTS' });
  });
  it('readRootfsFile resolves symlinks inside the rootfs', async () => {
    const { rootfs } = await b.create(join(tmp, 'r'));
    fs.mkdirSync(join(rootfs, 'etc'));
    fs.writeFileSync(join(rootfs, 'etc/shadow'), 'image shadow');
    fs.symlinkSync('../../../etc/shadow', join(rootfs, 'etc/passwd'));
    assert.equal(await b.readRootfsFile(rootfs, '/etc/passwd', 100), 'image shadow');
    fs.symlinkSync('/etc', join(rootfs, 'abs'));
    assert.equal(await b.readRootfsFile(rootfs, '/abs/shadow', 100), 'image shadow');
    assert.equal(await b.readRootfsFile(rootfs, '/../../../../etc/shadow', 100), 'image shadow');
    assert.equal(await b.readRootfsFile(rootfs, '/etc/group', 100), undefined);
    assert.equal(await b.readRootfsFile(rootfs, '/etc', 100), undefined);
    fs.symlinkSync('loop', join(rootfs, 'loop'));
    assert.equal(await b.readRootfsFile(rootfs, '/loop', 100), undefined);
    fs.symlinkSync('/etc/passwd', join(rootfs, 'host'));
    // /etc/passwd inside the rootfs is itself a link to the image's shadow, never the host's passwd.
    assert.equal(await b.readRootfsFile(rootfs, '/host', 100), 'image shadow');
    await assert.rejects(b.readRootfsFile(rootfs, '/etc/passwd', 5), { code: 'INVALID_LAYER' });
    fs.writeFileSync(join(rootfs, 'etc/file'), 'x');
    assert.equal(await b.readRootfsFile(rootfs, '/etc/file/sub', 100), undefined);
  });
  it('writeConfig is atomic; remove undoes create', async () => {
    const dir = join(tmp, 'w');
    const { createdDir } = await b.create(dir);
    await b.writeConfig(dir, { ociVersion: '1.0.2' } as RuntimeSpec);
    assert.equal(JSON.parse(fs.readFileSync(join(dir, 'config.json'), 'utf8')).ociVersion, '1.0.2');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', 'rootfs']);
    await b.remove(dir, createdDir);
    assert.equal(fs.existsSync(dir), false);
    fs.mkdirSync(join(tmp, 'keep'));
    await b.create(join(tmp, 'keep'));
    await b.remove(join(tmp, 'keep'), false);
    assert.deepEqual(fs.readdirSync(join(tmp, 'keep')), []);
  });
});

describe('LocalBundleDirectory.create never follows a symlink at the bundle path', () => {
  it('a symlink to an empty directory elsewhere is BUNDLE_EXISTS, and nothing is made there', async () => {
    const dir = join(tmp, 'link-case');
    fs.mkdirSync(join(dir, 'elsewhere'), { recursive: true });
    fs.symlinkSync(join(dir, 'elsewhere'), join(dir, 'bundle'));
    await assert.rejects(new LocalBundleDirectory().create(join(dir, 'bundle')), (e: unknown) => e instanceof ImageTsError && e.code === 'BUNDLE_EXISTS');
    assert.deepEqual(fs.readdirSync(join(dir, 'elsewhere')), []);
  });
});
