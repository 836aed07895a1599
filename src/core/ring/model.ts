/**
 * Construction and lookup helpers shared by the ring operations. Every ring
 * is built through `makeRing`, which drops votes that no longer count (the
 * suspect heartbeated again or was retired, or the voter was retired), so
 * each ring value is in canonical form.
 */
import { type Cidr, cidrLast } from '../ip/cidr.js';
import { BadRequestError, NotFoundError, PeerRetiredError } from '../errors.js';
import type { Entry, Genesis, PeerId, PeerRecord, Ring } from './types.js';

export type Votes = ReadonlyMap<PeerId, ReadonlyMap<PeerId, number>>;

export const NO_VOTES: Votes = new Map();

/** A mutable memo slot on each (frozen) ring for derived data (resolve.ts); not part of the value. */
const DERIVED = Symbol('ring.derived');

export function derivedSlot(ring: Ring): object {
  return (ring as unknown as { [DERIVED]: object })[DERIVED];
}

export function makeRing(range: Cidr, genesis: Genesis, entries: readonly Entry[], peers: ReadonlyMap<PeerId, PeerRecord>, votes: Votes): Ring {
  return Object.freeze({
    [DERIVED]: {},
    range,
    family: range.family,
    first: range.base,
    last: cidrLast(range),
    genesis,
    entries,
    peers,
    votes: normalizeVotes(peers, votes),
  });
}

/** A copy of `ring` with some parts replaced. */
export function withParts(ring: Ring, parts: { entries?: readonly Entry[]; peers?: ReadonlyMap<PeerId, PeerRecord>; votes?: Votes }): Ring {
  return makeRing(ring.range, ring.genesis, parts.entries ?? ring.entries, parts.peers ?? ring.peers, parts.votes ?? ring.votes);
}

/** Keeps a vote only while it still says something: suspect live and not heartbeated since, voter live. */
export function normalizeVotes(peers: ReadonlyMap<PeerId, PeerRecord>, votes: Votes): Votes {
  if (votes.size === 0) return votes;
  let out: Map<PeerId, ReadonlyMap<PeerId, number>> | undefined;
  for (const [suspect, byVoter] of votes) {
    const s = peers.get(suspect);
    if (s === undefined || s.retired) { (out ??= new Map(votes)).delete(suspect); continue; }
    const counts = (voter: PeerId, hb: number): boolean => {
      if (hb !== s.heartbeat || voter === suspect) return false;
      const v = peers.get(voter);
      return v !== undefined && !v.retired;
    };
    let allOk = true;
    for (const [voter, hb] of byVoter) if (!counts(voter, hb)) { allOk = false; break; }
    if (allOk) continue;
    const kept = new Map<PeerId, number>();
    for (const [voter, hb] of byVoter) if (counts(voter, hb)) kept.set(voter, hb);
    out ??= new Map(votes);
    if (kept.size > 0) out.set(suspect, kept);
    else out.delete(suspect);
  }
  return out ?? votes;
}

export function totalSize(ring: Ring): bigint {
  return ring.last - ring.first + 1n;
}

/** Index of the token that holds `addr` (binary search; addr must be in range). */
export function entryIndexAt(entries: readonly Entry[], addr: bigint): number {
  let lo = 0;
  let hi = entries.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (entries[mid]!.start <= addr) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Last address of token `i`. */
export function entryLast(ring: Ring, entries: readonly Entry[], i: number): bigint {
  const next = entries[i + 1];
  return next ? next.start - 1n : ring.last;
}

export function inRange(ring: Ring, addr: bigint): boolean {
  return addr >= ring.first && addr <= ring.last;
}

export function assertInRange(ring: Ring, first: bigint, last: bigint): void {
  if (typeof first !== 'bigint' || typeof last !== 'bigint' || first > last || !inRange(ring, first) || !inRange(ring, last)) {
    throw new BadRequestError(`interval ${String(first)}-${String(last)} is not inside the ring's range`);
  }
}

/** The record of a peer that may act on the ring (known and not retired). */
export function livePeer(ring: Ring, id: PeerId, role = 'peer'): PeerRecord {
  const rec = ring.peers.get(id);
  if (!rec) throw new NotFoundError(`${role} "${id}" is not known to the ring`);
  if (rec.retired) {
    throw new PeerRetiredError(`${role} "${id}" was retired from the ring (${rec.retired.reason} by ${rec.retired.by}); its space went to ${rec.retired.heir}`, {
      hint: 'the router must rejoin under a new peer id',
    });
  }
  return rec;
}

export function isLive(ring: Ring, id: PeerId): boolean {
  const rec = ring.peers.get(id);
  return rec !== undefined && !rec.retired;
}

/** Live peer ids, sorted. */
export function livePeers(ring: Ring): PeerId[] {
  const out: PeerId[] = [];
  for (const [id, rec] of ring.peers) if (!rec.retired) out.push(id);
  return out.sort();
}
