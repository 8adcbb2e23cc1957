/** Deterministic test data and choices: the same on every machine and run, for a given seed. */

/** mulberry32: small, fast, seeded; plenty for choosing faults and making content. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` incompressible bytes that depend only on `seed`: layers big enough for faults to land mid-body. */
export function pseudoRandomBytes(seed: number, n: number): Buffer {
  const random = seededRandom(seed);
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) {
    const v = Math.floor(random() * 4294967296) >>> 0;
    for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
  }
  return out;
}
