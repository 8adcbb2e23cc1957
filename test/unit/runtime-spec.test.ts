import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageTsError } from '../../src/domain/errors.js';
import { ImageConfig } from '../../src/domain/image/image-config.js';
import { DEFAULT_PATH, buildRuntimeSpec } from '../../src/domain/runtime/runtime-spec.js';
import { resolveUser } from '../../src/domain/runtime/user.js';
import { buildImage } from '../helpers/image-builder.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n# comment\nbroken line\nweb:x:33:33::/var/www:/bin/false\n';
const GROUP = 'root:x:0:\nappgrp:x:1001:\nwheel:x:10:app,web\ndocker:x:999:app\nweb:x:33:\n';

describe('resolveUser', () => {
  const cases: [string | undefined, number, number, number[]][] = [
    [undefined, 0, 0, []],
    ['', 0, 0, []],
    ['app', 1000, 1001, [10, 999]],
    ['1000', 1000, 1001, [10, 999]],
    ['4242', 4242, 0, []],
    ['app:wheel', 1000, 10, []],
    ['app:5', 1000, 5, []],
    ['33:33', 33, 33, []],
    ['web', 33, 33, [10]],
  ];
  for (const [spec, uid, gid, extra] of cases) {
    it(`resolves ${JSON.stringify(spec)}`, () => {
      assert.deepEqual(resolveUser(spec, PASSWD, GROUP), { uid, gid, additionalGids: extra });
    });
  }
  it('fails for names that the image does not know', () => {
    assert.throws(() => resolveUser('ghost', PASSWD, GROUP), (e: unknown) => e instanceof ImageTsError && e.code === 'INVALID_CONFIG');
    assert.throws(() => resolveUser('app:ghosts', PASSWD, GROUP), /not in the image's \/etc\/group/);
    assert.throws(() => resolveUser('app', undefined, undefined), /not in the image's \/etc\/passwd/);
  });
});

describe('buildRuntimeSpec', () => {
  const config = (c: Record<string, unknown>) => ImageConfig.parse(buildImage({ layers: [], config: c }).config);

  it('maps Entrypoint + Cmd, Env over the default PATH, WorkingDir, user and volumes', () => {
    const spec = buildRuntimeSpec(
      config({ Entrypoint: ['/bin/app'], Cmd: ['--serve'], Env: ['FOO=bar', 'TERM=dumb'], WorkingDir: '/srv', Volumes: { '/data': {} },
        Labels: { 'org.opencontainers.image.os': 'label-wins', team: 'a' }, StopSignal: 'SIGINT', ExposedPorts: { '80/tcp': {}, '53/udp': {} } }),
      { uid: 1000, gid: 1001, additionalGids: [10] },
    );
    assert.deepEqual(spec.process.args, ['/bin/app', '--serve']);
    assert.deepEqual(spec.process.env, [`PATH=${DEFAULT_PATH}`, 'TERM=dumb', 'FOO=bar']);
    assert.equal(spec.process.cwd, '/srv');
    assert.deepEqual(spec.process.user, { uid: 1000, gid: 1001, additionalGids: [10] });
    assert.deepEqual(spec.mounts[0], { destination: '/data', type: 'tmpfs', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'rw'] });
    assert.equal(spec.mounts[1]!.destination, '/proc');
    assert.equal(spec.annotations['team'], 'a');
    assert.equal(spec.annotations['org.opencontainers.image.os'], 'label-wins');
    assert.equal(spec.annotations['org.opencontainers.image.architecture'], 'amd64');
    assert.equal(spec.annotations['org.opencontainers.image.stopSignal'], 'SIGINT');
    assert.equal(spec.annotations['org.opencontainers.image.exposedPorts'], '80/tcp,53/udp');
    assert.deepEqual(spec.root, { path: 'rootfs', readonly: true });
  });

  it('lets the image override PATH and falls back to sh without a command', () => {
    const spec = buildRuntimeSpec(config({ Env: ['PATH=/opt/bin'] }), { uid: 0, gid: 0, additionalGids: [] });
    assert.deepEqual(spec.process.env, ['PATH=/opt/bin', 'TERM=xterm']);
    assert.deepEqual(spec.process.args, ['sh']);
    assert.equal(spec.process.cwd, '/');
    assert.deepEqual(spec.process.user, { uid: 0, gid: 0 });
  });
});
