/**
 * A large or rarely needed package, imported on first use and then kept, so
 * that a pull which never needs it never parses it (esbuild puts it in its
 * own chunk). CommonJS packages arrive as the namespace's `default` when
 * bundled and as named exports under node's own loader; either is accepted.
 */
export function lazyModule<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load().then((m) => (m as { default?: T }).default ?? m));
}
