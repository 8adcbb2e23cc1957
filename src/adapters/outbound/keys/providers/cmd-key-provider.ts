import { KeyBrokerDeniedError, KeyBrokerUnavailableError, type ImageTsError } from '../../../../domain/errors.js';
import type { KeyProvider } from '../../../../ports/keys/key-provider.js';
import { abortError } from '../../http/transport-errors.js';
import { lazyRequire } from '../../lazy.js';

const childProcess = lazyRequire<typeof import('node:child_process')>('node:child_process');

/** A key provider answers with a few hundred bytes; anything near this is not a key provider. */
const MAX_STDOUT = 1024 * 1024;
const MAX_STDERR = 4096;
export const DEFAULT_KEY_PROVIDER_TIMEOUT_MS = 60_000;

export interface CmdKeyProviderOptions {
  readonly timeoutMs?: number | undefined;
  /** Added to the inherited environment. */
  readonly env?: Readonly<Record<string, string>> | undefined;
}

/**
 * Only the first stderr line, shortened, and with long base64 or hex runs
 * blanked: a provider may print what it was given, and that is key material.
 */
export function stderrSummary(stderr: string): string {
  const line = stderr.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '';
  const redacted = line.replace(/[A-Za-z0-9+/_=-]{40,}/g, '…');
  return redacted.length > 200 ? `${redacted.slice(0, 200)}…` : redacted;
}

/**
 * ocicrypt's `cmd` transport: the protocol JSON on stdin, the answer on
 * stdout, one process per unwrap. Exit status 0 is the only success.
 */
export class CmdKeyProvider implements KeyProvider {
  constructor(
    readonly name: string,
    readonly path: string,
    readonly args: readonly string[] = [],
    private readonly options: CmdKeyProviderOptions = {},
  ) {}

  unwrapKey(input: Buffer, signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_KEY_PROVIDER_TIMEOUT_MS;
    const who = `key provider ${this.name} (${this.path})`;
    return new Promise<Buffer>((resolve, reject) => {
      const child = childProcess().spawn(this.path, [...this.args], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: this.options.env ? { ...process.env, ...this.options.env } : process.env,
      });
      const stdout: Buffer[] = [];
      let stdoutBytes = 0;
      let stderr = '';
      let failure: ImageTsError | undefined;
      let done = false;
      const finish = (err: ImageTsError | undefined, value?: Buffer): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(value ?? Buffer.alloc(0));
      };
      // The error is decided now, reported once the process is gone.
      const stop = (err: ImageTsError): void => {
        failure ??= err;
        child.kill('SIGKILL');
      };
      const timer = setTimeout(() => stop(new KeyBrokerUnavailableError(`${who} did not answer within ${timeoutMs} ms`)), timeoutMs);
      const onAbort = (): void => stop(abortError(signal ?? AbortSignal.abort()));
      signal?.addEventListener('abort', onAbort, { once: true });

      child.on('error', (err: NodeJS.ErrnoException) => {
        // spawn failed (ENOENT, EACCES): no 'close' with a status will tell more
        if (child.pid === undefined) finish(new KeyBrokerUnavailableError(`${who} cannot be run: ${err.code ?? err.message}`, { cause: err }));
      });
      child.stdin.on('error', () => undefined); // EPIPE when it exits without reading; the status says why
      child.stdout.on('data', (d: Buffer) => {
        stdoutBytes += d.length;
        if (stdoutBytes > MAX_STDOUT) stop(new KeyBrokerUnavailableError(`${who} wrote more than ${MAX_STDOUT} bytes`));
        else stdout.push(d);
      });
      child.stderr.on('data', (d: Buffer) => {
        if (stderr.length < MAX_STDERR) stderr += d.toString('utf8').slice(0, MAX_STDERR - stderr.length);
      });
      child.on('close', (code, sig) => {
        if (failure) return finish(failure);
        if (code === 0) return finish(undefined, Buffer.concat(stdout));
        const why = stderrSummary(stderr);
        if (code === null) return finish(new KeyBrokerUnavailableError(`${who} was killed by ${sig ?? 'a signal'}${why ? `: ${why}` : ''}`));
        finish(new KeyBrokerDeniedError(`${who} exited with status ${code}${why ? `: ${why}` : ''}`));
      });
      child.stdin.end(input);
    });
  }
}
