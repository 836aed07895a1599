import type { PeerId } from '../peer-id.js';
import type { TopologyEntry } from '../wire/messages.js';
import type { Topology } from './topology.js';

export interface Routes {
  /** For every reachable peer except us: the direct neighbour to send through. */
  readonly nextHop: ReadonlyMap<PeerId, PeerId>;
  /** Reachable peers including us, ascending: the membership broadcast spans are cut from. */
  readonly members: readonly PeerId[];
  readonly reachable: ReadonlySet<PeerId>;
}

/**
 * Breadth-first search from us. The first hop uses our own established
 * connections (we know they work, whatever our neighbours have published so
 * far); every further hop needs the connection listed by both ends, so a
 * half-open or one-sided connection never carries relayed traffic.
 * Neighbours are visited in ID order so equal-length paths resolve the same
 * way every time.
 */
export function computeRoutes(topology: Topology, direct: ReadonlySet<PeerId>): Routes {
  const self = topology.self;
  const nextHop = new Map<PeerId, PeerId>();
  const reachable = new Set<PeerId>([self]);
  let frontier: PeerId[] = [];
  for (const n of [...direct].sort()) {
    if (n === self || reachable.has(n)) continue;
    reachable.add(n);
    nextHop.set(n, n);
    frontier.push(n);
  }
  while (frontier.length > 0) {
    const next: PeerId[] = [];
    for (const x of frontier) {
      const ex = topology.get(x);
      if (!ex) continue;
      const via = nextHop.get(x)!;
      for (const y of ex.connections) {
        if (reachable.has(y)) continue;
        const ey = topology.get(y);
        if (!ey || !connectionSet(ey).has(x)) continue;
        reachable.add(y);
        nextHop.set(y, via);
        next.push(y);
      }
    }
    frontier = next;
  }
  return { nextHop, members: [...reachable].sort(), reachable };
}

/** Entries are immutable, so each one's connection set is built once and reused by every recomputation. */
const sets = new WeakMap<TopologyEntry, Set<PeerId>>();
function connectionSet(e: TopologyEntry): Set<PeerId> {
  let s = sets.get(e);
  if (!s) sets.set(e, (s = new Set(e.connections)));
  return s;
}

/** Binary search: entries keep connections sorted. */
export function hasConnection(sorted: readonly PeerId[], peer: PeerId): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = sorted[mid]!;
    if (v === peer) return true;
    if (v < peer) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}
