/**
 * The dm-verity hash files writeVerityTree makes, held against the real
 * veritysetup (Debian cryptsetup-bin): it must accept them, make the same
 * bytes from the same salt and uuid, and refuse them once a byte of the data
 * or of the tree changes. A missing veritysetup fails these tests.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { veritysetupVerify, writeVerityTree, type VerityParams } from '../../src/adapters/outbound/erofs/verity.js';
import { ImageTsError } from '../../src/domain/errors.js';
import { pseudoRandomBytes } from '../helpers/seeded-random.js';

const BLOCK = 4096;

/** veritysetup is in /usr/sbin, which a non-root PATH may lack. */
const env = { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` };

let tmp: string;
before(async () => {
  try {
    execFileSync('veritysetup', ['--version'], { env });
  } catch (err) {
    throw new Error('veritysetup is missing: these tests need it (apt-get install cryptsetup-bin; scripts/ensure-deps.sh installs it)', { cause: err });
  }
  tmp = await mkdtemp(join(tmpdir(), 'image-ts-verity-'));
});
after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const code = (c: string) => (e: unknown) => e instanceof ImageTsError && e.code === c;

/** What `veritysetup format` makes of `data` with our salt and uuid: its root hash, and its hash file's bytes. */
function veritysetupFormat(data: string, params: VerityParams): { rootHash: string; hashFile: Buffer } {
  const out = join(tmp, 'reference.hash');
  rmSync(out, { force: true }); // veritysetup writes into an existing file without truncating it
  const stdout = execFileSync('veritysetup', ['format', data, out, `--salt=${params.salt || '-'}`, `--uuid=${params.uuid}`], { encoding: 'utf8', env });
  const rootHash = /^Root hash:\s*([0-9a-f]+)$/m.exec(stdout)?.[1];
  assert.ok(rootHash, `no root hash in veritysetup's output:\n${stdout}`);
  const hashFile = readFileSync(out);
  return { rootHash, hashFile };
}

/** XORs one byte of a file, runs `check`, then puts the byte back. */
async function withFlippedByte(path: string, at: number, check: () => Promise<void>): Promise<void> {
  const fh = await open(path, 'r+');
  const one = Buffer.alloc(1);
  try {
    await fh.read(one, 0, 1, at);
    await fh.write(Buffer.from([one[0]! ^ 0x01]), 0, 1, at);
    await check();
  } finally {
    await fh.write(one, 0, 1, at);
    await fh.close();
  }
}

/** Hash blocks at each level, bottom first, as the format defines them. */
function levelSizes(blocks: number): number[] {
  const sizes: number[] = [];
  for (let n = blocks; n > 1;) sizes.push((n = Math.ceil(n / 128)));
  return sizes;
}

