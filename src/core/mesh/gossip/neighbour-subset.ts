import type { PeerId } from '../peer-id.js';

/**
 * `k` distinct items picked uniformly at random (partial Fisher–Yates with
 * the injected random source, so simulations replay exactly).
 */
export function randomSubset<T>(items: readonly T[], k: number, random: () => number): T[] {
  const a = [...items];
  const n = Math.min(k, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (a.length - i));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a.slice(0, n);
}

/** Neighbours to gossip to this round: about 2·log2(n) of them, n = peers we can reach. */
export function neighbourSubset(neighbours: readonly PeerId[], reachablePeers: number, random: () => number): PeerId[] {
  const k = Math.max(2, Math.ceil(2 * Math.log2(Math.max(2, reachablePeers))));
  return randomSubset([...neighbours].sort(), k, random);
}
