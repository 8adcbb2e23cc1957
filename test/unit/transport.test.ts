import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { backoffMs, isTransientError, transportError } from '../../src/adapters/outbound/http/transport-errors.js';
import { resumingStream, type BlobBody } from '../../src/adapters/outbound/registry/resuming-stream.js';
import { ImageTsError } from '../../src/domain/errors.js';

const blob = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 31) & 0xff));

function errno(code: string): Error {
  return Object.assign(new Error(code), { code });
}

/** A body that sends `bytes`, then fails with `error` (or ends cleanly when there is none). */
function body(bytes: Buffer, error?: Error): Readable {
  return new Readable({
    read() {
      this.push(bytes);
      if (error) this.destroy(error);
      else this.push(null);
    },
  });
}

describe('backoffMs', () => {
  it('grows exponentially, stays within [half, all] of the step, and is capped', () => {
    assert.equal(backoffMs(0, 250, 10_000, () => 0), 125);
    assert.equal(backoffMs(0, 250, 10_000, () => 1), 250);
    assert.equal(backoffMs(3, 250, 10_000, () => 0), 1000);
    assert.equal(backoffMs(3, 250, 10_000, () => 1), 2000);
    assert.equal(backoffMs(10, 250, 2000, () => 1), 2000);
    assert.equal(backoffMs(10, 250, 2000, () => 0), 1000);
  });

  it('spreads clients that failed at once', () => {
    const waits = new Set(Array.from({ length: 50 }, () => backoffMs(2, 250, 10_000)));
    assert.ok(waits.size > 10, `50 draws gave only ${waits.size} distinct waits`);
    for (const w of waits) assert.ok(w >= 500 && w <= 1000, `${w} is outside [500, 1000]`);
  });
});

describe('transport errors', () => {
  it('treats connection failures as transient and typed errors as final', () => {
    assert.equal(isTransientError(errno('ECONNRESET')), true);
    assert.equal(isTransientError(Object.assign(new Error('wrapped'), { cause: errno('UND_ERR_SOCKET') })), true);
    assert.equal(isTransientError(errno('ENOENT')), false);
    assert.equal(isTransientError(new ImageTsError('DIGEST_MISMATCH', 'x')), false);
  });

  it('maps TLS failures to TLS and the rest to NETWORK, naming the host', () => {
    const tls = transportError(errno('DEPTH_ZERO_SELF_SIGNED_CERT'), 'r.example:5000');
    assert.equal(tls.code, 'TLS');
    assert.match(tls.message, /r\.example:5000/);
    assert.equal(transportError(errno('ECONNREFUSED'), 'h').code, 'NETWORK');
  });
});

describe('resumingStream', () => {
  function resumer(first: BlobBody, answers: ((offset: number) => BlobBody)[], retries = 3) {
    const offsets: number[] = [];
    const stream = resumingStream(first, {
      host: 'h',
      retries,
      size: blob.length,
      signal: undefined,
      reopen: async (offset) => {
        offsets.push(offset);
        const next = answers.shift();
        if (!next) throw new Error('unexpected reopen');
        return next(offset);
      },
      onResume: () => undefined,
    });
    return { stream, offsets };
  }

  it('resumes a reset body from the last byte received', async () => {
    const { stream, offsets } = resumer({ body: body(blob.subarray(0, 1000), errno('ECONNRESET')), skip: 0 }, [
      (offset) => ({ body: body(blob.subarray(offset)), skip: 0 }),
    ]);
    assert.deepEqual(await buffer(stream), blob);
    assert.deepEqual(offsets, [1000]);
  });

  it('drops the bytes it already has when the server ignored Range and sent everything', async () => {
    const { stream, offsets } = resumer({ body: body(blob.subarray(0, 1500), errno('UND_ERR_SOCKET')), skip: 0 }, [
      (offset) => ({ body: body(blob), skip: offset }),
    ]);
    assert.deepEqual(await buffer(stream), blob);
    assert.deepEqual(offsets, [1500]);
  });

  it('resumes a body that ended cleanly before the descriptor size', async () => {
    const { stream, offsets } = resumer({ body: body(blob.subarray(0, 10)), skip: 0 }, [
      (offset) => ({ body: body(blob.subarray(offset, 2000)), skip: 0 }),
      (offset) => ({ body: body(blob.subarray(offset)), skip: 0 }),
    ]);
    assert.deepEqual(await buffer(stream), blob);
    assert.deepEqual(offsets, [10, 2000]);
  });

  it('a body that keeps ending short is NETWORK once the resumes run out', async () => {
    const short = (offset: number): BlobBody => ({ body: body(blob.subarray(offset, offset + 100)), skip: 0 });
    const { stream, offsets } = resumer(short(0), [short, short], 2);
    await assert.rejects(buffer(stream), (err: unknown) => err instanceof ImageTsError && err.code === 'NETWORK' && /body ended after 300 of 4096 bytes/.test(err.message));
    assert.deepEqual(offsets, [100, 200]);
  });

  it('a connection that breaks after the last byte ends the stream: the digest check decides', async () => {
    const { stream, offsets } = resumer({ body: body(blob, errno('ECONNRESET')), skip: 0 }, []);
    assert.deepEqual(await buffer(stream), blob);
    assert.deepEqual(offsets, []);
  });

  it('gives up with NETWORK after its retries, and never retries a non-transient failure', async () => {
    const broken = (): BlobBody => ({ body: body(blob.subarray(0, 1), errno('ECONNRESET')), skip: 0 });
    const bounded = resumer(broken(), [broken, broken], 2);
    await assert.rejects(buffer(bounded.stream), (err: unknown) => err instanceof ImageTsError && err.code === 'NETWORK');
    assert.equal(bounded.offsets.length, 2);

    const final = resumer({ body: body(blob.subarray(0, 5), errno('EACCES')), skip: 0 }, []);
    await assert.rejects(buffer(final.stream), (err: unknown) => err instanceof ImageTsError && err.code === 'NETWORK');
    assert.equal(final.offsets.length, 0);
  });
});
