/**
 * dm-verity hash trees for the store's EROFS layer images, written here so
 * that making a layer needs no `veritysetup format` (only tests and checks
 * run veritysetup). The hash file is what `veritysetup format` makes with
 * its defaults:
 *
 *   block 0        the verity superblock (512 bytes, zero-padded to 4096)
 *   blocks 1..     the tree, top level first, the level over the data last
 *
 * Format (hash type) 1: every block's digest is sha256(salt || block); a
 * level is its digests, 32 bytes apiece, 128 to a hash block, its last block
 * zero-padded; the level above hashes that level's blocks; the top level is
 * one block and the root hash is its digest. Data of one block has no levels:
 * the root hash is that block's digest and the hash file is the superblock.
 *
 * The data is read once, in order. Each level keeps one hash block being
 * filled, passes it up when full and writes it in place, so memory is a few
 * read buffers whatever the data's size.
 */
import { hash as oneShotHash } from 'node:crypto';
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { asImageTsError, ImageTsError, InvalidArgumentError, UnsupportedError } from '../../../domain/errors.js';
import { findProgram } from './mkfs-erofs.js';
import { lazyRequire } from '../lazy.js';

const childProcess = lazyRequire<typeof import('node:child_process')>('node:child_process');

/** What opens a layer's verity device: kept in layer.json, and all a dm-verity table needs beside the two paths. */
export interface VerityParams {
  /** dm-verity format: 1 prepends the salt and pads digests to a power of two. */
  readonly hashType: 1;
  readonly hashAlgorithm: 'sha256';
  readonly dataBlockSize: 4096;
  readonly hashBlockSize: 4096;
  /** The data's size in 4096-byte blocks. */
  readonly dataBlocks: number;
  /** Hex; may be empty. */
  readonly salt: string;
  /** Hex: the digest of the tree's top block (of the data block, for one-block data). */
  readonly rootHash: string;
  /** Bytes from the start of the hash file to the tree, past the superblock's block. The dm table's hash_start_block is this / hashBlockSize. */
  readonly hashOffset: number;
  /** The superblock's uuid, as veritysetup prints it (8-4-4-4-12 lowercase hex). */
  readonly uuid: string;
}

const BLOCK = 4096;
const DIGEST = 32;
const PER_BLOCK = BLOCK / DIGEST; // 128: sha256 digests are already a power of two long
/** The superblock's salt field. */
const MAX_SALT = 256;
/** Data read per call: 256 blocks. Two such buffers are in use at once (one read ahead). */
const READ_CHUNK = 256 * BLOCK;
/** Finished hash blocks of one level held back to go out in one write. */
const WRITE_BATCH = 64;

/** The number of hash blocks at each level, bottom first: none for one data block. */
function levelSizes(dataBlocks: number): number[] {
  const sizes: number[] = [];
  for (let n = dataBlocks; n > 1;) {
    n = Math.ceil(n / PER_BLOCK);
    sizes.push(n);
  }
  return sizes;
}

/** The 512-byte superblock veritysetup writes (little-endian, fields at fixed offsets), in a zeroed 4096-byte block. */
function superblock(dataBlocks: number, salt: Buffer, uuid: Buffer): Buffer {
  const sb = Buffer.alloc(BLOCK);
  sb.write('verity', 0, 'latin1'); // then two NULs
  sb.writeUInt32LE(1, 8); // superblock version
  sb.writeUInt32LE(1, 12); // hash type
  uuid.copy(sb, 16);
  sb.write('sha256', 32, 'latin1'); // NUL-padded to 32 bytes
  sb.writeUInt32LE(BLOCK, 64); // data block size
  sb.writeUInt32LE(BLOCK, 68); // hash block size
  sb.writeBigUInt64LE(BigInt(dataBlocks), 72);
  sb.writeUInt16LE(salt.length, 80);
  salt.copy(sb, 88); // after 6 bytes of padding; 256 bytes of salt and 168 of padding follow
  return sb;
}

