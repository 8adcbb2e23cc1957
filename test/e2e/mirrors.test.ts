import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { freePort, smallImage, startRegistry, type StartedRegistry } from '../harness/registry.js';
import { assertCliError, cli } from '../helpers/cli.js';
import { unmountBelow } from '../helpers/mounts.js';

/**
 * registries.conf end to end with two real registries: a mirror that has the
 * image and a primary that does not (or is down), remaps, blocks, and the
 * signature policy judging the name the user gave while signatures are read
 * for the mirror.
 */
const execFileP = promisify(execFile);
let dir: string;
let primary: StartedRegistry;
let mirror: StartedRegistry;
let digest: string;
let n = 0;

async function conf(text: string): Promise<string> {
  const path = join(dir, `registries-${n++}.conf`);
  await writeFile(path, text);
  return path;
}

async function pull(image: string, args: string[]) {
  const bundle = join(dir, `bundle-${n++}`);
  const r = await cli(['pull', image, bundle, '--work-dir', join(dir, `work-${n++}`), '--snapshotter', 'copy', '--quiet', ...args]);
  return { ...r, bundle };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-mirrors-'));
  [primary, mirror] = await Promise.all([startRegistry('open', { parentDir: dir }), startRegistry('open', { parentDir: dir })]);
  digest = (await mirror.pushImage('team/app', 'v1', smallImage('from the mirror\n'))).manifestDigest;
  await primary.pushImage('team/other', 'v1', smallImage('primary only\n'));
});

after(async () => {
  await primary?.stop();
  await mirror?.stop();
  unmountBelow(dir);
  await rm(dir, { recursive: true, force: true });
});

describe('registries.conf mirrors, remaps and blocks', () => {
  it('a mirror that has the image serves it; the primary is tried after the mirror', async () => {
    const c = await conf(`[[registry]]\nprefix = "${primary.host}/team"\nlocation = "${primary.host}/team"\ninsecure = true\n[[registry.mirror]]\nlocation = "${mirror.host}/team"\ninsecure = true\n`);
    const r = await pull(`${primary.host}/team/app:v1`, ['--registries-conf', c]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await readFile(join(r.bundle, 'rootfs', 'hello.txt'), 'utf8'), 'from the mirror\n');
    // Not on the mirror: the primary serves it.
    const other = await pull(`${primary.host}/team/other:v1`, ['--registries-conf', c]);
    assert.equal(other.code, 0, other.stderr);
    assert.equal(await readFile(join(other.bundle, 'rootfs', 'hello.txt'), 'utf8'), 'primary only\n');
  });

  it('a dead mirror falls through to the primary; when every source fails, each error is named', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const c = await conf(`[[registry]]\nprefix = "${primary.host}"\nlocation = "${primary.host}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${dead}"\ninsecure = true\n`);
    const ok = await pull(`${primary.host}/team/other:v1`, ['--registries-conf', c]);
    assert.equal(ok.code, 0, ok.stderr);
    const missing = await pull(`${primary.host}/team/none:v1`, ['--registries-conf', c]);
    assertCliError(missing, 'NOT_FOUND');
    assert.match(missing.stderr, new RegExp(`mirror ${dead.replace(/\./g, '\\.')}/team/none: .*; registry ${primary.host.replace(/\./g, '\\.')}/team/none: `));
  });

  it('a remap reads from its location; prefixes are anchored (team does not match teamwork)', async () => {
    const c = await conf(`[[registry]]\nprefix = "example.com/team"\nlocation = "${mirror.host}/team"\ninsecure = true\n`);
    const r = await pull('example.com/team/app:v1', ['--registries-conf', c]);
    assert.equal(r.code, 0, r.stderr);
    const anchored = await pull('example.com/teamwork/app:v1', ['--registries-conf', c]);
    assert.notEqual(anchored.code, 0, 'example.com/teamwork is not under the example.com/team prefix');
    assert.doesNotMatch(anchored.stderr, new RegExp(mirror.host.replace(/\./g, '\\.')));
  });

  it('a blocked registry is refused with BLOCKED before any request', async () => {
    const c = await conf(`[[registry]]\nprefix = "${primary.host}"\nlocation = "${primary.host}"\nblocked = true\n`);
    const r = await pull(`${primary.host}/team/other:v1`, ['--registries-conf', c, '--insecure-registry', primary.host]);
    assertCliError(r, 'BLOCKED');
    assert.match(r.stderr, /blocked in registries\.conf/);
  });

  it('insecure applies to the registry it is set for only', async () => {
    const c = await conf(`[[registry]]\nprefix = "${mirror.host}"\nlocation = "${mirror.host}"\ninsecure = true\n`);
    const ok = await pull(`${mirror.host}/team/app:v1`, ['--registries-conf', c]);
    assert.equal(ok.code, 0, ok.stderr);
    // The primary is not marked: image-ts speaks TLS to it, and its plain-HTTP answer fails the handshake.
    const strict = await pull(`${primary.host}/team/other:v1`, ['--registries-conf', c]);
    assertCliError(strict, 'TLS');
  });

  it('a short name is searched in unqualified-search-registries order; the name found is recorded', async () => {
    const work = join(dir, 'short-work');
    const c = await conf(`unqualified-search-registries = ["${primary.host}", "${mirror.host}"]\n[[registry]]\nprefix = "${primary.host}"\nlocation = "${primary.host}"\ninsecure = true\n[[registry]]\nprefix = "${mirror.host}"\nlocation = "${mirror.host}"\ninsecure = true\n`);
    const bundle = join(dir, `bundle-${n++}`);
    const r = await cli(['pull', 'team/app:v1', bundle, '--work-dir', work, '--snapshotter', 'copy', '--registries-conf', c, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).reference, `${mirror.host}/team/app:v1`);
    assert.equal(await readFile(join(bundle, 'rootfs', 'hello.txt'), 'utf8'), 'from the mirror\n');
    // The first registry that has it wins.
    const first = await pull('team/other:v1', ['--registries-conf', c]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(await readFile(join(first.bundle, 'rootfs', 'hello.txt'), 'utf8'), 'primary only\n');
    // Found nowhere: every registry's error, the last one's code.
    const none = await pull('team/none:v1', ['--registries-conf', c]);
    assertCliError(none, 'NOT_FOUND');
    assert.match(none.stderr, new RegExp(`short name team/none:v1 resolved nowhere: ${primary.host.replace(/\./g, '\\.')}/team/none:v1: .*; ${mirror.host.replace(/\./g, '\\.')}/team/none:v1: `));
    // An alias wins over the search list.
    const aliased = await conf(`unqualified-search-registries = ["${primary.host}"]\n[aliases]\n"myapp" = "${mirror.host}/team/app"\n[[registry]]\nprefix = "${mirror.host}"\nlocation = "${mirror.host}"\ninsecure = true\n`);
    const viaAlias = await pull('myapp:v1', ['--registries-conf', aliased]);
    assert.equal(viaAlias.code, 0, viaAlias.stderr);
    assert.equal(await readFile(join(viaAlias.bundle, 'rootfs', 'hello.txt'), 'utf8'), 'from the mirror\n');
  });

  it('image-rs\'s inline registry_config in the config file works the same', async () => {
    const config = join(dir, 'inline.json');
    await writeFile(config, JSON.stringify({ registry_config: { registry: [{ prefix: 'example.com/team', location: `${mirror.host}/team`, insecure: true }] } }));
    const r = await pull('example.com/team/app:v1', ['--config', config]);
    assert.equal(r.code, 0, r.stderr);
  });
});

