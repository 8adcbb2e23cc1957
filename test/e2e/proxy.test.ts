import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { smallImage, startRegistry, type StartedRegistry } from '../harness/registry.js';
import { cli } from '../helpers/cli.js';
import { unmountBelow } from '../helpers/mounts.js';

/** A forward proxy written for the test: it tunnels CONNECT and records where to. */
let dir: string;
let registry: StartedRegistry;
let proxy: Server;
let proxyUrl: string;
const tunnels: string[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-proxy-'));
  registry = await startRegistry('open', { parentDir: dir });
  await registry.pushImage('proxied/app', 'v1', smallImage('through the proxy\n'));
  proxy = createServer((_req, res) => {
    res.statusCode = 405;
    res.end();
  });
  proxy.on('connect', (req, client, head) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host!, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
});

after(async () => {
  proxy?.closeAllConnections();
  proxy?.close();
  await registry?.stop();
  unmountBelow(dir);
  await rm(dir, { recursive: true, force: true });
});

describe('proxies', () => {
  it('image_pull_proxy carries registry traffic; no_proxy bypasses it', async () => {
    const config = join(dir, 'proxy.json');
    await writeFile(config, JSON.stringify({ image_pull_proxy: { http_proxy: proxyUrl, https_proxy: proxyUrl } }));
    const bundle = join(dir, 'b1');
    const r = await cli(['pull', `${registry.host}/proxied/app:v1`, bundle, '--work-dir', join(dir, 'w1'), '--insecure-registry', registry.host, '--snapshotter', 'copy', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await readFile(join(bundle, 'rootfs', 'hello.txt'), 'utf8'), 'through the proxy\n');
    assert.ok(tunnels.includes(registry.host), `the proxy saw ${tunnels.join(', ')}`);

    const before = tunnels.length;
    const bypass = join(dir, 'bypass.json');
    await writeFile(bypass, JSON.stringify({ image_pull_proxy: { http_proxy: proxyUrl, no_proxy: '127.0.0.1' } }));
    const direct = await cli(['pull', `${registry.host}/proxied/app:v1`, join(dir, 'b2'), '--work-dir', join(dir, 'w2'), '--insecure-registry', registry.host, '--snapshotter', 'copy', '--config', bypass]);
    assert.equal(direct.code, 0, direct.stderr);
    assert.equal(tunnels.length, before, 'no_proxy hosts are reached directly');
  });

  it('the standard environment variables apply when the config names no proxy', async () => {
    const before = tunnels.length;
    const r = await cli(['pull', `${registry.host}/proxied/app:v1`, join(dir, 'b3'), '--work-dir', join(dir, 'w3'), '--insecure-registry', registry.host, '--snapshotter', 'copy'],
      { env: { HTTP_PROXY: proxyUrl, NO_PROXY: '' } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(tunnels.length > before);
  });

  it('a proxy that is down gives NETWORK', async () => {
    const config = join(dir, 'dead.json');
    await writeFile(config, JSON.stringify({ image_pull_proxy: { http_proxy: 'http://127.0.0.1:9' } }));
    const r = await cli(['pull', `${registry.host}/proxied/app:v1`, join(dir, 'b4'), '--work-dir', join(dir, 'w4'), '--insecure-registry', registry.host, '--snapshotter', 'copy', '--config', config]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^image-ts: NETWORK: /);
  });
});