function formatUuid(uuid: Buffer): string {
  const hex = uuid.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** One level of the tree while it is built: the block being filled, and finished blocks not yet written. */
interface Level {
  readonly firstBlock: number; // in the hash file, in blocks
  readonly blocks: number;
  block: Buffer;
  filled: number; // digests in `block`
  done: number; // finished blocks, written or not
  unwritten: Buffer[];
}

class TreeBuilder {
  private readonly levels: Level[];
  private root: Buffer | undefined;
  /** salt || block, hashed in one call: a tenth less CPU than copying a salted Hash for each block (node's per-call cost, not sha256, dominates). */
  private readonly scratch: Buffer;

  constructor(private readonly salt: Buffer, sizes: readonly number[]) {
    this.scratch = Buffer.alloc(salt.length + BLOCK);
    salt.copy(this.scratch);
    // Top level first in the file, right after the superblock's block.
    let at = 1 + sizes.reduce((a, b) => a + b, 0);
    this.levels = sizes.map((blocks) => {
      at -= blocks;
      return { firstBlock: at, blocks, block: Buffer.alloc(BLOCK), filled: 0, done: 0, unwritten: [] };
    });
  }

  private digest(block: Buffer): Buffer {
    block.copy(this.scratch, this.salt.length);
    return oneShotHash('sha256', this.scratch, 'buffer');
  }

  /** Hashes data blocks (whole ones) into the bottom level. */
  addData(data: Buffer): void {
    for (let at = 0; at < data.length; at += BLOCK) {
      const d = this.digest(data.subarray(at, at + BLOCK));
      if (this.levels.length === 0) this.root = d;
      else this.add(0, d);
    }
  }

  private add(level: number, digest: Buffer): void {
    const l = this.levels[level]!;
    digest.copy(l.block, l.filled * DIGEST);
    if (++l.filled === PER_BLOCK) this.finish(level);
  }

  private finish(level: number): void {
    const l = this.levels[level]!;
    const block = l.block;
    l.unwritten.push(block);
    l.done++;
    l.block = Buffer.alloc(BLOCK);
    l.filled = 0;
    const d = this.digest(block);
    if (level + 1 === this.levels.length) this.root = d;
    else this.add(level + 1, d);
  }

  /** Writes the finished blocks of levels that have a batch of them, or of every level. */
  async flush(fh: FileHandle, all: boolean): Promise<void> {
    for (const l of this.levels) {
      if (l.unwritten.length === 0 || (!all && l.unwritten.length < WRITE_BATCH)) continue;
      const blocks = l.unwritten;
      l.unwritten = [];
      const first = l.firstBlock + l.done - blocks.length;
      const bytes = blocks.length * BLOCK;
      const { bytesWritten } = await fh.writev(blocks, first * BLOCK);
      if (bytesWritten !== bytes) throw new ImageTsError('IO', `short write to the verity hash file (${bytesWritten} of ${bytes} bytes)`);
    }
  }

  /** Pads and finishes each level's last block, bottom up; then the root hash. */
  end(): Buffer {
    this.levels.forEach((l, i) => {
      if (l.filled > 0) this.finish(i);
      if (l.done !== l.blocks) throw new ImageTsError('INTERNAL', `verity level ${i}: ${l.done} hash blocks made, ${l.blocks} expected`);
    });
    if (!this.root) throw new ImageTsError('INTERNAL', 'verity tree has no root');
    return this.root;
  }
}

/** Reads up to `length` bytes at `position`, retrying short reads; fewer only at the end of the file. */
async function readFully(fh: FileHandle, buffer: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buffer, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/**
 * Writes the dm-verity hash file of `dataPath` (a whole number of 4096-byte
 * blocks, at least one) to `hashPath`, replacing it. `salt` (at most 256
 * bytes) and `uuid` (16 bytes) come from the caller, who owns randomness. The
 * superblock goes in last, so a hash file left by a failure that could not
 * be removed never reads as a verity device. The file is not fsynced, as
 * no file of a layer is (see FsLayerStore).
 */
export async function writeVerityTree(dataPath: string, hashPath: string, options: { salt: Buffer; uuid: Buffer }): Promise<VerityParams> {
  return buildTree(dataPath, hashPath, options).catch((err: unknown) => {
    throw asImageTsError(err); // a missing file, a full disk: IO, NO_SPACE
  });
}

async function buildTree(dataPath: string, hashPath: string, options: { salt: Buffer; uuid: Buffer }): Promise<VerityParams> {
  const salt = Buffer.from(options.salt); // ours: the caller's buffer may change while we await
  const { uuid } = options;
  if (salt.length > MAX_SALT) throw new InvalidArgumentError(`verity salt is ${salt.length} bytes; at most ${MAX_SALT} fit the superblock`);
  if (uuid.length !== 16) throw new InvalidArgumentError(`verity uuid is ${uuid.length} bytes, not 16`);
  const size = (await stat(dataPath)).size;
  if (size === 0 || size % BLOCK !== 0) {
    throw new InvalidArgumentError(`verity data ${dataPath} is ${size} bytes, not a whole, non-zero number of ${BLOCK}-byte blocks`);
  }
  const dataBlocks = size / BLOCK;
  const tree = new TreeBuilder(salt, levelSizes(dataBlocks));

  const data = await open(dataPath, 'r');
  let hash: FileHandle | undefined;
  let reading: Promise<number> | undefined;
  try {
    hash = await open(hashPath, 'w');
    const buffers = [Buffer.allocUnsafe(READ_CHUNK), Buffer.allocUnsafe(READ_CHUNK)] as const;
    const lengthAt = (pos: number): number => Math.min(READ_CHUNK, size - pos);
    let pos = 0;
    let turn = 0;
    reading = readFully(data, buffers[0], lengthAt(0), 0);
    while (pos < size) {
      const want = lengthAt(pos);
      const got = await reading;
      if (got !== want) throw new ImageTsError('IO', `verity data ${dataPath} shrank while it was hashed (${pos + got} of ${size} bytes)`);
      const current = buffers[turn]!;
      pos += got;
      turn ^= 1;
      // The next read runs while this chunk is hashed.
      if (pos < size) reading = readFully(data, buffers[turn]!, lengthAt(pos), pos);
      tree.addData(current.subarray(0, got));
      await tree.flush(hash, false);
    }
    const root = tree.end();
    await tree.flush(hash, true);
    const { bytesWritten } = await hash.write(superblock(dataBlocks, salt, uuid), 0, BLOCK, 0);
    if (bytesWritten !== BLOCK) throw new ImageTsError('IO', 'short write of the verity superblock');
    await hash.close();
    hash = undefined;
    return {
      hashType: 1,
      hashAlgorithm: 'sha256',
      dataBlockSize: BLOCK,
      hashBlockSize: BLOCK,
      dataBlocks,
      salt: salt.toString('hex'),
      rootHash: root.toString('hex'),
      hashOffset: BLOCK,
      uuid: formatUuid(uuid),
    };
  } catch (err) {
    await reading?.catch(() => 0); // a read ahead still in flight must end before its handle closes
    if (hash) {
      await hash.close().catch(() => undefined);
      await unlink(hashPath).catch(() => undefined);
    }
    throw err;
  } finally {
    await data.close();
  }
}

/**
 * `veritysetup verify` of a hash file with its superblock: true when the
 * data, the whole tree (the zero padding included) and the root hash agree.
 * False for every way they can disagree, which veritysetup reports with exit
 * status 1 (root hash mismatch, unreadable superblock, short file) or 2 (a
 * digest or padding mismatch). UNSUPPORTED without veritysetup (Debian's
 * cryptsetup-bin); IO for a data or hash file it cannot open.
 */
export async function veritysetupVerify(dataPath: string, hashPath: string, rootHash: string): Promise<boolean> {
  if (!/^[0-9a-fA-F]{64}$/.test(rootHash)) throw new InvalidArgumentError(`verity root hash ${JSON.stringify(rootHash)} is not 64 hex digits`);
  const command = findProgram('veritysetup');
  if (!command) throw new UnsupportedError('veritysetup is not installed (Debian package cryptsetup-bin)');
  // Absolute paths: a relative one starting with '-' would read as an option.
  const args = ['verify', resolve(dataPath), resolve(hashPath), rootHash];
  return new Promise((done, fail) => {
    childProcess().execFile(command, args, { encoding: 'utf8' }, (err, _stdout, stderr) => {
      if (!err) return done(true);
      const why = stderr.trim().split('\n').pop() || err.message;
      if (err.code === 1 || err.code === 2) return done(false);
      if (err.code === 'ENOENT') return fail(new UnsupportedError(`cannot run ${command}: ${err.message}`));
      if (err.code === 4) return fail(new ImageTsError('IO', `veritysetup verify cannot use ${dataPath} or ${hashPath}: ${why}`));
      fail(new ImageTsError('IO', `veritysetup verify failed (${err.signal ? `signal ${err.signal}` : `exit status ${String(err.code)}`}): ${why}`));
    });
  });
}
