/**
 * Membership and the lease. A peer joins by adding its record; it renews its
 * lease by incrementing its own heartbeat counter (`heartbeat`), which the
 * daemon does on a timer and gossips. Expiry is judged by each observer
 * against its own monotonic clock (lease.ts), never against a timestamp from
 * another host, so clock skew and wall-clock jumps do not matter.
 */
import { BadRequestError } from '../errors.js';
import { livePeer, withParts } from './model.js';
import { resolvePeer } from './resolve.js';
import { type Entry, type PeerId, type PeerRecord, type Ring, isValidPeerId } from './types.js';

/** Adds `me` to the ring (no space). No-op when present; throws PeerRetiredError when `me` was retired. */
export function join(ring: Ring, me: PeerId): Ring {
  if (!isValidPeerId(me)) throw new BadRequestError(`"${String(me)}" is not a valid peer id`);
  if (ring.peers.has(me)) { livePeer(ring, me); return ring; }
  return withParts(ring, { peers: new Map(ring.peers).set(me, { heartbeat: 0 }) });
}

/**
 * Renews `me`'s lease (heartbeat + 1) and adopts the tokens that resolve to
 * `me` through a retired peer, so that inherited space becomes explicitly
 * mine and heir chains stay short.
 */
export function heartbeat(ring: Ring, me: PeerId): Ring {
  const rec = livePeer(ring, me);
  const peers = new Map<PeerId, PeerRecord>(ring.peers).set(me, { heartbeat: rec.heartbeat + 1 });
  return withParts(ring, { peers, entries: adoptInherited(ring, me) });
}

/** Tokens stored under a retired peer but resolving to `me`, rewritten to `me` (one version up). */
export function adoptInherited(ring: Ring, me: PeerId): readonly Entry[] {
  let out: Entry[] | undefined;
  ring.entries.forEach((e, i) => {
    if (e.owner === me) return;
    const r = resolvePeer(ring, e.owner);
    if (r.owner !== me || r.orphaned) return;
    out ??= [...ring.entries];
    out[i] = { ...e, owner: me, version: e.version + 1 };
  });
  return out ?? ring.entries;
}

export function isRetired(ring: Ring, id: PeerId): boolean {
  return ring.peers.get(id)?.retired !== undefined;
}

export function heartbeatOf(ring: Ring, id: PeerId): number | undefined {
  return ring.peers.get(id)?.heartbeat;
}
