/**
 * Inputs the fuzzers (fuzz/, README "Fuzzing") found to crash a parser, each
 * kept as it was found: every one must now be rejected with a typed error
 * and a stable code. The same inputs are seeds of their fuzz target
 * (fuzz/corpus/<target>/crash-*), so the smoke run replays them too.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import { TarUnpacker } from '../../src/adapters/outbound/layer-store/tar-unpacker.js';
import { ResourceUri } from '../../src/domain/encryption/resource-uri.js';
import { ImageTsError, type ErrorCode } from '../../src/domain/errors.js';
import { tar, type TarEntry } from '../helpers/tar-writer.js';

const code = (c: ErrorCode) => (e: unknown): boolean => e instanceof ImageTsError && e.code === c;
const isRoot = process.getuid?.() === 0;
const tmp = mkdtempSync(join(tmpdir(), 'image-ts-fuzz-findings-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;

async function unpack(bytes: Buffer, privileged: boolean): Promise<void> {
  const root = mkdtempSync(join(tmp, `root-${seq++}-`));
  await pipeline(Readable.from([bytes]), new TarUnpacker({ root, whiteoutFormat: 'marker', privileged }));
}

/** A one-entry tar whose header field at `off` holds `field` (the checksum made right again). */
function withHeaderField(entry: TarEntry, off: number, field: Buffer): Buffer {
  const t = tar([entry]);
  field.copy(t, off);
  let sum = 8 * 0x20;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += t[i]!;
  t.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return t;
}