describe('signature policy through a mirror', () => {
  it('judges the name the user gave; signatures are read for the repository actually pulled', async () => {
    const home = join(dir, 'gpg');
    await mkdir(home, { recursive: true, mode: 0o700 });
    const env = { ...process.env, GNUPGHOME: home };
    await writeFile(join(home, 'params'), '%no-protection\nKey-Type: RSA\nKey-Length: 2048\nName-Real: m\nName-Email: m@example.com\nExpire-Date: 0\n%commit\n');
    await execFileP('gpg', ['--batch', '--gen-key', join(home, 'params')], { env });
    const fpr = /^fpr:::::::::([0-9A-F]{40}):/m.exec((await execFileP('gpg', ['--list-keys', '--with-colons'], { env })).stdout)![1]!;
    const ring = join(home, 'ring.gpg');
    await writeFile(ring, (await execFileP('gpg', ['--export', fpr], { env, encoding: 'buffer' })).stdout);
    const manifest = join(dir, 'manifest.json');
    await writeFile(manifest, (await mirror.pushImage('team/app', 'v1', smallImage('from the mirror\n'))).manifestBytes);

    const lookaside = join(dir, 'lookaside');
    const sigDir = join(lookaside, 'team', `app@sha256=${digest.slice(7)}`);
    await mkdir(sigDir, { recursive: true });
    const regd = join(dir, 'registries.d');
    await mkdir(regd, { recursive: true });
    await writeFile(join(regd, 'default.yaml'), `default-docker:\n  lookaside: file://${lookaside}\n`);
    const c = await conf(`[[registry]]\nprefix = "${primary.host}/team"\nlocation = "${primary.host}/team"\ninsecure = true\n[[registry.mirror]]\nlocation = "${mirror.host}/team"\ninsecure = true\n`);
    const policy = join(dir, 'policy.json');
    await writeFile(policy, JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [`${primary.host}/team`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: ring }] } } }));
    const args = ['--registries-conf', c, '--policy', policy, '--registries-d', regd];

    // Signed for the mirror's name: the logical name does not match.
    await execFileP('skopeo', ['standalone-sign', manifest, `${mirror.host}/team/app:v1`, fpr, '-o', join(sigDir, 'signature-1')], { env });
    assertCliError(await pull(`${primary.host}/team/app:v1`, args), 'SIGNATURE_INVALID');
    // Signed for the name the user pulls: accepted, though the bytes came from the mirror.
    await execFileP('skopeo', ['standalone-sign', manifest, `${primary.host}/team/app:v1`, fpr, '-o', join(sigDir, 'signature-1')], { env });
    const ok = await pull(`${primary.host}/team/app:v1`, args);
    assert.equal(ok.code, 0, ok.stderr);
    await execFileP('gpgconf', ['--kill', 'gpg-agent'], { env }).catch(() => undefined);
  });
});
