import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
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

/** What every Decompressor must do, whatever codec library sits behind it. */
export function decompressorContract(name: string, make: () => Decompressor): void {
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
  });
}
