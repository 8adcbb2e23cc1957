import { spawn } from 'node:child_process';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { buildCli as buildInto } from '../../scripts/build.js';
import { collect, ROOT, type CliResult, type Finished } from './cli.js';

/** A CLI process the test can kill -9. */
export interface CliProcess {
  readonly pid: number | undefined;
  /** SIGKILL, if it still runs; whether the signal was sent. */
  kill(): boolean;
  readonly done: Promise<Finished>;
}

export interface BuiltCli {
  /** node's arguments to run it, for a caller that spawns it itself (to sample its memory, say). */
  argv(args: string[]): string[];
  run(args: string[]): Promise<CliResult>;
  spawn(args: string[]): CliProcess;
  cleanup(): Promise<void>;
}

/**
 * The CLI built from the current src, the way `npm run build` builds it, into a temp dir beside
 * links to the repo's node_modules and native/ (where the bundle looks for zstd-napi and the
 * syscalls addon). Starting it costs a fifth of the CPU of starting src through tsx, which is what
 * lets a soak run 20 pulls at once on a 2-core machine; it is still the code under review, not a stale dist/.
 */
export async function buildCli(outRoot: string): Promise<BuiltCli> {
  const dir = await mkdtemp(join(outRoot, 'image-ts-cli-'));
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  await symlink(join(ROOT, 'native'), join(dir, 'native'));
  await buildInto(dir);
  const argv = (args: string[]): string[] => [join(dir, 'bin', 'image-ts.js'), ...args];
  const spawnCli = (args: string[]): CliProcess => {
    const child = spawn(process.execPath, argv(args), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const { done, exited } = collect(child);
    return { pid: child.pid, kill: () => !exited() && child.kill('SIGKILL'), done };
  };
  return {
    argv,
    run: async (args) => {
      const { code, stdout, stderr } = await spawnCli(args).done;
      return { code, stdout, stderr };
    },
    spawn: spawnCli,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
