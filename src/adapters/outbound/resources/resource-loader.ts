import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ResourceUri } from '../../../domain/encryption/resource-uri.js';
import { ImageTsError, InvalidArgumentError } from '../../../domain/errors.js';
import type { KeyBroker } from '../../../ports/keys/key-broker.js';
import type { ResourceLoader } from '../../../ports/resources/resource-loader.js';
import { readAtMost } from '../read-at-most.js';

const MAX_RESOURCE_BYTES = 4 * 1024 * 1024;
/** Long enough to serve a burst of pulls, short enough that a rotated key or policy is picked up. */
const DEFAULT_TTL_MS = 5 * 60 * 1000;

export interface ResourceLoaderOptions {
  readonly ttlMs?: number | undefined;
  readonly now?: (() => number) | undefined;
}

/**
 * Bare paths and `file://` URIs are read on every call (a local edit takes
 * effect at once); `kbs://` resources come from the key broker and are kept
 * in memory only, for a bounded time. Nothing fetched is written to disk.
 */
export class BrokerResourceLoader implements ResourceLoader {
  private readonly cache = new Map<string, { value: Promise<Buffer>; expires: number }>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(private readonly broker: KeyBroker, options: ResourceLoaderOptions = {}) {
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    this.now = options.now ?? Date.now;
  }

  async load(uri: string, signal?: AbortSignal): Promise<Buffer> {
    if (/^kbs(\+[a-z0-9_-]+)?:/.test(uri)) return this.fromBroker(ResourceUri.parse(uri), signal);
    if (uri.startsWith('file://')) return readBounded(filePath(uri));
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) throw new InvalidArgumentError(`resource ${uri}: only paths, file:// and kbs:// URIs are supported`);
    return readBounded(uri);
  }

  private async fromBroker(uri: ResourceUri, signal?: AbortSignal): Promise<Buffer> {
    const key = uri.toString();
    const hit = this.cache.get(key);
    if (hit && hit.expires > this.now()) return Buffer.from(await hit.value);
    const value = this.broker.getResource(uri, signal);
    const entry = { value, expires: this.now() + this.ttlMs };
    this.cache.set(key, entry);
    // A failure is not cached: the next call asks again.
    value.catch(() => {
      if (this.cache.get(key) === entry) this.cache.delete(key);
    });
    return Buffer.from(await value);
  }
}

function filePath(uri: string): string {
  try {
    return fileURLToPath(uri);
  } catch {
    // A host other than localhost, or an encoded `/`: nothing local to read.
    throw new InvalidArgumentError(`resource ${uri}: not a local file:// URI`);
  }
}

/**
 * Reads at most MAX_RESOURCE_BYTES, counted as read rather than trusted
 * from stat: a device such as /dev/zero, or a growing file, has no honest
 * size. Every failure is INVALID_ARGUMENT naming the path.
 */
async function readBounded(path: string): Promise<Buffer> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const tooLarge = (): InvalidArgumentError => new InvalidArgumentError(`${path} is larger than ${MAX_RESOURCE_BYTES} bytes`);
  try {
    if ((await file.stat()).size > MAX_RESOURCE_BYTES) throw tooLarge();
    return await readAtMost(file.createReadStream({ autoClose: false }), MAX_RESOURCE_BYTES, tooLarge);
  } catch (err) {
    if (err instanceof ImageTsError) throw err;
    throw new InvalidArgumentError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  } finally {
    await file.close();
  }
}