describe('dm-verity hash trees (writeVerityTree), held against veritysetup', () => {
  // 1: no levels, the root is the block's digest. 127/128: one hash block, part full and full.
  // 129: two blocks at the bottom. 128*128: two levels, both full. 128*128+1: three levels.
  for (const [seed, blocks] of [1, 127, 128, 129, 128 * 128, 128 * 128 + 1].entries()) {
    it(`${blocks} data block${blocks === 1 ? '' : 's'}: veritysetup accepts the tree, makes the same bytes, and refuses a flipped byte`, async () => {
      const data = join(tmp, `data-${blocks}`);
      const hash = join(tmp, `hash-${blocks}`);
      writeFileSync(data, pseudoRandomBytes(seed + 1, blocks * BLOCK));
      const salt = pseudoRandomBytes(seed + 100, 32);
      const uuid = pseudoRandomBytes(seed + 200, 16);

      const params = await writeVerityTree(data, hash, { salt, uuid });
      assert.equal(params.dataBlocks, blocks);
      assert.equal(params.salt, salt.toString('hex'));
      assert.match(params.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.equal(params.uuid.replaceAll('-', ''), uuid.toString('hex'));
      assert.equal(params.hashOffset, BLOCK);
      assert.deepEqual(JSON.parse(JSON.stringify(params)), params, 'layer.json keeps it as it is');
      const sizes = levelSizes(blocks);
      const hashFile = readFileSync(hash);
      assert.equal(hashFile.length, BLOCK * (1 + sizes.reduce((a, b) => a + b, 0)));

      assert.equal(await veritysetupVerify(data, hash, params.rootHash), true);
      const reference = veritysetupFormat(data, params);
      assert.equal(params.rootHash, reference.rootHash);
      assert.ok(hashFile.equals(reference.hashFile), 'the hash file is byte for byte what veritysetup format writes');

      const dataAt = (blocks >> 1) * BLOCK + 1234;
      await withFlippedByte(data, dataAt, async () => assert.equal(await veritysetupVerify(data, hash, params.rootHash), false, 'flipped data byte'));
      if (sizes.length === 0) {
        // No tree to corrupt: the superblock's salt is what the root hash still depends on.
        await withFlippedByte(hash, 88, async () => assert.equal(await veritysetupVerify(data, hash, params.rootHash), false, 'flipped salt byte'));
      } else {
        const bottomLevel = hashFile.length - sizes[0]! * BLOCK;
        await withFlippedByte(hash, bottomLevel + 5, async () => assert.equal(await veritysetupVerify(data, hash, params.rootHash), false, 'flipped digest of data block 0'));
        await withFlippedByte(hash, BLOCK + 31, async () => assert.equal(await veritysetupVerify(data, hash, params.rootHash), false, 'flipped digest in the top level'));
      }
      assert.equal(await veritysetupVerify(data, hash, params.rootHash), true, 'whole again');
      assert.equal(await veritysetupVerify(data, hash, '00'.repeat(32)), false, 'another root hash');
    });
  }

  it('an empty salt, and a salt of the most the superblock holds (256 bytes)', async () => {
    const data = join(tmp, 'data-salts');
    writeFileSync(data, pseudoRandomBytes(7, 300 * BLOCK));
    for (const salt of [Buffer.alloc(0), pseudoRandomBytes(8, 256)]) {
      const hash = join(tmp, `hash-salt-${salt.length}`);
      const params = await writeVerityTree(data, hash, { salt, uuid: pseudoRandomBytes(9, 16) });
      assert.equal(await veritysetupVerify(data, hash, params.rootHash), true);
      const reference = veritysetupFormat(data, params);
      assert.equal(params.rootHash, reference.rootHash);
      assert.ok(readFileSync(hash).equals(reference.hashFile));
    }
  });

  it('refuses data that is not a whole, non-zero number of 4096-byte blocks (INVALID_ARGUMENT), and writes no hash file', async () => {
    // veritysetup format refuses empty data too ("device is too small"): a verity device of no blocks has nothing to verify.
    for (const size of [0, 1, 4095, 4097, 3 * BLOCK - 512]) {
      const data = join(tmp, `data-odd-${size}`);
      const hash = join(tmp, `hash-odd-${size}`);
      writeFileSync(data, Buffer.alloc(size, 0x5a));
      await assert.rejects(writeVerityTree(data, hash, { salt: Buffer.alloc(32), uuid: Buffer.alloc(16) }), code('INVALID_ARGUMENT'), `${size} bytes`);
      assert.equal(existsSync(hash), false);
    }
  });

  it('refuses a salt over 256 bytes, a uuid that is not 16 bytes, and a root hash that is not 64 hex digits', async () => {
    const data = join(tmp, 'data-args');
    writeFileSync(data, Buffer.alloc(BLOCK));
    const hash = join(tmp, 'hash-args');
    await assert.rejects(writeVerityTree(data, hash, { salt: Buffer.alloc(257), uuid: Buffer.alloc(16) }), code('INVALID_ARGUMENT'));
    await assert.rejects(writeVerityTree(data, hash, { salt: Buffer.alloc(32), uuid: Buffer.alloc(15) }), code('INVALID_ARGUMENT'));
    await assert.rejects(veritysetupVerify(data, hash, 'ab'.repeat(31)), code('INVALID_ARGUMENT'));
    await assert.rejects(veritysetupVerify(data, hash, '--help'.padEnd(64, '0')), code('INVALID_ARGUMENT'));
  });

  it('files that cannot be read or written are IO; a hash file that is missing is not a failed verification', async () => {
    const data = join(tmp, 'data-args');
    writeFileSync(data, Buffer.alloc(BLOCK));
    await assert.rejects(writeVerityTree(join(tmp, 'no-such-data'), join(tmp, 'hash-io'), { salt: Buffer.alloc(32), uuid: Buffer.alloc(16) }), code('IO'));
    await assert.rejects(writeVerityTree(data, join(tmp, 'no-such-dir', 'hash'), { salt: Buffer.alloc(32), uuid: Buffer.alloc(16) }), code('IO'));
    await assert.rejects(veritysetupVerify(data, join(tmp, 'no-such-hash-file'), '00'.repeat(32)), code('IO'));
  });

  it('256 MiB of data: memory stays flat (the data is streamed, never held), and veritysetup accepts the tree', async (t) => {
    const data = join(tmp, 'data-sparse');
    const hash = join(tmp, 'hash-sparse');
    writeFileSync(data, '');
    await truncate(data, 256 * 1024 * 1024); // sparse: reads as zeros without taking disk
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 2);
    const started = performance.now();
    let params: VerityParams;
    try {
      params = await writeVerityTree(data, hash, { salt: pseudoRandomBytes(10, 32), uuid: pseudoRandomBytes(11, 16) });
    } finally {
      clearInterval(sampler);
    }
    const ms = performance.now() - started;
    const grewMB = (peak - baseline) / 1024 / 1024;
    assert.ok(grewMB < 64, `resident memory grew by ${grewMB.toFixed(1)} MB while hashing 256 MiB`);
    assert.equal(params.dataBlocks, 65_536);
    assert.equal(await veritysetupVerify(data, hash, params.rootHash), true);
    t.diagnostic(`256 MiB: tree built in ${Math.round(ms)} ms, resident memory +${grewMB.toFixed(1)} MB at peak`);
  });
});
