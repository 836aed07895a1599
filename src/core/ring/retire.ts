/**
 * Taking space back from peers: automatic reclaim after a lease expired,
 * `rmpeer` by hand and `reset` (a peer leaving on purpose). All three write
 * one thing: a tombstone on the departed peer naming a heir. Resolution
 * (resolve.ts) then moves every token of that peer to the heir on every
 * replica. The operation is idempotent (retiring a retired peer is a no-op)
 * and racing executions merge deterministically (the tombstone with the
 * lowest heir id wins), so two peers can never both end up owning an address.
 *
 * Automatic reclaim needs a quorum weighted by owned address space: the
 * voters that saw the suspect's current heartbeat stall must together own
 * more than half of the range. Space is conserved (a peer only gains it by
 * grant from its owner or by a reclaim), so two sides of a partition can
 * never both hold more than half: at most one side reclaims, and only the
 * peers on the other side. See docs/ring.md, "Partitions".
 */
import { BadRequestError, ConflictError, NotFoundError } from '../errors.js';
import { isLive, livePeer, totalSize, withParts } from './model.js';
import { ownedSize, resolvePeer } from './resolve.js';
import { type Entry, type PeerId, type PeerRecord, type Retirement, type Ring, comparePeerIds } from './types.js';

/** Records that `voter` saw each suspect's lease expire at the suspect's current heartbeat. */
export function voteExpired(ring: Ring, voter: PeerId, suspects: Iterable<PeerId>): Ring {
  livePeer(ring, voter, 'voter');
  let votes: Map<PeerId, ReadonlyMap<PeerId, number>> | undefined;
  for (const s of suspects) {
    if (s === voter) continue;
    const rec = ring.peers.get(s);
    if (!rec || rec.retired) continue;
    const cur = (votes ?? ring.votes).get(s);
    if (cur?.get(voter) === rec.heartbeat) continue;
    votes ??= new Map(ring.votes);
    votes.set(s, new Map(cur ?? []).set(voter, rec.heartbeat));
  }
  return votes ? withParts(ring, { votes }) : ring;
}

export interface ReclaimCandidate {
  readonly suspect: PeerId;
  /** The suspect's heartbeat that every voter saw stall. */
  readonly atHeartbeat: number;
  /** Voters that count (fresh, see ReclaimOptions), sorted. */
  readonly voters: readonly PeerId[];
  /** Address space owned by those voters. */
  readonly weight: bigint;
  /** Whether weight is more than half of the range. */
  readonly quorum: boolean;
  /** Who inherits: a counted voter not itself suspected, with the least space, lowest id first. */
  readonly heir: PeerId | undefined;
}

export interface ReclaimOptions {
  /**
   * Which voters count, as judged by the caller's own lease tracker: only
   * voters whose heartbeat it saw advance recently (LeaseTracker.isFresh).
   * A vote cast before a partition by a peer now on the other side is
   * still in the ring; this filter is what keeps it from tipping a quorum on
   * the wrong side. Default: every vote counts (tests, rmpeer-like tools).
   */
  readonly fresh?: (voter: PeerId) => boolean;
}

/** Every suspect with at least one current vote, with its quorum status. */
export function reclaimCandidates(ring: Ring, opts: ReclaimOptions = {}): ReclaimCandidate[] {
  const total = totalSize(ring);
  const out: ReclaimCandidate[] = [];
  for (const [suspect, byVoter] of ring.votes) {
    const rec = ring.peers.get(suspect);
    if (!rec || rec.retired) continue;
    const voters = [...byVoter.keys()].filter((v) => !opts.fresh || opts.fresh(v)).sort();
    if (voters.length === 0) continue;
    let weight = 0n;
    for (const v of voters) weight += ownedSize(ring, v);
    const ranked = [...voters].sort((x, y) => {
      const sx = (ring.votes.get(x)?.size ?? 0) > 0 ? 1 : 0;
      const sy = (ring.votes.get(y)?.size ?? 0) > 0 ? 1 : 0;
      if (sx !== sy) return sx - sy;
      const ox = ownedSize(ring, x);
      const oy = ownedSize(ring, y);
      if (ox !== oy) return ox < oy ? -1 : 1;
      return comparePeerIds(x, y);
    });
    out.push({ suspect, atHeartbeat: rec.heartbeat, voters, weight, quorum: 2n * weight > total, heir: ranked[0] });
  }
  return out.sort((x, y) => comparePeerIds(x.suspect, y.suspect));
}

export function reclaimable(ring: Ring, opts: ReclaimOptions = {}): ReclaimCandidate[] {
  return reclaimCandidates(ring, opts).filter((c) => c.quorum);
}

