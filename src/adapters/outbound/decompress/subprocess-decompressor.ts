import type { ChildProcessByStdio } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Duplex, PassThrough, type Readable, type Writable } from 'node:stream';
import { ImageTsError } from '../../../domain/errors.js';
import type { Compression } from '../../../domain/image/media-types.js';
import type { Decompressor } from '../../../ports/layer/decompressor.js';
import { lazyRequire } from '../lazy.js';

const childProcess = lazyRequire<typeof import('node:child_process')>('node:child_process');

/** Input accepted ahead of the codec, so idle moments of the event loop keep its pipe full. */
const INPUT_AHEAD = 1024 * 1024;

/** Finds an executable on PATH, as a shell would. */
export function onPath(name: string, path = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

type Child = ChildProcessByStdio<Writable, Readable, Readable>;

/**
 * A decompressor process as a Duplex. The codec runs on its own core, so the
 * unpacker on the main thread never waits on it and it never waits on the
 * unpacker (node's zlib needs a main-thread callback for every output chunk).
 * The exit status decides success: a codec that fails mid-stream must not
 * look like a short, clean stream.
 */
class ProcessDuplex extends Duplex {
  private readonly child: Child;
  private stderr = '';
  private stdoutEnded = false;
  private exitCode: number | null | undefined;
  private settled = false;

  constructor(private readonly kind: string, command: string, args: readonly string[]) {
    super({ readableHighWaterMark: 256 * 1024 });
    this.child = childProcess().spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin.on('error', () => undefined); // EPIPE when the codec quits early; the exit status tells why
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-500);
    });
    this.child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) this.child.stdout.pause();
    });
    this.child.stdout.on('end', () => {
      this.stdoutEnded = true;
      this.finishIfDone();
    });
    this.child.on('error', (err) => this.fail(new ImageTsError('UNSUPPORTED', `cannot run ${command}: ${err.message}`)));
    this.child.on('close', (code) => {
      this.exitCode = code;
      this.finishIfDone();
    });
  }

  private fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.destroy(err);
  }

  private finishIfDone(): void {
    if (this.settled || !this.stdoutEnded || this.exitCode === undefined) return;
    if (this.exitCode !== 0) {
      const why = this.stderr.trim().split('\n').pop() ?? `exit status ${this.exitCode}`;
      this.fail(new ImageTsError('INVALID_LAYER', `corrupt ${this.kind} layer data: ${why}`));
      return;
    }
    this.settled = true;
    this.push(null);
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.child.stdin.write(chunk);
    if (this.child.stdin.writableLength < INPUT_AHEAD) cb();
    else this.child.stdin.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.child.stdin.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
    cb(err);
  }
}

export interface SubprocessCodecs {
  /** A gzip decoder that reads stdin and writes stdout, e.g. igzip (ISA-L) or gzip. */
  readonly gzip?: { readonly command: string; readonly args: readonly string[] } | undefined;
  readonly zstd?: { readonly command: string; readonly args: readonly string[] } | undefined;
}

/** The codecs found on this machine, fastest first: ISA-L's igzip, then zstd. */
export function findSubprocessCodecs(path?: string): SubprocessCodecs {
  const igzip = onPath('igzip', path);
  const zstd = onPath('zstd', path);
  return {
    gzip: igzip ? { command: igzip, args: ['-d', '-c'] } : undefined,
    zstd: zstd ? { command: zstd, args: ['-d', '-c', '-q'] } : undefined,
  };
}

/**
 * Decompression in separate processes (igzip for gzip, zstd for zstd), with a
 * fallback decompressor for what has no codec here.
 */
export class SubprocessDecompressor implements Decompressor {
  private resolved: SubprocessCodecs | undefined;

  /** `codecs` may be a function, asked once on first use (it may need to look at the machine). */
  constructor(
    private readonly codecs: SubprocessCodecs | (() => SubprocessCodecs),
    private readonly fallback: Decompressor,
  ) {}

  private get chosen(): SubprocessCodecs {
    return (this.resolved ??= typeof this.codecs === 'function' ? this.codecs() : this.codecs);
  }

  get name(): string {
    const c = this.chosen;
    return `subprocess(${[c.gzip && 'gzip', c.zstd && 'zstd'].filter(Boolean).join(',') || 'none'})+${this.fallback.name}`;
  }

  supports(compression: Compression): boolean {
    return this.fallback.supports(compression) || (compression === 'gzip' && !!this.chosen.gzip) || (compression === 'zstd' && !!this.chosen.zstd);
  }

  create(compression: Compression): Duplex {
    const codec = compression === 'gzip' ? this.chosen.gzip : compression === 'zstd' ? this.chosen.zstd : undefined;
    if (!codec) return compression === 'none' ? new PassThrough() : this.fallback.create(compression);
    return new ProcessDuplex(compression, codec.command, codec.args);
  }
}
