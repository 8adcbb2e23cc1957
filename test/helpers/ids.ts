/** Ids a test can predict: `${prefix}-1`, `${prefix}-2`, ... (the domain takes its ids from outside). */
export function counterIds(prefix = 'id'): () => string {
  let n = 0;
  return () => `${prefix}-${++n}`;
}
