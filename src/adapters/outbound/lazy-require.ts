import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/**
 * A node built-in or CommonJS package, required on first use. Loading is not
 * free (worker_threads 7 ms, child_process 3 ms, zlib 2 ms, zstd-napi with
 * its native binding more, at start here), and a warm pull needs none of
 * these: it spawns no codec, starts no unpack worker and inflates nothing
 * (bench/NOTES.md).
 */
export function lazyRequire<T>(name: string): () => T {
  let module: T | undefined;
  return () => (module ??= load(name) as T);
}
