import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { BenchImage } from './images.js';
import { measure } from './measure.js';

export interface MachineLimits {
  /** Output MB/s of one decompressor process over the image's layers. */
  readonly gzipDecompressMBps: number;
  readonly igzipDecompressMBps: number | undefined;
  readonly zstdDecompressMBps: number | undefined;
  /** Input MB/s of sha256sum over the compressed blobs. */
  readonly sha256MBps: number;
  /** openssl speed, 16 KiB blocks, one core. */
  readonly aes256CtrMBps: number;
}

const MB = 1e6;

async function throughput(script: string, bytes: number): Promise<number> {
  const m = await measure('sh', ['-c', script]);
  if (m.exitCode !== 0) throw new Error(`limits: ${script} failed: ${m.stderrTail}`);
  return bytes / MB / (m.wallMs / 1000);
}

const blobs = (image: BenchImage): string[] => image.layers.map((l) => join(image.layout, 'blobs', 'sha256', l.digest.slice(7)));

/** What one core of this machine can do, measured in the same run as the pulls. */
export async function machineLimits(gzipImage: BenchImage, zstdImage: BenchImage | undefined): Promise<MachineLimits> {
  const gz = blobs(gzipImage).join(' ');
  const hasIgzip = (() => {
    try {
      execFileSync('sh', ['-c', 'command -v igzip']);
      return true;
    } catch {
      return false;
    }
  })();
  const aes = execFileSync('openssl', ['speed', '-evp', 'aes-256-ctr', '-seconds', '2', '-bytes', '16384'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  // The result row ends with the rate in kB/s for the one block size asked for, e.g. "aes-256-ctr  4567890.12k".
  const row = aes.split('\n').find((l) => l.toLowerCase().startsWith('aes-256-ctr'));
  const k = row ? Number(/([\d.]+)k\s*$/.exec(row.trim())?.[1]) : NaN;
  return {
    gzipDecompressMBps: await throughput(`cat ${gz} | gzip -dc > /dev/null`, gzipImage.uncompressedBytes),
    igzipDecompressMBps: hasIgzip ? await throughput(`cat ${gz} | igzip -dc > /dev/null`, gzipImage.uncompressedBytes) : undefined,
    zstdDecompressMBps: zstdImage ? await throughput(`cat ${blobs(zstdImage).join(' ')} | zstd -dc > /dev/null`, zstdImage.uncompressedBytes) : undefined,
    sha256MBps: await throughput(`cat ${gz} | sha256sum > /dev/null`, gzipImage.layers.reduce((n, l) => n + l.size, 0)),
    aes256CtrMBps: (k * 1000) / MB,
  };
}
