import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import { ImageTsError } from '../src/domain/errors.js';
import type { Compression } from '../src/domain/image/media-types.js';
import type { Decompressor } from '../src/ports/layer/decompressor.js';

async function run(d: Decompressor, c: Compression, input: Buffer, chunk = 7000): Promise<Buffer> {
  const out: Buffer[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunk) parts.push(input.subarray(i, i + chunk));
  await pipeline(Readable.from(parts), d.create(c), new Writable({
    write(b: Buffer, _e, cb): void {
      out.push(b);
      cb();
    },
  }));
  return Buffer.concat(out);
}

/** One gzip member with every optional header field (RFC 1952): FEXTRA, FNAME, FCOMMENT and FHCRC. */
function fullHeaderMember(data: Buffer): Buffer {
  const extra = Buffer.from('AB\x04\x00wxyz', 'latin1');
  const head = Buffer.concat([
    Buffer.from([0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 0, 0, 0, 0, 0, 3]),
    Buffer.from([extra.length & 0xff, extra.length >> 8]), extra,
    Buffer.from('layer.tar\0comment\0', 'latin1'),
  ]);
  const hcrc = crc32(head) & 0xffff;
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data), 0);
  trailer.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, Buffer.from([hcrc & 0xff, hcrc >> 8]), deflateRawSync(data), trailer]);
}

function split(input: Buffer, size: number): Buffer[] {
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) parts.push(input.subarray(i, i + size));
  return parts;
}

/**
 * What a decoder may hold decoded before its consumer reads: its readable
 * high-water mark (8 MB for node's zlib) and a step's output. The layers
 * below inflate by 1000:1 (gzip) and far more (zstd), so one input chunk
 * would overshoot it.
 */
const BUFFERED_BOUND = 16 * 1024 * 1024;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** 64 MB of zeros as one gzip member and one zstd frame; made once, shared by every contract run. */
let zeros: { readonly gzip: Buffer; readonly zstd: Buffer; readonly length: number; readonly sha256: string } | undefined;
function highRatio(): NonNullable<typeof zeros> {
  if (!zeros) {
    const plain = Buffer.alloc(64 * 1024 * 1024);
    zeros = { gzip: gzipSync(plain, { level: 9 }), zstd: zstdCompress(plain), length: plain.length, sha256: sha256(plain) };
  }
  return zeros;
}

/** A zstd skippable frame (magic 0x184D2A5?), which decoders pass over. */
function skippableFrame(payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x184d2a53, 0);
  head.writeUInt32LE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

/**
 * Random and highly compressible stretches, as gzip members and as zstd
 * frames with a skippable frame among them; made once.
 */
let mixedLayers: { readonly want: { sha256: string; length: number }; readonly gzip: Buffer; readonly zstd: Buffer } | undefined;
function mixed(): NonNullable<typeof mixedLayers> {
  if (!mixedLayers) {
    const pieces = [randomBytes(300_000), Buffer.alloc(40 * 1024 * 1024), Buffer.concat([Buffer.alloc(700_000, 0x61), randomBytes(100_000)]), Buffer.alloc(24 * 1024 * 1024)];
    const whole = createHash('sha256');
    for (const p of pieces) whole.update(p);
    mixedLayers = {
      want: { sha256: whole.digest('hex'), length: pieces.reduce((n, p) => n + p.length, 0) },
      gzip: Buffer.concat(pieces.map((p) => gzipSync(p))),
      zstd: Buffer.concat(pieces.flatMap((p, i) => (i === 2 ? [skippableFrame(Buffer.from('skip me')), zstdCompress(p)] : [zstdCompress(p)]))),
    };
  }
  return mixedLayers;
}

/** One zstd frame holding `data` as a raw block, whose header asks for a 2^windowLog-byte window. */
function zstdFrameWithWindow(windowLog: number, data: Buffer): Buffer {
  const block = 1 | (data.length << 3); // last block, raw
  return Buffer.concat([
    Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (windowLog - 10) << 3]),
    Buffer.from([block & 0xff, (block >> 8) & 0xff, block >> 16]),
    data,
  ]);
}

