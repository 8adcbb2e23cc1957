import { execFileSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchImage } from './images.js';
import { measure } from './measure.js';

export interface MachineLimits {
  /** Output MB/s of one decompressor process over the image's layers. */
  readonly gzipDecompressMBps: number;
  /** The best of LIMIT_TRIES, as the 2-core limit's decoder: one try swung 287–459 MB/s under other load. */
  readonly igzipDecompressMBps: number | undefined;
  readonly zstdDecompressMBps: number | undefined;
  /** Input MB/s of sha256sum over the compressed blobs (coreutils: no SHA extensions). */
  readonly sha256MBps: number;
  /**
   * openssl speed sha256, 16 KiB blocks, one core: OpenSSL is what node's
   * crypto, and so image-ts, hashes with, using the CPU's SHA extensions where
   * it has them (sha256sum does not, and a pipe into `openssl dgst` measures
   * its 8 KiB reads more than the hash).
   */
  readonly sha256OpensslMBps: number;
  /** openssl speed, 16 KiB blocks, one core. */
  readonly aes256CtrMBps: number;
  /**
   * Seconds GNU tar takes to make the gzip image's files from its layer tars,
   * already uncompressed on tmpfs, into a directory on tmpfs, layer after layer:
   * creating the files alone, with no decoding and no hashing, on one core.
   * The best of LIMIT_TRIES.
   */
  readonly createFilesSeconds: number;
}

const MB = 1e6;
/** Tries of the 2-core limit's own parts (igzip, file creation), of which the fastest counts: other load only ever adds time. */
const LIMIT_TRIES = 3;

async function seconds(script: string): Promise<number> {
  const m = await measure('sh', ['-c', script]);
  if (m.exitCode !== 0) throw new Error(`limits: ${script} failed: ${m.stderrTail}`);
  return m.wallMs / 1000;
}

/** MB/s of SCRIPT over BYTES, the best of TRIES runs. */
async function throughput(script: string, bytes: number, tries = 1): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < tries; i++) best = Math.min(best, await seconds(script));
  return bytes / MB / best;
}

const blobs = (image: BenchImage): string[] => image.layers.map((l) => join(image.layout, 'blobs', 'sha256', l.digest.slice(7)));

