/**
 * A small seeded PRNG (mulberry32). Simulations must replay exactly from a
 * seed, so nothing in them may touch Math.random.
 */
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

/** 8 random bytes as a peer ID (never zero). */
export function randomPeerId(random: () => number): string {
  let s = '';
  for (let i = 0; i < 4; i++) s += Math.floor(random() * 0x10000).toString(16).padStart(4, '0');
  return s === '0000000000000000' ? '0000000000000001' : s;
}
