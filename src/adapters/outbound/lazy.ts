import { createRequire } from 'node:module';

const nodeRequire = createRequire(import.meta.url);

/**
 * A module loaded on first use, then kept. Loading is not free (worker_threads
 * 7 ms, child_process 3 ms, zlib 2 ms at start here, openpgp and grpc-js far
 * more), and a warm pull needs none of them: it spawns no codec, starts no
 * unpack worker and inflates nothing (bench/NOTES.md).
 */
export function lazy<T>(load: () => T): () => T {
  let loaded: { value: T } | undefined;
  return () => (loaded ??= { value: load() }).value;
}

/** A node built-in or CommonJS package, required on first use. */
export function lazyRequire<T>(name: string): () => T {
  return lazy(() => nodeRequire(name) as T);
}

/**
 * A large ES package, imported on first use (esbuild puts it in its own
 * chunk). CommonJS packages arrive as the namespace's `default` when bundled
 * and as named exports under node's own loader; either is accepted.
 */
export function lazyImport<T>(load: () => Promise<T>): () => Promise<T> {
  return lazy(() => load().then((m) => (m as { default?: T }).default ?? m));
}
