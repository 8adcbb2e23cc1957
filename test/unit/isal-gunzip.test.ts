import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { tryNativeSyscalls, type GunzipOutput, type NativeSyscalls } from '../../src/adapters/outbound/native/syscalls.js';

const native = tryNativeSyscalls();
const isal = native?.gunzipPush ? (native as Required<NativeSyscalls>) : undefined;
const skip = !isal && 'the addon was built without libisal';

function chunksOf(r: GunzipOutput): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 2; i < r.length; i += 2) out.push((r[i] as Buffer).subarray(0, r[i + 1] as number));
  return out;
}

describe('ISA-L gunzipPush (native/src/gunzip.c)', { skip }, () => {
  const plain = [randomBytes(200_000), Buffer.alloc(3 * 1024 * 1024), Buffer.concat([Buffer.alloc(500_000, 0x61), randomBytes(50_000)])];
  const expected = Buffer.concat(plain);
  const gz = Buffer.concat(plain.map((p) => gzipSync(p)));

  it('with a small maxChunks, goes on where it stopped: byte-exact output across many calls, input split at odd sizes', () => {
    const CHUNK = 4096;
    const sizes = [1, 7, 333, 4099, 65_521, 10, 2];
    const handle = isal!.gunzipOpen();
    const out: Buffer[] = [];
    let calls = 0;
    let resumedOnEmpty = 0;
    for (let at = 0, k = 0; at < gz.length; k++) {
      const piece = gz.subarray(at, at + sizes[k % sizes.length]!);
      at += piece.length;
      let rest = piece;
      for (;;) {
        const maxChunks = 1 + (calls++ % 3);
        const r = isal!.gunzipPush(handle, rest, CHUNK, maxChunks);
        const [consumed, more] = r;
        const got = chunksOf(r);
        assert.ok(got.length <= maxChunks, `${got.length} chunks for maxChunks ${maxChunks}`);
        assert.ok(consumed <= rest.length);
        // Every chunk but the last is full; a short one means isal had no more to give.
        for (const b of got.slice(0, -1)) assert.equal(b.length, CHUNK);
        if (more) assert.equal(got.length, maxChunks);
        else assert.equal(consumed, rest.length, 'without more, the input is consumed in full');
        if (rest.length === 0) resumedOnEmpty++;
        out.push(...got);
        rest = rest.subarray(consumed);
        if (!more && rest.length === 0) break;
      }
    }
    isal!.gunzipEnd(handle);
    assert.ok(resumedOnEmpty > 0, 'an empty push went on with pending output');
    assert.ok(Buffer.concat(out).equals(expected));
  });

  it('without maxChunks (absent or 0), decodes all of its input in one call', () => {
    for (const maxChunks of [undefined, 0]) {
      const handle = isal!.gunzipOpen();
      const r = isal!.gunzipPush(handle, gz, 64 * 1024, maxChunks);
      assert.equal(r[0], gz.length);
      assert.equal(r[1], false);
      assert.ok(Buffer.concat(chunksOf(r)).equals(expected));
      isal!.gunzipEnd(handle);
    }
  });

  it('counts bytes after the last member, which it ignores, as consumed', () => {
    const handle = isal!.gunzipOpen();
    const input = Buffer.concat([gzipSync(plain[0]!), Buffer.from('trailing junk')]);
    const r = isal!.gunzipPush(handle, input, 64 * 1024, 1);
    const out = chunksOf(r);
    let [consumed, more] = r;
    while (more || consumed < input.length) {
      const next = isal!.gunzipPush(handle, input.subarray(consumed), 64 * 1024, 1);
      out.push(...chunksOf(next));
      consumed += next[0];
      more = next[1];
    }
    assert.equal(consumed, input.length);
    assert.ok(Buffer.concat(out).equals(plain[0]!));
    isal!.gunzipEnd(handle);
  });

  it('rejects a maxChunks that is not a number', () => {
    const handle = isal!.gunzipOpen();
    const push = isal!.gunzipPush as (...args: unknown[]) => unknown;
    assert.throws(() => push(handle, gz, 4096, '2'), { name: 'TypeError', message: 'maxChunks must be a number' });
  });
});
