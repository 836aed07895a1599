/**
 * Effective ownership. A token's stored owner may be retired; its addresses
 * then belong to the heir named in the tombstone, or that heir's heir, and so
 * on. Resolution is a pure function of the ring, so a retirement moves all of
 * a peer's space at once on every replica, including tokens that the retired
 * peer wrote concurrently in another partition.
 *
 * A heir chain can only loop after conflicting manual operations (rmpeer of
 * A on one side of a partition, rmpeer of B naming A on the other). The loop
 * still resolves to one owner, the lowest id on the cycle, and the span is
 * flagged `orphaned` until a live peer adopts it (retire.ts adoptOrphans).
 */
import type { Interval } from '../ip/ranges.js';
import { NotFoundError } from '../errors.js';
import { derivedSlot, entryIndexAt, entryLast, inRange } from './model.js';
import type { PeerId, Ring, Segment } from './types.js';

export interface Resolution {
  readonly owner: PeerId;
  readonly orphaned: boolean;
}

/** Per-ring memo of derived data, kept in a slot that makeRing puts on every ring (see model.ts). */
interface Derived {
  resolved?: Map<PeerId, Resolution>;
  segments?: readonly Segment[];
  sizes?: ReadonlyMap<PeerId, bigint>;
}

function derived(ring: Ring): Derived {
  return derivedSlot(ring) as Derived;
}

export function resolvePeer(ring: Ring, id: PeerId): Resolution {
  const rec = ring.peers.get(id);
  if (rec && !rec.retired) return { owner: id, orphaned: false };
  const d = derived(ring);
  const memo = (d.resolved ??= new Map());
  const hit = memo.get(id);
  if (hit) return hit;
  const path: PeerId[] = [];
  const seen = new Set<PeerId>();
  let cur = id;
  let res: Resolution;
  for (;;) {
    const known = memo.get(cur);
    if (known) { res = known; break; }
    const r = ring.peers.get(cur);
    if (!r) { res = { owner: cur, orphaned: true }; break; }
    if (!r.retired) { res = { owner: cur, orphaned: false }; break; }
    if (seen.has(cur)) {
      const cycle = path.slice(path.indexOf(cur));
      res = { owner: cycle.reduce((m, p) => (p < m ? p : m)), orphaned: true };
      break;
    }
    seen.add(cur);
    path.push(cur);
    cur = r.retired.heir;
  }
  for (const p of path) memo.set(p, res);
  memo.set(id, res);
  return res;
}

/** The range as maximal spans of one effective owner, in address order. Covers the range exactly once. */
export function segments(ring: Ring): readonly Segment[] {
  const d = derived(ring);
  if (d.segments) return d.segments;
  const out: { first: bigint; last: bigint; owner: PeerId; orphaned: boolean }[] = [];
  const es = ring.entries;
  let prev: (typeof out)[number] | undefined;
  for (let i = 0; i < es.length; i++) {
    const e = es[i]!;
    const r = resolvePeer(ring, e.owner);
    const last = entryLast(ring, es, i);
    if (prev && prev.owner === r.owner && prev.orphaned === r.orphaned) prev.last = last;
    else { prev = { first: e.start, last, owner: r.owner, orphaned: r.orphaned }; out.push(prev); }
  }
  for (const seg of out) Object.freeze(seg);
  d.segments = Object.freeze(out);
  return d.segments;
}

/** The effective owner of one address. */
export function owner(ring: Ring, addr: bigint): PeerId {
  return ownerDetail(ring, addr).owner;
}

export function ownerDetail(ring: Ring, addr: bigint): Resolution {
  if (typeof addr !== 'bigint' || !inRange(ring, addr)) throw new NotFoundError(`address ${String(addr)} is outside the ring's range`);
  return resolvePeer(ring, ring.entries[entryIndexAt(ring.entries, addr)]!.owner);
}

/** The spans `peer` owns, sorted and coalesced. */
export function ownedRanges(ring: Ring, peer: PeerId): Interval[] {
  const out: Interval[] = [];
  for (const s of segments(ring)) if (s.owner === peer) out.push({ first: s.first, last: s.last });
  return out;
}

/** Address count per effective owner. */
export function ownedSizes(ring: Ring): ReadonlyMap<PeerId, bigint> {
  const d = derived(ring);
  if (d.sizes) return d.sizes;
  const m = new Map<PeerId, bigint>();
  for (const s of segments(ring)) m.set(s.owner, (m.get(s.owner) ?? 0n) + (s.last - s.first + 1n));
  d.sizes = m;
  return m;
}

export function ownedSize(ring: Ring, peer: PeerId): bigint {
  return ownedSizes(ring).get(peer) ?? 0n;
}

/** Does `peer` own every address of [first, last]? */
export function ownsAll(ring: Ring, peer: PeerId, first: bigint, last: bigint): boolean {
  for (const s of segments(ring)) {
    if (s.last < first || s.first > last) continue;
    if (s.owner !== peer || s.orphaned) return false;
  }
  return true;
}

/** Spans whose owner is a retired peer on a heir cycle (see adoptOrphans). */
export function orphanedRanges(ring: Ring): Interval[] {
  return segments(ring).filter((s) => s.orphaned).map((s) => ({ first: s.first, last: s.last }));
}
