import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError } from '../../../domain/errors.js';
import { emptyState, type MetadataStore, type StoreState } from '../../../ports/store/metadata-store.js';
import { processAlive } from '../process-alive.js';

export const METADATA_FILE = 'metadata.json';
const LOCK_DIR = 'metadata.lock';
const LOCK_WAIT_MS = 30_000;

/**
 * The store's metadata as one JSON file under work_dir. Updates hold a lock
 * (a directory, so it works across processes) and replace the file with
 * temp + fsync + rename, so a crash leaves the old or the new state, never half.
 */
export class FsMetadataStore implements MetadataStore {
  private readonly file: string;
  private readonly lockDir: string;
  /** Serializes updates inside this process; the lock dir serializes processes. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly root: string) {
    this.file = join(root, METADATA_FILE);
    this.lockDir = join(root, LOCK_DIR);
  }

  async read(): Promise<StoreState> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
      throw new StoreError(`cannot read ${this.file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
    }
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
      const state = await this.read();
      const result = await mutate(state);
      await this.write(state);
      return result;
    }));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(state: StoreState): Promise<void> {
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(state, null, 1));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    const dir = await open(this.root, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    await mkdir(this.root, { recursive: true });
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let wait = 2; ; wait = Math.min(wait * 2, 100)) {
      try {
        await mkdir(this.lockDir);
        await writeFile(join(this.lockDir, 'pid'), String(process.pid));
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StoreError(`cannot lock the store: ${(err as NodeJS.ErrnoException).code}`);
        const owner = Number(await readFile(join(this.lockDir, 'pid'), 'utf8').catch(() => 'NaN'));
        // A lock whose owner died (kill -9) is stale; a lock with no pid yet is being taken.
        const age = await stat(this.lockDir).then((st) => Date.now() - st.mtimeMs, () => 0);
        if ((Number.isInteger(owner) && owner !== process.pid && !processAlive(owner)) || (!Number.isInteger(owner) && age > 5_000)) {
          await rm(this.lockDir, { recursive: true, force: true });
          continue;
        }
        if (Date.now() > deadline) throw new StoreError(`the store at ${this.root} stayed locked for ${LOCK_WAIT_MS / 1000}s`);
        await sleep(wait);
      }
    }
    try {
      return await fn();
    } finally {
      await rm(this.lockDir, { recursive: true, force: true });
    }
  }
}
