/** Random ring operations for the property tests and the simulation (test/unit/ring-*.test.ts). */
import { isWeftError } from '../../src/core/errors.js';
import {
  type Ring, adoptOrphans, grant, heartbeat, isLive, join, livePeers, ownedRanges, pickDonation, removePeer, reportFree, resetPeer, reclaimExpired, voteExpired,
} from '../../src/core/ring/index.js';
import { pick } from './ring-kit.js';

/** Runs `f`; a WeftError (a refused operation) leaves the ring as it was. Anything else is a bug and propagates. */
export function attempt(ring: Ring, f: (r: Ring) => Ring): Ring {
  try {
    return f(ring);
  } catch (e) {
    if (isWeftError(e)) return ring;
    throw e;
  }
}

/** One random operation by a random live peer (or `actor`), as any peer could issue it. */
export function randomOp(ring: Ring, rand: () => number, newIds: string[], actor?: string): Ring {
  const lives = livePeers(ring);
  if (lives.length === 0) return ring;
  const me = actor ?? pick(rand, lives);
  if (!isLive(ring, me)) return ring;
  const others = [...ring.peers.keys()].filter((p) => p !== me);
  const r = rand();
  if (r < 0.3) {
    const to = rand() < 0.2 && newIds.length > 0 ? newIds.shift()! : pick(rand, lives);
    const block = BigInt(1 + Math.floor(rand() * 40));
    return attempt(ring, (x) => {
      const d = pickDonation(x, me, block, () => rand() < 0.8);
      return d ? grant(x, me, to, d.first, d.last) : x;
    });
  }
  if (r < 0.5) return attempt(ring, (x) => heartbeat(x, me));
  if (r < 0.62) return attempt(ring, (x) => voteExpired(x, me, others.filter(() => rand() < 0.5)));
  if (r < 0.7) return attempt(ring, (x) => reclaimExpired(x, me).ring);
  if (r < 0.75 && others.length > 0) return attempt(ring, (x) => removePeer(x, me, pick(rand, others)));
  if (r < 0.78) return attempt(ring, (x) => resetPeer(x, me));
  if (r < 0.8) return attempt(ring, (x) => adoptOrphans(x, me));
  if (r < 0.9) return attempt(ring, (x) => reportFree(x, me, (f, l) => (l - f + 1n) / BigInt(1 + Math.floor(rand() * 3))));
  if (newIds.length > 0) return attempt(ring, (x) => join(x, newIds.shift()!));
  return ring;
}

export function ownsSomething(ring: Ring, id: string): boolean {
  return ownedRanges(ring, id).length > 0;
}
