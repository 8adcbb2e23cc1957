import { readFile, stat } from 'node:fs/promises';
import { decodeBase64 } from '../../../../domain/encryption/base64.js';
import type { ResourceUri } from '../../../../domain/encryption/resource-uri.js';
import { ConfigFileError, KeyBrokerDeniedError, KeyBrokerUnavailableError } from '../../../../domain/errors.js';
import type { KeyBroker } from '../../../../ports/keys/key-broker.js';
import type { Logger } from '../../../../ports/observability/logger.js';
import { abortError } from '../../http/transport-errors.js';
import { silentLogger } from '../../silent-logger.js';

/** Where guest-components' offline-fs KBC looks by default. */
export const OFFLINE_FS_DEFAULT_FILES: readonly string[] = [
  '/etc/aa-offline_fs_kbc-keys.json',
  '/etc/aa-offline_fs_kbc-resources.json',
];

export interface OfflineFsKeyBrokerOptions {
  /** JSON files `{"<repo>/<type>/<tag>": "<std base64>"}`; a later file wins for a path two files hold. */
  readonly files: readonly string[];
  readonly logger?: Logger;
}

interface Loaded {
  /** What the cached copy was read from: a change in any of these means read again. */
  readonly stamp: string;
  readonly resources: ReadonlyMap<string, Buffer>;
}

type FileState =
  | { readonly kind: 'loaded'; readonly resources: ReadonlyMap<string, Buffer> }
  | { readonly kind: 'missing' }
  | { readonly kind: 'unreadable'; readonly code: string };

/**
 * Resources from local JSON files, the offline-fs KBC's format, for guests
 * provisioned with their keys at build or boot time. No attestation: whoever
 * can read the files has the keys.
 *
 * Files are read on first use and again whenever their mtime, size or inode
 * changes. A file that does not exist is only a warning (it may be created
 * later). A file that exists but cannot be read (EACCES, EISDIR, EIO...) is
 * this broker's "nothing answers": a path no readable file holds is then
 * KEY_BROKER_UNAVAILABLE rather than KEY_BROKER_DENIED, since the unreadable
 * file may hold it. A file that is not valid is a configuration error.
 */
export class OfflineFsKeyBroker implements KeyBroker {
  readonly description: string;
  private readonly logger: Logger;
  private readonly cache = new Map<string, Loaded>();
  private readonly warnedMissing = new Set<string>();

  constructor(private readonly o: OfflineFsKeyBrokerOptions) {
    this.description = `offline key files ${o.files.join(', ')}`;
    this.logger = o.logger ?? silentLogger;
  }

  async getResource(uri: ResourceUri, signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted) throw abortError(signal);
    const states = await Promise.all(this.o.files.map((f) => this.load(f)));
    if (signal?.aborted) throw abortError(signal);
    for (let i = states.length - 1; i >= 0; i--) {
      const s = states[i];
      const value = s?.kind === 'loaded' ? s.resources.get(uri.path) : undefined;
      // A copy, so that a caller wiping its key does not wipe the cache.
      if (value) return Buffer.from(value);
    }
    const unreadable = this.o.files.flatMap((f, i) => {
      const s = states[i];
      return s?.kind === 'unreadable' ? [`${f} (${s.code})`] : [];
    });
    if (unreadable.length > 0) {
      throw new KeyBrokerUnavailableError(`cannot look up ${uri}: cannot read ${unreadable.join(', ')}`);
    }
    throw new KeyBrokerDeniedError(`${uri} is not in ${this.description}`);
  }

  private async load(file: string): Promise<FileState> {
    let stamp: string;
    try {
      const st = await stat(file);
      stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      return this.failed(file, err);
    }
    const cached = this.cache.get(file);
    if (cached?.stamp === stamp) return { kind: 'loaded', resources: cached.resources };
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      return this.failed(file, err);
    }
    const resources = parseResourceFile(text, file);
    this.cache.set(file, { stamp, resources });
    this.warnedMissing.delete(file);
    this.logger.log('debug', 'keys.offline.loaded', { file, resources: resources.size });
    return { kind: 'loaded', resources };
  }

  private failed(file: string, err: unknown): FileState {
    this.cache.delete(file);
    const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'read error';
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      // Once per disappearance, not once per lookup.
      if (!this.warnedMissing.has(file)) this.logger.log('warn', 'keys.offline.missing', { file });
      this.warnedMissing.add(file);
      return { kind: 'missing' };
    }
    this.logger.log('warn', 'keys.offline.unreadable', { file, code });
    return { kind: 'unreadable', code };
  }
}

/**
 * Validates the whole file up front so that a typo surfaces as one clear
 * error. Messages name paths and members, never values or parser excerpts:
 * the file is full of keys.
 */
export function parseResourceFile(text: string, file: string): ReadonlyMap<string, Buffer> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch {
    throw new ConfigFileError(`${file} is not JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigFileError(`${file} must hold a JSON object of "<repository>/<type>/<tag>": "<base64>" members`);
  }
  const resources = new Map<string, Buffer>();
  for (const [path, value] of Object.entries(parsed as Record<string, unknown>)) {
    const bytes = typeof value === 'string' ? decodeBase64(value) : undefined;
    if (!bytes) throw new ConfigFileError(`${file}: the value of ${JSON.stringify(path)} is not a base64 string`);
    resources.set(path.replace(/^\/+/, ''), bytes);
  }
  return resources;
}
