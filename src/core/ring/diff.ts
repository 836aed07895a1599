/**
 * What a ring change means for one peer's allocator. After every merge (and
 * every local operation) the daemon asks what it gained and lost; addresses
 * it had allocated in lost space no longer belong to it and are returned as
 * data, so the allocator can re-register them with their new owner (a fixed
 * -IP claim through the owner) or, on conflict, renumber.
 */
import { type Interval, normalize, subtract } from '../ip/ranges.js';
import { compareGenesis } from './order.js';
import { ownerDetail, ownedRanges } from './resolve.js';
import type { PeerId, Ring } from './types.js';

export interface OwnershipChange {
  readonly gained: Interval[];
  readonly lost: Interval[];
  /** `peer` is retired in `after` and was not in `before`. */
  readonly retired: boolean;
  /** `after` is a different ring (genesis) that replaced `before` wholesale. */
  readonly genesisReplaced: boolean;
}

export function ownershipChanges(before: Ring | undefined, after: Ring, peer: PeerId): OwnershipChange {
  const was = before ? normalize(ownedRanges(before, peer)) : [];
  const now = normalize(ownedRanges(after, peer));
  const wasRetired = before?.peers.get(peer)?.retired !== undefined;
  return {
    gained: subtract(now, was),
    lost: subtract(was, now),
    retired: !wasRetired && after.peers.get(peer)?.retired !== undefined,
    genesisReplaced: before !== undefined && compareGenesis(before.genesis, after.genesis) !== 0,
  };
}

/** The addresses among `allocated` that `peer` does not own in `ring` (they lost ownership). */
export function disownedAddresses(ring: Ring, peer: PeerId, allocated: Iterable<bigint>): bigint[] {
  const out: bigint[] = [];
  for (const a of allocated) {
    if (a < ring.first || a > ring.last) continue; // not managed by the ring
    const r = ownerDetail(ring, a);
    if (r.owner !== peer || r.orphaned) out.push(a);
  }
  return out;
}