/** Output read in small bites with a pause now and then; notes the most the decoder held meanwhile. */
async function readSlowly(dec: Duplex, input: Buffer, chunk: number): Promise<{ sha256: string; length: number; mostBuffered: number }> {
  const hash = createHash('sha256');
  let length = 0;
  let mostBuffered = 0;
  let n = 0;
  await pipeline(Readable.from(split(input, chunk)), dec, new Writable({
    highWaterMark: 16 * 1024,
    write(b: Buffer, _e, cb): void {
      hash.update(b);
      length += b.length;
      mostBuffered = Math.max(mostBuffered, dec.readableLength);
      if (++n % 64 === 0) setTimeout(cb, 2);
      else setImmediate(cb);
    },
  }));
  return { sha256: hash.digest('hex'), length, mostBuffered };
}

export interface ContractOptions {
  /** False for a decoder that holds whole layers by design (the in-memory mock): skips the bounded-memory cases. */
  readonly boundedOutput?: boolean;
}

/** What every Decompressor must do, whatever codec library sits behind it. */
export function decompressorContract(name: string, make: () => Decompressor, options: ContractOptions = {}): void {
  const unbounded = options.boundedOutput === false && 'holds whole layers by design';
  describe(`Decompressor contract: ${name}`, () => {
    const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(700_000, 0x61)]);

    it('supports gzip, zstd and none', () => {
      for (const c of ['gzip', 'zstd', 'none'] as const) assert.equal(make().supports(c), true);
    });
    it('passes uncompressed data through', async () => {
      assert.ok((await run(make(), 'none', data)).equals(data));
    });
    it('reads every gzip member', async () => {
      const multi = Buffer.concat([gzipSync(data.subarray(0, 400_000)), gzipSync(data.subarray(400_000))]);
      assert.ok((await run(make(), 'gzip', multi)).equals(data));
    });
    it('reads every zstd frame', async () => {
      const multi = Buffer.concat([zstdCompress(data.subarray(0, 123_457)), zstdCompress(data.subarray(123_457))]);
      assert.ok((await run(make(), 'zstd', multi)).equals(data));
    });
    // gzip's CRC catches any flipped byte; zstd frames carry no checksum by
    // default, so only structural damage is the codec's to catch (diff_id catches the rest).
    it('fails corrupt gzip and structurally broken zstd with INVALID_LAYER', async () => {
      const gz = Buffer.from(gzipSync(data));
      gz.fill(0xff, 20, 60);
      const zs = Buffer.from(zstdCompress(data));
      zs.fill(0xff, 0, 8);
      for (const [c, bad] of [['gzip', gz], ['zstd', zs]] as const) {
        await assert.rejects(run(make(), c, bad), (e: unknown) => e instanceof ImageTsError && e.code === 'INVALID_LAYER', c);
      }
    });
    it('reads gzip members fed one byte at a time', async () => {
      const small = data.subarray(295_000, 305_000);
      const multi = Buffer.concat([gzipSync(small.subarray(0, 3000)), gzipSync(small.subarray(3000))]);
      assert.ok((await run(make(), 'gzip', multi, 1)).equals(small));
    });
    it('reads members whose headers carry every optional field, fed one byte at a time', async () => {
      const small = data.subarray(295_000, 305_000);
      const multi = Buffer.concat([fullHeaderMember(small.subarray(0, 4000)), gzipSync(small.subarray(4000, 7000)), fullHeaderMember(small.subarray(7000))]);
      assert.ok((await run(make(), 'gzip', multi, 1)).equals(small));
      assert.ok((await run(make(), 'gzip', multi)).equals(small));
    });
    it('fails a gzip member whose CRC-32 does not match with INVALID_LAYER', async () => {
      const gz = Buffer.from(gzipSync(data));
      gz[gz.length - 8]! ^= 0x01; // the trailer's CRC-32
      await assert.rejects(run(make(), 'gzip', gz), (e: unknown) => e instanceof ImageTsError && e.code === 'INVALID_LAYER');
    });
    it('fails truncated gzip with INVALID_LAYER', async () => {
      const bytes = gzipSync(data);
      await assert.rejects(run(make(), 'gzip', bytes.subarray(0, bytes.length - 100)),
        (e: unknown) => e instanceof ImageTsError && e.code === 'INVALID_LAYER');
    });
    it('fails truncated zstd with INVALID_LAYER', async () => {
      const bytes = zstdCompress(data);
      await assert.rejects(run(make(), 'zstd', bytes.subarray(0, bytes.length - 100)),
        (e: unknown) => e instanceof ImageTsError && e.code === 'INVALID_LAYER');
    });
    it('closes quietly when its consumer goes away in the middle of a high-ratio layer', { skip: unbounded }, async () => {
      for (const c of ['gzip', 'zstd'] as const) {
        const dec = make().create(c);
        const errors: unknown[] = [];
        dec.on('error', (e) => errors.push(e));
        dec.end(highRatio()[c].subarray(0, 64 * 1024)); // ended: a codec process may wait for a full read
        await once(dec, 'readable');
        assert.ok(dec.read() !== null);
        dec.destroy();
        await once(dec, 'close');
        await sleep(20); // nothing fires after close
        assert.deepEqual(errors, [], c);
      }
    });
    it('decodes zstd frames with windows up to 128 MB and fails larger ones with INVALID_LAYER', async () => {
      const small = data.subarray(0, 1000);
      assert.ok((await run(make(), 'zstd', zstdFrameWithWindow(27, small))).equals(small));
      await assert.rejects(run(make(), 'zstd', zstdFrameWithWindow(28, small)),
        (e: unknown) => e instanceof ImageTsError && e.code === 'INVALID_LAYER');
    });
    for (const c of ['gzip', 'zstd'] as const) {
      it(`holds little ${c} output while nobody reads a high-ratio layer, then yields all of it`, { skip: unbounded }, async () => {
        const z = highRatio();
        const dec = make().create(c);
        try {
          const feeding = (async (): Promise<void> => {
            for (const part of split(z[c], 64 * 1024)) if (!dec.write(part)) await once(dec, 'drain');
            dec.end();
          })();
          await sleep(200); // time enough to inflate it all, for a decoder that would
          const idle = dec.readableLength;
          assert.ok(idle < BUFFERED_BOUND, `${idle} bytes buffered while nobody read`);
          const hash = createHash('sha256');
          let length = 0;
          let mostBuffered = idle;
          for await (const b of dec as AsyncIterable<Buffer>) {
            hash.update(b);
            length += b.length;
            mostBuffered = Math.max(mostBuffered, dec.readableLength);
          }
          await feeding;
          assert.ok(mostBuffered < BUFFERED_BOUND, `${mostBuffered} bytes buffered while reading`);
          assert.equal(length, z.length);
          assert.equal(hash.digest('hex'), z.sha256);
        } finally {
          dec.destroy();
        }
      });
    }
    it('gives a slow consumer the exact bytes of every gzip member and zstd frame, holding little', async () => {
      const { want, gzip, zstd } = mixed();
      for (const [c, input] of [['gzip', gzip], ['zstd', zstd]] as const) {
        // An odd input size puts member, frame and block boundaries anywhere in a write.
        const got = await readSlowly(make().create(c), input, 65_521);
        assert.deepEqual({ sha256: got.sha256, length: got.length }, want, c);
        if (!unbounded) assert.ok(got.mostBuffered < BUFFERED_BOUND, `${c}: ${got.mostBuffered} bytes buffered`);
      }
    });
  });
}
