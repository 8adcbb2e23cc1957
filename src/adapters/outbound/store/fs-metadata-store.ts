import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImageTsError, StoreError, asImageTsError } from '../../../domain/errors.js';
import type { MetadataStore, StoreState } from '../../../ports/store/metadata-store.js';
import { processAlive } from '../process-alive.js';
import { emptyState } from '../../../domain/store/empty-state.js';

export const METADATA_FILE = 'metadata.json';
const LOCK_DIR = 'metadata.lock';
const LOCK_WAIT_MS = 30_000;
/** A lock dir without a readable pid this old was left by a process killed while taking it. */
const PIDLESS_LOCK_STALE_MS = 5_000;
const TMP_RE = /^metadata\.json\.(\d+)\.tmp$/;
/** Locks this process holds: a lock naming our pid that is not here was left by an earlier process with the same pid (a restarted guest). */
const HELD = new Set<string>();

/**
 * The store's metadata as one JSON file under work_dir. Updates hold a lock
 * (a directory, so it works across processes) and replace the file with
 * temp + fsync + rename, so a crash leaves the old or the new state, never half.
 *
 * An uncontended update runs its file calls synchronously: a pull makes three
 * updates of a few KB each, and as some 15 thread-pool round trips apiece they
 * were a tenth of a warm pull (bench/NOTES.md). Only waiting for another
 * holder, and breaking a stale lock, yield to the event loop.
 */
export class FsMetadataStore implements MetadataStore {
  private readonly file: string;
  private readonly lockDir: string;
  /** Serializes updates inside this process; the lock dir serializes processes. */
  private chain: Promise<unknown> = Promise.resolve();
  private tempsSwept = false;

  constructor(private readonly root: string) {
    this.file = join(root, METADATA_FILE);
    this.lockDir = join(root, LOCK_DIR);
  }

  // One small file read in place, as updates read it (see the class comment).
  async read(): Promise<StoreState> {
    return this.parse(this.readText());
  }

