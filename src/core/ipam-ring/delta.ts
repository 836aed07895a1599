/**
 * Deltas: what changed between two rings of the same genesis, as a
 * *sub-ring*. A sub-ring is a ring value holding only some of the tokens,
 * peer records and votes of the full ring (always the token at the range
 * start, and every peer record its parts reference). The ring state is a
 * join-semilattice that is a product of per-token registers, per-peer
 * records and votes, so joining a full ring with any sub-ring of another
 * ring of the same genesis is exactly `merge`: the sub-ring travels in the
 * ordinary RingWire form and is applied with `merge`.
 *
 * A sub-ring is never anybody's ring: its tokens do not describe ownership
 * (the token at the range start seems to own everything up to the next
 * token it happens to hold). Receivers apply a delta only on top of a ring
 * of the same genesis and range (`canApplyDelta`), and ignore it otherwise;
 * the full ring arrives with anti-entropy.
 */
import { makeRing } from '../ring/model.js';
import { compareGenesis, samePeerRecord } from '../ring/order.js';
import { type Entry, type PeerId, type PeerRecord, type Ring, sameRange } from '../ring/index.js';

function sameEntry(a: Entry | undefined, b: Entry): boolean {
  return a !== undefined && (a === b || (a.start === b.start && a.owner === b.owner && a.version === b.version && a.free === b.free));
}

function sameVoteMap(a: ReadonlyMap<PeerId, number> | undefined, b: ReadonlyMap<PeerId, number>): boolean {
  if (a === b) return true;
  if (!a || a.size !== b.size) return false;
  for (const [v, hb] of b) if (a.get(v) !== hb) return false;
  return true;
}

export function sameGenesis(a: Ring, b: Ring): boolean {
  return sameRange(a, b) && compareGenesis(a.genesis, b.genesis) === 0;
}

/** May `delta` be merged into `ring`? Only on top of a ring of the same genesis and range. */
export function canApplyDelta(ring: Ring | undefined, delta: Ring): ring is Ring {
  return ring !== undefined && sameGenesis(ring, delta);
}

/**
 * The sub-ring of `after` that brings a holder of `before` up to `after`,
 * or undefined when `after` holds nothing that `before` lacks. Both rings
 * must have the same genesis and range (otherwise send `after` whole).
 */
export function ringDelta(before: Ring, after: Ring): Ring | undefined {
  if (before === after) return undefined;
  if (!sameGenesis(before, after)) throw new RangeError('a delta needs two rings of the same genesis');
  const entries: Entry[] = [];
  if (before.entries !== after.entries) {
    let i = 0;
    for (const e of after.entries) {
      while (i < before.entries.length && before.entries[i]!.start < e.start) i++;
      const b = before.entries[i];
      if (!(b && b.start === e.start && sameEntry(b, e))) entries.push(e);
    }
  }
  const peerIds = new Set<PeerId>();
  if (before.peers !== after.peers) {
    for (const [id, rec] of after.peers) {
      const b = before.peers.get(id);
      if (b === rec || (b && samePeerRecord(b, rec))) continue;
      peerIds.add(id);
    }
  }
  const votes = new Map<PeerId, ReadonlyMap<PeerId, number>>();
  if (before.votes !== after.votes) for (const [s, m] of after.votes) if (!sameVoteMap(before.votes.get(s), m)) votes.set(s, m);
  if (entries.length === 0 && peerIds.size === 0 && votes.size === 0) return undefined;
  return subRing(after, entries, peerIds, votes);
}

/** A sub-ring of `ring` with these tokens, peers and votes, closed over every reference. */
export function subRing(ring: Ring, entries: readonly Entry[], peerIds: Iterable<PeerId>, votes: ReadonlyMap<PeerId, ReadonlyMap<PeerId, number>>): Ring {
  const first = ring.entries[0]!;
  const list = entries[0]?.start === first.start ? [...entries] : [first, ...entries];
  const want = new Set<PeerId>(peerIds);
  for (const e of list) want.add(e.owner);
  for (const [s, m] of votes) { want.add(s); for (const v of m.keys()) want.add(v); }
  const peers = new Map<PeerId, PeerRecord>();
  const queue = [...want];
  while (queue.length > 0) {
    const id = queue.pop()!;
    if (peers.has(id)) continue;
    const rec = ring.peers.get(id);
    if (!rec) continue; // cannot happen for a sound ring
    peers.set(id, rec);
    if (rec.retired) queue.push(rec.retired.heir, rec.retired.by);
  }
  return makeRing(ring.range, ring.genesis, list, peers, votes);
}

/** A sub-ring with one peer's record (and the first token): the heartbeat delta. */
export function peerDelta(ring: Ring, id: PeerId): Ring {
  return subRing(ring, [], [id], new Map());
}

/**
 * True when `a` and `b` differ at most in heartbeat counters (nothing a
 * restart needs: heartbeats are relearnt from peers, and ours resumes above
 * whatever they hold). Used to skip persisting such changes.
 */
export function onlyHeartbeatsDiffer(a: Ring, b: Ring): boolean {
  if (a === b) return true;
  if (!sameGenesis(a, b) || a.peers.size !== b.peers.size || a.votes.size !== b.votes.size) return false;
  if (a.entries !== b.entries) {
    if (a.entries.length !== b.entries.length) return false;
    for (let i = 0; i < a.entries.length; i++) if (!sameEntry(a.entries[i], b.entries[i]!)) return false;
  }
  for (const [id, rb] of b.peers) {
    const ra = a.peers.get(id);
    if (!ra) return false;
    if (ra.retired !== rb.retired && !(ra.retired && rb.retired && samePeerRecord({ heartbeat: 0, retired: ra.retired }, { heartbeat: 0, retired: rb.retired }))) return false;
  }
  for (const [s, m] of b.votes) if (!sameVoteMap(a.votes.get(s), m)) return false;
  return true;
}