describe('fuzz findings', () => {
  it('key-provider: a resource URI with a malformed percent-escape is INVALID_ARGUMENT, not a URIError', () => {
    const found = Buffer.from('a2JzOi8vZXhhbXBscHJvdG90eXBlMC9va2JzKzovLy90eXBljXNpYS9ib24lPTIyRmM=', 'base64').toString('utf8');
    assert.throws(() => ResourceUri.parse(found), code('INVALID_ARGUMENT'));
    assert.throws(() => ResourceUri.parse('kbs:///default/key/%E0%A4%A'), code('INVALID_ARGUMENT'));
  });

  it('tar-privileged: an owner id chown cannot take is INVALID_LAYER, not a RangeError (nor a silently truncated id)', { skip: !isRoot && 'privileged unpacks need root' }, async () => {
    // As found: a directory whose base-256 uid is negative (0xff...); lchown threw a RangeError, reported as IO.
    const found = readFileSync(new URL('../../fuzz/corpus/tar-privileged/crash-negative-uid', import.meta.url));
    for (const privileged of [true, false]) await assert.rejects(unpack(found, privileged), code('INVALID_LAYER'), `privileged ${privileged}`);
    const base256 = (n: bigint): Buffer => {
      const b = Buffer.alloc(8);
      b.writeBigInt64BE(n);
      b[0]! |= 0x80; // the base-256 marker bit (0xff for a negative number)
      return b;
    };
    const cases: Record<string, Buffer> = {
      'negative base-256 uid on a file': withHeaderField({ name: 'f', content: 'x' }, 108, base256(-2n)),
      'base-256 gid of 2^32': withHeaderField({ name: 'f', content: 'x' }, 116, base256(2n ** 32n)),
      // (uid_t)-1 means "leave the owner as it is" to chown(2).
      'PAX uid 2^32-1': tar([{ name: 'f', content: 'x', pax: { uid: String(2 ** 32 - 1) } }]),
      'PAX gid 2^32 on a directory': tar([{ name: 'd/', type: 'dir', pax: { gid: String(2 ** 32) } }]),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      for (const privileged of [true, false]) await assert.rejects(unpack(bytes, privileged), code('INVALID_LAYER'), `${name}, privileged ${privileged}`);
    }
    await unpack(tar([{ name: 'f', content: 'x', pax: { uid: String(2 ** 32 - 2), gid: '0' } }]), true); // the largest id chown takes
  });

  it('tar: a device number that is not a number is INVALID_LAYER, not a TarHeaderError (INTERNAL)', async () => {
    // As found: a fifo (made even unprivileged) whose devmajor field starts 0x81, neither octal nor base-256.
    await assert.rejects(unpack(readFileSync(new URL('../../fuzz/corpus/tar/crash-bad-devmajor', import.meta.url)), false), code('INVALID_LAYER'));
    for (const off of [329, 337]) {
      await assert.rejects(unpack(withHeaderField({ name: 'p', type: 'fifo' }, off, Buffer.from([0x81, 0, 0, 0, 0, 0, 0, 1])), false), code('INVALID_LAYER'), `field at ${off}`);
    }
  });

  it('tar: a symlink target with a NUL byte is UNSAFE_LAYER, as a path with one is, not a TypeError', async () => {
    // As found: a PAX linkpath of 't'... with \x01\x00 inside; symlink(2) cannot take it.
    await assert.rejects(unpack(readFileSync(new URL('../../fuzz/corpus/tar/crash-nul-symlink-target', import.meta.url)), false), code('UNSAFE_LAYER'));
    await assert.rejects(unpack(tar([{ name: 'l', type: 'symlink', linkname: 'x', pax: { linkpath: 'a\0b' } }]), false), code('UNSAFE_LAYER'));
  });

  it('tar: PAX numbers are decimal, as archive/tar in Go reads them; a time the kernel cannot take is INVALID_LAYER, not an IO error', async () => {
    const rejected: Record<string, string>[] = [
      { mtime: '1e300' }, { atime: '1e300' }, { mtime: '-1e300' }, { mtime: '0x10' }, { mtime: ' 12' }, { mtime: '12 ' }, { mtime: `${2 ** 63}` },
      { size: '0x1' }, { uid: '1e3' }, { gid: '+' },
    ];
    for (const pax of rejected) {
      for (const content of ['x', 'y'.repeat(600 * 1024)]) { // one native call, and node's fs for a body over several chunks
        await assert.rejects(unpack(tar([{ name: 'f', content, pax }]), false), code('INVALID_LAYER'), JSON.stringify(pax));
      }
    }
    await unpack(tar([{ name: 'f', content: 'x', pax: { mtime: '1600000000.123456789', atime: '-1.5', uid: '+7' } }]), false);
  });

  it('tar: a number of an old GNU sparse map that is not one (bad base-256, past 2^53, negative) is INVALID_LAYER, not a TarHeaderError (INTERNAL)', async () => {
    // As found (2026-12-03, after the sparse support merged): the map's fields were read without the header's error mapping.
    for (const name of ['crash-old-gnu-sparse-map-number', 'crash-old-gnu-sparse-map-number-2']) {
      await assert.rejects(unpack(readFileSync(new URL(`../../fuzz/corpus/tar/${name}`, import.meta.url)), false), code('INVALID_LAYER'), name);
    }
    /** An old GNU 'S' entry of 3 stored bytes: one region at `offset`, `length` long, real size `realSize`; each field raw. */
    const sparse = (offset: Buffer, length: Buffer, realSize: Buffer): Buffer => {
      const t = withHeaderField({ name: 's', content: 'abc' }, 156, Buffer.from('S'));
      return withHeaderField({ name: 's', content: 'abc' }, 0, Buffer.concat([t.subarray(0, 386), offset, length, t.subarray(410, 483), realSize, t.subarray(495, 512)]).subarray(0, 512));
    };
    const octal = (n: number): Buffer => Buffer.from(`${n.toString(8).padStart(11, '0')}\0`, 'latin1');
    const raw = (...bytes: number[]): Buffer => Buffer.concat([Buffer.from(bytes), Buffer.alloc(12 - bytes.length)]);
    await unpack(sparse(octal(4), octal(3), octal(8)), false); // the well-formed one unpacks
    const bad: Record<string, Buffer> = {
      'offset with a base-256 marker other than 0x80 or 0xff': sparse(raw(0x81, 1), octal(3), octal(8)),
      'length past 2^53': sparse(octal(4), Buffer.from([0x80, ...Array<number>(11).fill(0xff)]), octal(8)),
      'negative real size': sparse(octal(4), octal(3), Buffer.alloc(12, 0xff)),
    };
    for (const [what, bytes] of Object.entries(bad)) await assert.rejects(unpack(bytes, false), code('INVALID_LAYER'), what);
  });
});