/**
 * Retires every suspect that has a quorum and for which `executor` is one of
 * the counted voters (it observed the expiry itself). Candidates are computed
 * once from the input ring, so the result does not depend on processing order.
 */
export function reclaimExpired(ring: Ring, executor: PeerId, opts: ReclaimOptions = {}): { ring: Ring; reclaimed: ReclaimCandidate[] } {
  livePeer(ring, executor, 'executor');
  const due = reclaimable(ring, opts).filter((c) => c.voters.includes(executor));
  let peers: Map<PeerId, PeerRecord> | undefined;
  for (const c of due) {
    const rec = ring.peers.get(c.suspect)!;
    (peers ??= new Map(ring.peers)).set(c.suspect, { heartbeat: rec.heartbeat, retired: { heir: c.heir!, atHeartbeat: rec.heartbeat, by: executor, reason: 'reclaim' } });
  }
  return { ring: peers ? withParts(ring, { peers }) : ring, reclaimed: due };
}

function retire(ring: Ring, target: PeerId, r: Retirement): Ring {
  const rec = ring.peers.get(target);
  if (!rec) throw new NotFoundError(`peer "${target}" is not known to the ring`);
  if (rec.retired) return ring; // idempotent: the first tombstone seen stays
  return withParts(ring, { peers: new Map(ring.peers).set(target, { heartbeat: rec.heartbeat, retired: r }) });
}

/**
 * `weft rmpeer TARGET` run on peer `by`: `by` takes over everything TARGET
 * owns, without waiting for a lease or a quorum (the operator vouches that
 * TARGET is gone). Safe to run on several peers at once or twice.
 */
export function removePeer(ring: Ring, by: PeerId, target: PeerId): Ring {
  livePeer(ring, by, 'peer running rmpeer');
  if (by === target) throw new BadRequestError('a peer cannot rmpeer itself; use reset');
  const rec = ring.peers.get(target);
  if (!rec) throw new NotFoundError(`peer "${target}" is not known to the ring`);
  return retire(ring, target, { heir: by, atHeartbeat: rec.heartbeat, by, reason: 'rmpeer' });
}

/** The default heir for a leaving peer: the live peer with the least space, lowest id first. */
export function defaultHeir(ring: Ring, leaving: PeerId, candidates?: readonly PeerId[]): PeerId | undefined {
  let best: PeerId | undefined;
  let bestSize = 0n;
  for (const [id, rec] of ring.peers) {
    if (id === leaving || rec.retired) continue;
    if (candidates && !candidates.includes(id)) continue;
    const s = ownedSize(ring, id);
    if (best === undefined || s < bestSize || (s === bestSize && comparePeerIds(id, best) < 0)) { best = id; bestSize = s; }
  }
  return best;
}

/**
 * `weft reset` on peer `me`: hand everything to `heir` (default: see
 * defaultHeir, optionally restricted to peers the caller knows are alive)
 * and retire. The last live peer cannot reset this way: it simply discards
 * the ring.
 */
export function resetPeer(ring: Ring, me: PeerId, heir?: PeerId, aliveHint?: readonly PeerId[]): Ring {
  const rec = livePeer(ring, me);
  const h = heir ?? defaultHeir(ring, me, aliveHint) ?? defaultHeir(ring, me);
  if (h === undefined) throw new ConflictError(`peer "${me}" is the last live peer of the ring; nobody can inherit its space`, { hint: 'discard the ring instead' });
  if (h === me) throw new BadRequestError('a peer cannot be its own heir');
  livePeer(ring, h, 'heir');
  return retire(ring, me, { heir: h, atHeartbeat: rec.heartbeat, by: me, reason: 'reset' });
}

/**
 * Takes over the spans whose heir chain loops (see resolve.ts). Any live peer
 * may do it; racing adopters merge to the lowest id. The daemon runs it on
 * the lowest-id live peer when `orphanedRanges` is not empty.
 */
export function adoptOrphans(ring: Ring, me: PeerId): Ring {
  livePeer(ring, me);
  let out: Entry[] | undefined;
  ring.entries.forEach((e, i) => {
    if (!resolvePeer(ring, e.owner).orphaned) return;
    out ??= [...ring.entries];
    out[i] = { ...e, owner: me, version: e.version + 1 };
  });
  return out ? withParts(ring, { entries: out }) : ring;
}

/** Live peers, for callers that want to list who could inherit. */
export function liveMembers(ring: Ring): PeerId[] {
  return [...ring.peers.keys()].filter((id) => isLive(ring, id)).sort();
}
