import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { decodeHeader } from '../../src/adapters/outbound/layer-store/tar-header.js';
import { TarUnpacker } from '../../src/adapters/outbound/layer-store/tar-unpacker.js';
import { tar } from '../helpers/tar-writer.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'image-ts-tar-header-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Every entry below root (not root itself) with type, mode, owner, mtime, size and content hash or link target. */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(root, path);
      const st = fs.lstatSync(full);
      const what = st.isSymbolicLink() ? `-> ${fs.readlinkSync(full)}`
        : st.isFile() ? `${st.size} ${createHash('sha256').update(fs.readFileSync(full)).digest('hex').slice(0, 12)} n${st.nlink}` : '';
      out.push(`${path} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${Math.floor(st.mtimeMs / 1000)} ${what}`);
      if (st.isDirectory()) walk(path);
    }
  };
  walk('');
  return out;
}

/** A source tree with what each format can hold: long names, large ids, times before 1970. */
function makeSource(dir: string, format: string): void {
  const big = format === 'gnu' || format === 'oldgnu' || format === 'posix';
  const run = (cmd: string, ...args: string[]): void => void execFileSync(cmd, args);
  fs.mkdirSync(join(dir, 'etc'), { recursive: true });
  fs.writeFileSync(join(dir, 'etc/hostname'), 'box\n');
  fs.writeFileSync(join(dir, 'empty'), '');
  fs.writeFileSync(join(dir, 'big'), Buffer.alloc(70_000, 'z'));
  fs.writeFileSync(join(dir, 'su'), '#!/bin/true\n');
  run('chown', '1234:5678', join(dir, 'su'));
  fs.chmodSync(join(dir, 'su'), 0o4755); // after chown, which clears setuid
  fs.utimesSync(join(dir, 'su'), 1_600_000_000, 1_600_000_000);
  fs.symlinkSync('etc/hostname', join(dir, 'link'));
  fs.linkSync(join(dir, 'etc/hostname'), join(dir, 'hard'));
  fs.mkdirSync(join(dir, 'private'), { mode: 0o750 });
  fs.chmodSync(join(dir, 'private'), 0o750);
  if (format !== 'v7') {
    // Over 100 bytes: ustar splits it into prefix and name, GNU writes a long-name record, PAX a path record.
    const deep = join(dir, 'd'.repeat(60), 'e'.repeat(40));
    fs.mkdirSync(deep, { recursive: true });
    fs.writeFileSync(join(deep, 'f'.repeat(30)), 'deep');
  }
  if (big) {
    // Past 7 octal digits (GNU: base-256) and before 1970 (GNU: negative base-256).
    fs.writeFileSync(join(dir, 'owned'), 'x');
    run('chown', '3000000:70000', join(dir, 'owned'));
    fs.writeFileSync(join(dir, 'old'), 'y');
    run('touch', '-d', '1960-01-01T00:00:00Z', join(dir, 'old')); // node's utimes reads negative times as now
  }
}

describe('tar headers written by GNU tar unpack as GNU tar unpacks them', { skip: process.getuid?.() !== 0 && 'needs root (owners)' }, () => {
  for (const format of ['gnu', 'oldgnu', 'ustar', 'posix', 'v7']) {
    it(`--format=${format}, fed in odd-sized chunks`, async () => {
      const base = join(tmp, format);
      const src = join(base, 'src');
      fs.mkdirSync(src, { recursive: true });
      makeSource(src, format);
      const archive = join(base, 'layer.tar');
      execFileSync('tar', [`--format=${format}`, '--numeric-owner', '-cf', archive, '-C', src, '.']);
      const gnu = join(base, 'gnu');
      fs.mkdirSync(gnu);
      execFileSync('tar', ['--numeric-owner', '-xpf', archive, '-C', gnu], { stdio: 'pipe' }); // quiet: the 1960 time draws a warning
      const ours = join(base, 'ours');
      fs.mkdirSync(ours);
      const bytes = fs.readFileSync(archive);
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += 1001) chunks.push(bytes.subarray(i, i + 1001));
      await pipeline(Readable.from(chunks), new TarUnpacker({ root: ours, whiteoutFormat: 'overlay', privileged: true }));
      const expected = listing(gnu);
      assert.ok(expected.some((l) => l.startsWith('su 104755 1234:5678 1600000000')), expected.join('\n'));
      if (format === 'gnu') assert.ok(expected.some((l) => l.startsWith('old 100644 0:0 -315619200')), expected.join('\n'));
      assert.deepEqual(listing(ours), expected);
    });
  }
});

describe('tar header decoding', () => {
  /** One header block from the test tar writer, edited, with its checksum recomputed (signed: bytes over 127 count negative). */
  function block(edit: (b: Buffer) => void, signed = false): Buffer {
    const b = Buffer.from(tar([{ name: 'a', content: 'x' }]).subarray(0, 512));
    edit(b);
    b.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of b) sum += signed && byte > 127 ? byte - 256 : byte;
    b.write(`${(sum < 0 ? 0 : sum).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    return b;
  }

  it('accepts unsigned and signed checksums, and rejects a wrong one', () => {
    const raw = (b: Buffer): void => void b.fill(0xe9, 0, 1);
    assert.equal(decodeHeader(block(raw)).checksumValid, true);
    assert.equal(decodeHeader(block(raw, true)).checksumValid, true);
    const wrong = block(raw);
    wrong[148] = 0x37;
    assert.equal(decodeHeader(wrong).checksumValid, false);
  });

  it('reads octal after leading spaces, an empty field as absent, and base-256 both ways', () => {
    const h = decodeHeader(block((b) => {
      b.write('  644\0\0\0', 100, 'latin1'); // mode
      b.fill(0, 108, 116); // uid: empty
      b.fill(0, 116, 124);
      b[116] = 0x80; // gid: base-256 positive
      b[123] = 0x2a;
      b.fill(0xff, 136, 148); // mtime: base-256 -1
    }));
    assert.equal(h.mode, 0o644);
    assert.equal(h.uid, undefined);
    assert.equal(h.gid, 42);
    assert.equal(h.mtime, -1);
  });

  it('a malformed base-256 number is a bad header (INVALID_LAYER), not a number', async () => {
    const bad = block((b) => void (b[124] = 0x81));
    const root = join(tmp, 'bad');
    fs.mkdirSync(root);
    await assert.rejects(pipeline(Readable.from([bad, Buffer.alloc(1024)]), new TarUnpacker({ root, whiteoutFormat: 'overlay', privileged: false })),
      (err: { code?: string; message?: string }) => err.code === 'INVALID_LAYER' && /bad header: invalid base-256/.test(err.message ?? ''));
  });

  it('joins the ustar prefix only under the POSIX magic', () => {
    const withPrefix = (magic: string) => block((b) => {
      b.write(magic, 257, 'latin1');
      b.write('some/dir', 345, 'latin1');
    });
    assert.equal(decodeHeader(withPrefix('ustar\u000000')).path, 'some/dir/a');
    assert.equal(decodeHeader(withPrefix('ustar  \u0000')).path, 'a');
  });
});
