import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** node's arguments to run the CLI from source, through tsx. */
export function sourceCliArgs(args: string[]): string[] {
  return ['--import', 'tsx', join(ROOT, 'src', 'adapters', 'inbound', 'cli', 'bin.ts'), ...args];
}

/** Runs the CLI from source (through tsx) so tests exercise the code under review, not a stale build. */
export function cli(args: string[], options: { env?: NodeJS.ProcessEnv; built?: boolean; asUid?: number } = {}): Promise<CliResult> {
  const argv = options.built
    ? [join(ROOT, 'bin', 'image-ts.js'), ...args]
    : sourceCliArgs(args);
  // setpriv drops to an unprivileged user for the tests of what works without root.
  const [cmd, cmdArgs] = options.asUid === undefined
    ? [process.execPath, argv]
    : ['setpriv', [`--reuid=${options.asUid}`, `--regid=${options.asUid}`, '--clear-groups', process.execPath, ...argv]];
  return collect(spawn(cmd, cmdArgs, { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })).done
    .then(({ code, stdout, stderr }) => ({ code, stdout, stderr }));
}

export type Finished = CliResult & { signal: NodeJS.Signals | null };

/** A child's stdout and stderr gathered, its exit as a promise, and whether it has exited yet. */
export function collect(child: ChildProcessByStdio<null, Readable, Readable>): { done: Promise<Finished>; exited(): boolean } {
  let stdout = '';
  let stderr = '';
  let gone = false;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.once('exit', () => {
    gone = true;
  });
  const done = new Promise<Finished>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? -1, stdout, stderr, signal }));
  });
  return { done, exited: () => gone };
}

/** The CLI's failure contract: exit status, exactly one stderr line with the code, no stack trace. */
export function assertCliError(r: CliResult, code: string, exit = 1): void {
  const lines = r.stderr.trim().split('\n');
  if (r.code !== exit || lines.length !== 1 || !lines[0]!.startsWith(`image-ts: ${code}: `) || /\n\s+at /.test(r.stderr)) {
    throw new Error(`expected exit ${exit} with one line "image-ts: ${code}: ...", got exit ${r.code}:\n${r.stderr}${r.stdout}`);
  }
}

/** Either a success or the CLI's failure contract (exit 1, one line with a code, no stack trace): 'ok' or the code. */
export function assertCleanOutcome(r: CliResult, what: string): string {
  if (r.code === 0) return 'ok';
  const lines = r.stderr.trim().split('\n');
  if (r.code !== 1 || lines.length !== 1 || !/^image-ts: [A-Z_]+: /.test(lines[0]!) || /\n\s+at /.test(r.stderr)) {
    throw new Error(`${what}: expected success or one error line, got exit ${r.code}:\n${r.stderr}`);
  }
  return /^image-ts: ([A-Z_]+):/.exec(lines[0]!)![1]!;
}
