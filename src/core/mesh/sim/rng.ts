import { seededRandom } from '../../prng.js';

/** The project's one seeded PRNG; simulations must replay exactly from a seed. */
export { seededRandom };

/** 8 random bytes as a peer ID (never zero). */
export function randomPeerId(random: () => number): string {
  let s = '';
  for (let i = 0; i < 4; i++) s += Math.floor(random() * 0x10000).toString(16).padStart(4, '0');
  return s === '0000000000000000' ? '0000000000000001' : s;
}
