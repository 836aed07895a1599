/**
 * Free-space hints and donations of fixed-size blocks.
 *
 * Unlike Weave (which donates up to half of the donor's free space), a donor
 * hands out one aligned block of a fixed size (Calico-style, default /26 for
 * IPv4). Space moves in small pieces: a peer that received space holds
 * about what it asked for, so little is stranded until a dead peer's lease
 * expires, and space handed on stays spread out.
 */
import { bits, type Family } from '../ip/addr.js';
import { InvalidConfigError } from '../errors.js';
import type { Interval } from '../ip/ranges.js';
import { entryLast, isLive, livePeer, withParts } from './model.js';
import { ownedRanges, resolvePeer } from './resolve.js';
import type { Entry, PeerId, Ring } from './types.js';

/** Block size for a prefix length, e.g. (4, 26) → 64 addresses. */
export function blockSizeFromPrefix(family: Family, prefix: number): bigint {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits(family)) throw new InvalidConfigError(`/${prefix} is not a valid IPv${family} block prefix`);
  return 1n << BigInt(bits(family) - prefix);
}

/** The default donation block: /26 for IPv4 (64 addresses), /122 for IPv6 (also 64). */
export function defaultBlockSize(_family: Family): bigint {
  return 64n;
}

/**
 * The owner records how many addresses are free in each of its tokens
 * (advisory; peers use it to choose whom to ask for space). Rewrites only the
 * tokens whose count changed, one version up; returns the same ring when
 * nothing changed. `freeOf(first, last)` comes from the local allocator.
 */
export function reportFree(ring: Ring, me: PeerId, freeOf: (first: bigint, last: bigint) => bigint): Ring {
  livePeer(ring, me);
  let out: Entry[] | undefined;
  const es = ring.entries;
  for (let i = 0; i < es.length; i++) {
    const e = es[i]!;
    const r = resolvePeer(ring, e.owner);
    if (r.owner !== me || r.orphaned) continue;
    const last = entryLast(ring, es, i);
    let free = freeOf(e.start, last);
    const span = last - e.start + 1n;
    if (typeof free !== 'bigint' || free < 0n) free = 0n;
    if (free > span) free = span;
    if (free === e.free && e.owner === me) continue;
    out ??= [...es];
    out[i] = { start: e.start, owner: me, version: e.version + 1, free };
  }
  return out ? withParts(ring, { entries: out }) : ring;
}

/** Advisory free count of everything `peer` owns. */
export function freeFor(ring: Ring, peer: PeerId): bigint {
  return freeByPeer(ring, true).get(peer) ?? 0n;
}

/** A token's advisory free count, clamped to its span (a merge may have shortened the span since it was reported). */
function clampedFree(ring: Ring, i: number): bigint {
  const e = ring.entries[i]!;
  const span = entryLast(ring, ring.entries, i) - e.start + 1n;
  return e.free < span ? e.free : span;
}

/** Advisory free count per live peer. */
export function freeByPeer(ring: Ring, includeRetired = false): Map<PeerId, bigint> {
  const m = new Map<PeerId, bigint>();
  ring.entries.forEach((e, i) => {
    const r = resolvePeer(ring, e.owner);
    if (!includeRetired && (r.orphaned || !isLive(ring, r.owner))) return;
    m.set(r.owner, (m.get(r.owner) ?? 0n) + clampedFree(ring, i));
  });
  return m;
}

export interface AskOptions {
  /** Peers not to ask (already refused, known unreachable). */
  readonly exclude?: ReadonlySet<PeerId>;
  /** Ignore peers with fewer free addresses than this (default 1; pass the block size to ask only those that can give a whole block). */
  readonly minFree?: bigint;
}

/**
 * Whom to ask for a block: a random live peer other than `me`, weighted by
 * its advisory free space, so requests spread out instead of piling on the
 * emptiest peer. `random` returns [0, 1) (inject it for determinism).
 */
export function choosePeerToAskForSpace(ring: Ring, me: PeerId, random: () => number, opts: AskOptions = {}): PeerId | undefined {
  const minFree = opts.minFree ?? 1n;
  const cands: [PeerId, bigint][] = [];
  let total = 0n;
  for (const [id, free] of [...freeByPeer(ring)].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (id === me || free < minFree || opts.exclude?.has(id)) continue;
    cands.push([id, free]);
    total += free;
  }
  if (cands.length === 0) return undefined;
  const SCALE = 1n << 53n;
  let x = Math.floor(random() * 2 ** 53);
  if (!(x >= 0)) x = 0;
  let pick = (BigInt(Math.min(x, 2 ** 53 - 1)) * total) / SCALE;
  for (const [id, free] of cands) {
    if (pick < free) return id;
    pick -= free;
  }
  return cands[cands.length - 1]![0];
}

/**
 * The block a donor gives away: a grid cell of `blockSize` addresses
 * (aligned from the start of the range) inside the donor's space that its
 * allocator reports unused, scanning from the top of the donor's largest
 * span down (the donor keeps its low addresses contiguous). When the donor
 * holds no whole cell (tiny ranges), a partial cell is offered. At most
 * `maxProbes` cells are tested. Undefined when nothing can be given.
 */
export function pickDonation(ring: Ring, donor: PeerId, blockSize: bigint, isUnused: (first: bigint, last: bigint) => boolean, maxProbes = 4096): Interval | undefined {
  if (typeof blockSize !== 'bigint' || blockSize < 1n) throw new InvalidConfigError('block size must be a positive bigint');
  const spans = ownedRanges(ring, donor).sort((a, b) => {
    const sa = a.last - a.first;
    const sb = b.last - b.first;
    return sa === sb ? (a.first < b.first ? -1 : 1) : sa > sb ? -1 : 1;
  });
  let probes = 0;
  const partial: Interval[] = [];
  const cellStart = (v: bigint): bigint => ring.first + ((v - ring.first) / blockSize) * blockSize;
  for (const s of spans) {
    // Whole cells, from the highest one inside the span down.
    for (let first = cellStart(s.last + 1n) - blockSize; first >= s.first && probes < maxProbes; first -= blockSize) {
      probes++;
      if (isUnused(first, first + blockSize - 1n)) return { first, last: first + blockSize - 1n };
    }
    // The pieces of cells cut by the span's ends, tried last.
    const tail = { first: cellStart(s.last) > s.first ? cellStart(s.last) : s.first, last: s.last };
    if (tail.last - tail.first + 1n < blockSize) partial.push(tail);
    const headLast = cellStart(s.first) + blockSize - 1n;
    const head = { first: s.first, last: headLast < s.last ? headLast : s.last };
    if (head.first !== tail.first && head.last - head.first + 1n < blockSize) partial.push(head);
  }
  for (const p of partial) {
    if (probes++ >= maxProbes) break;
    if (isUnused(p.first, p.last)) return p;
  }
  return undefined;
}