  private readText(): string | undefined {
    try {
      return readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StoreError(`cannot read ${this.file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
    }
  }

  /** The state a file holds; undefined text (no file yet) is the empty store. */
  private parse(text: string | undefined): StoreState {
    if (text === undefined) return emptyState();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new StoreError(`${this.file} is not valid JSON; the store was damaged outside image-ts`);
    }
    const state = value as Partial<StoreState>;
    if (state === null || typeof state !== 'object' || state.version !== 1 || typeof state.images !== 'object' ||
      typeof state.layers !== 'object' || typeof state.bundles !== 'object') {
      throw new StoreError(`${this.file} has an unknown format`);
    }
    // Files written before leases existed have none.
    return { ...(state as StoreState), leases: state.leases ?? {} };
  }

  update<T>(mutate: (state: StoreState) => T | Promise<T>): Promise<T> {
    const run = this.chain.then(() => this.locked(async () => {
      const state = this.parse(this.readText());
      const result = await mutate(state);
      this.write(state);
      return result;
    }));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private write(state: StoreState): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeFileSync(fd, JSON.stringify(state, null, 1));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.file);
    } catch (err) {
      // The old metadata.json is intact; only the half-written temp file goes.
      try {
        unlinkSync(tmp);
      } catch {
        // never created, or already gone
      }
      throw storeIoError(`cannot write ${this.file}`, err);
    }
    const dir = openSync(this.root, 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  /** Temp files of writers killed mid-write; once per process, under the lock. */
  private sweepTemps(): void {
    if (this.tempsSwept) return;
    this.tempsSwept = true;
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return;
    }
    for (const name of names) {
      const pid = TMP_RE.exec(name)?.[1];
      if (pid === undefined || Number(pid) === process.pid || processAlive(Number(pid))) continue;
      try {
        unlinkSync(join(this.root, name));
      } catch {
        // another sweeper got there first
      }
    }
  }

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    try {
      mkdirSync(this.root, { recursive: true });
    } catch (err) {
      throw storeIoError(`cannot create ${this.root}`, err);
    }
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let wait = 2; ; wait = Math.min(wait * 2, 100)) {
      if (this.tryLock()) break;
      const holder = await this.lockHolder();
      if (holder?.stale) {
        await this.breakStaleLock(holder.ino, holder.pidText);
        continue;
      }
      if (Date.now() > deadline) throw new StoreError(`the store at ${this.root} stayed locked for ${LOCK_WAIT_MS / 1000}s`);
      await sleep(wait);
    }
    try {
      this.sweepTemps();
      return await fn();
    } finally {
      HELD.delete(this.lockDir);
      rmSync(this.lockDir, { recursive: true, force: true });
    }
  }

  /** mkdir is the atomic test-and-set; the pid inside tells others whether the owner still lives. */
  private tryLock(): boolean {
    try {
      mkdirSync(this.lockDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw storeIoError('cannot lock the store', err);
    }
    HELD.add(this.lockDir);
    try {
      writeFileSync(join(this.lockDir, 'pid'), String(process.pid));
    } catch (err) {
      // A lock nobody can attribute would block everyone for a while: take it back.
      HELD.delete(this.lockDir);
      try {
        rmSync(this.lockDir, { recursive: true, force: true });
      } catch {
        // the pid write's error is the one to report
      }
      throw storeIoError('cannot lock the store', err);
    }
    return true;
  }

  private async lockHolder(): Promise<{ ino: number; pidText: string | undefined; stale: boolean } | undefined> {
    const st = await stat(this.lockDir).catch(() => undefined);
    if (!st) return undefined;
    const pidText = await readFile(join(this.lockDir, 'pid'), 'utf8').catch(() => undefined);
    const owner = pidText !== undefined && /^\d+$/.test(pidText) ? Number(pidText) : undefined;
    // A dead owner (kill -9) leaves a stale lock; a lock with no pid yet is being taken, unless it stays so.
    const stale = owner !== undefined
      ? (owner === process.pid ? !HELD.has(this.lockDir) : !processAlive(owner))
      : Date.now() - st.mtimeMs > PIDLESS_LOCK_STALE_MS;
    return { ino: st.ino, pidText, stale };
  }

  /**
   * Removes a stale lock, but only the one judged stale: two processes that
   * both saw it dead must not let the slower one delete the lock the faster
   * one has just taken. A second lock dir serializes the breakers, and under
   * it the lock is checked again (same inode, same pid text) before removal.
   */
  private async breakStaleLock(ino: number, pidText: string | undefined): Promise<void> {
    const breaker = `${this.lockDir}.break`;
    try {
      await mkdir(breaker);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw storeIoError('cannot lock the store', err);
      // Another process is breaking it; a breaker killed midway leaves an old dir behind.
      const age = await stat(breaker).then((st) => Date.now() - st.mtimeMs, () => 0);
      if (age > PIDLESS_LOCK_STALE_MS) await rm(breaker, { recursive: true, force: true });
      else await sleep(5);
      return;
    }
    try {
      const st = await stat(this.lockDir).catch(() => undefined);
      const now = await readFile(join(this.lockDir, 'pid'), 'utf8').catch(() => undefined);
      if (st && st.ino === ino && now === pidText) await rm(this.lockDir, { recursive: true, force: true });
    } finally {
      await rm(breaker, { recursive: true, force: true });
    }
  }
}

/** ENOSPC stays NO_SPACE so the user sees why; any other failure is the store's. */
function storeIoError(what: string, err: unknown): ImageTsError {
  const e = asImageTsError(err);
  if (e.code === 'NO_SPACE') return new ImageTsError('NO_SPACE', `${what}: no space left on device`, { cause: err });
  return new StoreError(`${what}: ${(err as NodeJS.ErrnoException).code ?? e.message}`, { cause: err });
}