/** `openssl speed` of one EVP algorithm, 16 KiB blocks, 2 s, one core, in MB/s. */
function opensslSpeedMBps(alg: 'sha256' | 'aes-256-ctr'): number {
  const text = execFileSync('openssl', ['speed', '-evp', alg, '-seconds', '2', '-bytes', '16384'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  // The result row ends with the rate in kB/s for the one block size asked for, e.g. "aes-256-ctr  4567890.12k".
  const row = text.split('\n').find((l) => l.toLowerCase().startsWith(alg));
  const k = row ? Number(/([\d.]+)k\s*$/.exec(row.trim())?.[1]) : NaN;
  return (k * 1000) / MB;
}

/**
 * GNU tar -x of the image's layer tars from tmpfs into tmpfs, timed; the tars
 * are decoded beforehand (not timed) into SCRATCH, which is removed after.
 */
async function createFilesSeconds(image: BenchImage, scratch: string, decoder: string): Promise<number> {
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  try {
    const tars = blobs(image).map((blob, i) => {
      const tar = join(scratch, `layer-${i}.tar`);
      execFileSync('sh', ['-c', `${decoder} -dc < ${blob} > ${tar}`]);
      return tar;
    });
    let best = Infinity;
    for (let i = 0; i < LIMIT_TRIES; i++) {
      await rm(join(scratch, 'rootfs'), { recursive: true, force: true });
      await mkdir(join(scratch, 'rootfs'));
      best = Math.min(best, await seconds(tars.map((t) => `tar -xf ${t} -C ${join(scratch, 'rootfs')}`).join(' && ')));
    }
    return best;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * What one core of this machine can do, measured in the same run as the pulls.
 * SCRATCH is a directory on the bench's tmpfs that the file-creation measure may use.
 */
export async function machineLimits(gzipImage: BenchImage, zstdImage: BenchImage | undefined, scratch: string): Promise<MachineLimits> {
  const gz = blobs(gzipImage).join(' ');
  const compressed = gzipImage.layers.reduce((n, l) => n + l.size, 0);
  const hasIgzip = (() => {
    try {
      execFileSync('sh', ['-c', 'command -v igzip']);
      return true;
    } catch {
      return false;
    }
  })();
  return {
    gzipDecompressMBps: await throughput(`cat ${gz} | gzip -dc > /dev/null`, gzipImage.uncompressedBytes),
    igzipDecompressMBps: hasIgzip ? await throughput(`cat ${gz} | igzip -dc > /dev/null`, gzipImage.uncompressedBytes, LIMIT_TRIES) : undefined,
    zstdDecompressMBps: zstdImage ? await throughput(`cat ${blobs(zstdImage).join(' ')} | zstd -dc > /dev/null`, zstdImage.uncompressedBytes) : undefined,
    sha256MBps: await throughput(`cat ${gz} | sha256sum > /dev/null`, compressed),
    sha256OpensslMBps: opensslSpeedMBps('sha256'),
    aes256CtrMBps: opensslSpeedMBps('aes-256-ctr'),
    createFilesSeconds: await createFilesSeconds(gzipImage, scratch, hasIgzip ? 'igzip' : 'gzip'),
  };
}

/** The seconds a perfect 2-core pull of a gzip image would need on this machine, and what they are made of. */
export interface TwoCoreLimit {
  readonly image: string;
  readonly cores: 2;
  /** The fastest gzip decoder measured: image-ts decodes with ISA-L, as igzip does. */
  readonly decoder: 'igzip' | 'gzip';
  readonly decodeMBps: number;
  /** The fastest sha256 measured: OpenSSL where it beats coreutils (SHA extensions). */
  readonly hasher: 'openssl' | 'sha256sum';
  readonly sha256MBps: number;
  /** sha256 over the compressed bytes: the blob digest. */
  readonly hashCompressedSeconds: number;
  /** sha256 over the uncompressed bytes: the diff_id. */
  readonly hashUncompressedSeconds: number;
  readonly decodeSeconds: number;
  readonly createFilesSeconds: number;
  /** The four above, one core's work in all, spread evenly over the cores. */
  readonly spreadSeconds: number;
  /** The slowest single serial stage of any one layer: one stream's decode or one digest. */
  readonly serialSeconds: number;
  readonly limitSeconds: number;
}

/**
 * The 2-core limit of issue 16 for a gzip image. A perfect implementation
 * does four kinds of work and nothing else: decode the gzip, hash the
 * compressed bytes (blob digest) and the uncompressed bytes (diff_id), and
 * create the files. Each is timed here on one core at the best rate this
 * machine has; spread perfectly over two cores they take half their sum.
 * They cannot be spread finer than a stream, though: one gzip member decodes
 * on one core, and a sha256 runs over its stream in order, so no layer can
 * finish before its slowest such stage alone (the stages of a layer can
 * pipeline, so that slowest stage, not their sum, is the chain). Creating
 * files is not counted as serial: a layer's files could be made from two
 * threads. Left out as well: receiving the bytes from the registry, process
 * start-up and the metadata writes, which is what the 1.25× slack is for.
 *
 *   limit = max((compressed/sha + uncompressed/sha + uncompressed/decode + create) / 2,
 *               max over layers of max(uncompressed_l/decode, uncompressed_l/sha, compressed_l/sha))
 */
export function twoCoreLimit(image: BenchImage, limits: MachineLimits): TwoCoreLimit {
  const igzip = limits.igzipDecompressMBps;
  const decoder = igzip !== undefined && igzip > limits.gzipDecompressMBps ? 'igzip' : 'gzip';
  const decodeMBps = decoder === 'igzip' ? igzip! : limits.gzipDecompressMBps;
  const hasher = limits.sha256OpensslMBps > limits.sha256MBps ? 'openssl' : 'sha256sum';
  const sha256MBps = Math.max(limits.sha256OpensslMBps, limits.sha256MBps);
  const compressed = image.layers.reduce((n, l) => n + l.size, 0);
  const hashCompressedSeconds = compressed / MB / sha256MBps;
  const hashUncompressedSeconds = image.uncompressedBytes / MB / sha256MBps;
  const decodeSeconds = image.uncompressedBytes / MB / decodeMBps;
  const spreadSeconds = (hashCompressedSeconds + hashUncompressedSeconds + decodeSeconds + limits.createFilesSeconds) / 2;
  const serialSeconds = Math.max(
    0,
    ...image.layers.map((l) => Math.max(l.uncompressedSize / MB / decodeMBps, l.uncompressedSize / MB / sha256MBps, l.size / MB / sha256MBps)),
  );
  return {
    image: image.name,
    cores: 2,
    decoder,
    decodeMBps,
    hasher,
    sha256MBps,
    hashCompressedSeconds,
    hashUncompressedSeconds,
    decodeSeconds,
    createFilesSeconds: limits.createFilesSeconds,
    spreadSeconds,
    serialSeconds,
    limitSeconds: Math.max(spreadSeconds, serialSeconds),
  };
}
