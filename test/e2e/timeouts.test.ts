import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../helpers/image-builder.js';
import { cli } from '../helpers/cli.js';
import { tar } from '../helpers/tar-writer.js';

/** A registry written for the test whose blob stalls after its first bytes. */
let dir: string;
let server: Server;
let host: string;
const image = buildImage({ layers: [{ tar: tar([{ name: 'f', content: Buffer.alloc(512 * 1024, 7) }]), compression: 'none' }] });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-ts-timeouts-'));
  server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') return res.end('{}');
    if (url.startsWith('/v2/stall/app/manifests/')) {
      res.setHeader('content-type', image.manifestMediaType);
      return res.end(image.manifest);
    }
    const m = /^\/v2\/stall\/app\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url);
    const blob = m ? image.blobs.get(m[1]!) : undefined;
    if (!blob) {
      res.statusCode = 404;
      return res.end();
    }
    if (m![1] === image.configDigest) return res.end(blob);
    // The layer: headers, a first chunk, then nothing.
    res.writeHead(200, { 'content-length': String(blob.length) });
    res.write(blob.subarray(0, 1024));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(async () => {
  server?.closeAllConnections();
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('timeouts', () => {
  it('read_timeout_seconds ends a stalled blob with NETWORK, nothing committed', async () => {
    const config = join(dir, 'idle.json');
    await writeFile(config, JSON.stringify({ read_timeout_seconds: 0.5 }));
    const started = Date.now();
    const r = await cli(['pull', `${host}/stall/app:v1`, join(dir, 'b1'), '--work-dir', join(dir, 'w1'), '--insecure-registry', host, '--snapshotter', 'copy', '--config', config]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^image-ts: NETWORK: /);
    assert.ok(Date.now() - started < 30_000, 'retries are bounded');
    assert.equal(existsSync(join(dir, 'b1')), false);
  });

  it('pull_timeout_seconds ends the whole pull with NETWORK', async () => {
    const config = join(dir, 'deadline.json');
    await writeFile(config, JSON.stringify({ pull_timeout_seconds: 1.5, read_timeout_seconds: 60 }));
    const started = Date.now();
    const r = await cli(['pull', `${host}/stall/app:v1`, join(dir, 'b2'), '--work-dir', join(dir, 'w2'), '--insecure-registry', host, '--snapshotter', 'copy', '--config', config]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^image-ts: NETWORK: the pull took longer than pull_timeout_seconds/);
    assert.ok(Date.now() - started < 15_000);
    assert.equal(existsSync(join(dir, 'b2')), false);
  });

  it('refuses nonsense timeout values', async () => {
    const config = join(dir, 'bad.json');
    await writeFile(config, JSON.stringify({ connect_timeout_seconds: -1 }));
    const r = await cli(['pull', `${host}/stall/app:v1`, join(dir, 'b3'), '--config', config]);
    assert.match(r.stderr, /^image-ts: CONFIG_FILE_INVALID: connect_timeout_seconds/);
  });
});
