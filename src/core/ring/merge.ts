/**
 * The join of two rings. Commutative, associative and idempotent:
 *  - different genesis: the preceding genesis's ring is kept whole (order.ts);
 *  - tokens: union by start; for one start the entry that wins compareEntries;
 *  - peers: union; per peer the highest heartbeat, tombstones are permanent,
 *    racing tombstones keep the lowest heir;
 *  - votes: union, per (suspect, voter) the highest heartbeat, then the
 *    votes that no longer count are dropped (model.ts normalizeVotes).
 * Returns `a` itself when `b` adds nothing to it (callers use that as
 * "nothing new": no re-gossip), and `b` when `a` adds nothing to `b`.
 */
import { formatCidr } from '../ip/cidr.js';
import { RingRangeMismatchError } from '../errors.js';
import { makeRing } from './model.js';
import { compareEntries, compareGenesis, joinPeerRecords, samePeerRecord } from './order.js';
import type { Entry, PeerId, PeerRecord, Ring } from './types.js';

export function sameRange(a: Ring, b: Ring): boolean {
  return a.family === b.family && a.first === b.first && a.last === b.last;
}

export function assertSameRange(a: Ring, b: Ring): void {
  if (!sameRange(a, b)) {
    throw new RingRangeMismatchError(`ring ranges differ: ${formatCidr(a.range)} vs ${formatCidr(b.range)}`, {
      hint: 'every peer must be launched with the same --ipalloc-range',
    });
  }
}

export function merge(a: Ring, b: Ring): Ring {
  if (a === b) return a;
  assertSameRange(a, b);
  const g = compareGenesis(a.genesis, b.genesis);
  if (g !== 0) return g < 0 ? a : b;

  // Tokens: a linear merge of two sorted lists (skipped when both share one list, as rings that differ only in heartbeats do).
  let entries: readonly Entry[] = a.entries;
  let aAdds = false; // a contributes something b lacks
  let bAdds = false;
  if (a.entries !== b.entries) {
    const out: Entry[] = [];
    let i = 0;
    let j = 0;
    const ea = a.entries;
    const eb = b.entries;
    while (i < ea.length || j < eb.length) {
      const x = ea[i];
      const y = eb[j];
      if (x && (!y || x.start < y.start)) { out.push(x); aAdds = true; i++; continue; }
      if (y && (!x || y.start < x.start)) { out.push(y); bAdds = true; j++; continue; }
      const c = x === y ? 0 : compareEntries(x!, y!);
      if (c > 0) { out.push(x!); aAdds = true; } else if (c < 0) { out.push(y!); bAdds = true; } else out.push(x!);
      i++; j++;
    }
    entries = !bAdds ? a.entries : !aAdds ? b.entries : out;
  }

  let peers: ReadonlyMap<PeerId, PeerRecord> = a.peers;
  if (a.peers !== b.peers) {
    let out: Map<PeerId, PeerRecord> | undefined; // copy-on-write
    let onlyInB = 0;
    for (const [id, rb] of b.peers) {
      const ra = a.peers.get(id);
      if (ra === rb) continue;
      if (!ra) { (out ??= new Map(a.peers)).set(id, rb); bAdds = true; onlyInB++; continue; }
      const joined = joinPeerRecords(ra, rb);
      if (joined !== ra) { (out ??= new Map(a.peers)).set(id, joined); if (!samePeerRecord(joined, ra)) bAdds = true; }
      if (joined !== rb && !samePeerRecord(joined, rb)) aAdds = true;
    }
    // a has a peer b lacks unless all of a's peers were among b's.
    if (b.peers.size - onlyInB !== a.peers.size) aAdds = true;
    if (out) peers = out;
  }

  // Votes: copy-on-write union, highest heartbeat per (suspect, voter).
  let votes: Map<PeerId, ReadonlyMap<PeerId, number>> | undefined;
  if (a.votes !== b.votes) {
    for (const [suspect, byVoter] of b.votes) {
      const mine = a.votes.get(suspect);
      if (mine === byVoter) continue;
      let copy: Map<PeerId, number> | undefined;
      for (const [voter, hb] of byVoter) {
        const have = mine?.get(voter);
        if (have !== undefined && have >= hb) continue;
        copy ??= new Map(mine ?? []);
        copy.set(voter, hb);
      }
      if (copy) (votes ??= new Map(a.votes)).set(suspect, copy);
    }
  }

  // b brought nothing: a is the join (a is canonical, so its votes need no normalizing).
  if (!bAdds && votes === undefined) return a;
  const out = makeRing(a.range, a.genesis, entries, peers, votes ?? a.votes);
  // Vote differences only matter once structure is equal; compare them last.
  if (!bAdds && votesEqual(out.votes, a.votes)) return a;
  if (!aAdds && votesEqual(out.votes, b.votes)) return b;
  return out;
}

export function votesEqual(x: Ring['votes'], y: Ring['votes']): boolean {
  if (x === y) return true;
  if (x.size !== y.size) return false;
  for (const [s, m] of x) {
    const n = y.get(s);
    if (!n || n.size !== m.size) return false;
    for (const [v, hb] of m) if (n.get(v) !== hb) return false;
  }
  return true;
}

/** Merges any number of rings (same range). */
export function mergeAll(rings: readonly Ring[]): Ring | undefined {
  let acc: Ring | undefined;
  for (const r of rings) acc = acc ? merge(acc, r) : r;
  return acc;
}
