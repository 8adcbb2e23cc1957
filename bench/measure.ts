import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export interface Measurement {
  readonly wallMs: number;
  /** Largest sum of VmRSS over the process tree (and any extra processes) seen while it ran. */
  readonly peakRssBytes: number;
  /** Largest VmRSS of the command's own process, without its children (mkfs.erofs under the erofs snapshotter). */
  readonly peakOwnRssBytes: number;
  readonly exitCode: number;
  readonly stderrTail: string;
}

function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function children(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(' ').map(Number));
    }
  } catch {
    // The process ended between listing and reading.
  }
  return out;
}

function treeRss(root: number, extra: readonly number[]): number {
  let total = 0;
  const seen = new Set<number>();
  const stack = [root, ...extra];
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    total += rssBytes(pid);
    stack.push(...children(pid));
  }
  return total;
}

/**
 * Runs a command to completion, timing it and sampling the RSS of its whole
 * process tree every 20 ms (cgroup v1 accounting here would also charge the
 * tmpfs pages the pull writes, which are the rootfs, not memory use). `extraPids`
 * adds daemons that do the work on the command's behalf (containerd).
 */
export function measure(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; extraPids?: readonly number[]; cwd?: string } = {}): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...options.env }, cwd: options.cwd });
    let peak = 0;
    let own = 0;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    const sample = (): void => {
      if (child.pid === undefined) return;
      peak = Math.max(peak, treeRss(child.pid, options.extraPids ?? []));
      own = Math.max(own, rssBytes(child.pid));
    };
    const timer = setInterval(sample, 20);
    sample();
    child.on('error', (err) => {
      clearInterval(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearInterval(timer);
      const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
      resolve({ wallMs, peakRssBytes: peak, peakOwnRssBytes: own, exitCode: code ?? -1, stderrTail: stderr.trim().split('\n').slice(-3).join(' | ') });
    });
  });
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
