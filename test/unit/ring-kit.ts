/** Shared helpers for the ring tests (test/unit/ring-*.test.ts): literals, a seeded PRNG, coverage checks. */
import assert from 'node:assert/strict';
import { parseCidr } from '../../src/core/ip/cidr.js';
import type { Interval } from '../../src/core/ip/ranges.js';
import { decodeRing, encodeRing, livePeers, ownedRanges, ringViolations, type Ring } from '../../src/core/ring/index.js';

export { seededRandom as prng } from '../../src/core/prng.js';

export function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

export const R24 = parseCidr('10.0.0.0/24');
export const BASE = R24.base;
export const a = (offset: number | bigint): bigint => BASE + BigInt(offset);

type PeerLit = number | [hb: number, heir: string, reason?: 'reclaim' | 'rmpeer' | 'reset', by?: string];

/**
 * A ring literal over 10.0.0.0/24: tokens [offset, owner, version, free?],
 * peers {id: heartbeat | [heartbeat, heir, reason?, by?]}, votes [suspect, voter]
 * (at the suspect's heartbeat). Built through the wire decoder.
 */
export function lit(tokens: [number, string, number, number?][], peers: Record<string, PeerLit>, votes: [string, string][] = [], genesis: [string, number] = ['seed:t', 1], range = '10.0.0.0/24'): Ring {
  const ids = Object.keys(peers).sort();
  const ix = (id: string): number => { const i = ids.indexOf(id); assert.ok(i >= 0, `unknown peer ${id} in literal`); return i; };
  const wirePeers = ids.map((id) => {
    const p = peers[id]!;
    if (typeof p === 'number') return [id, p];
    return [id, p[0], ix(p[1]), p[0], ix(p[3] ?? p[1]), p[2] ?? 'rmpeer'];
  });
  const sortedTokens = [...tokens].sort((x, y) => x[0] - y[0]);
  const size = 2 ** (32 - Number(range.split('/')[1]));
  const wireTokens = sortedTokens.map(([off, owner, version, free], i) => {
    const next = sortedTokens[i + 1]?.[0] ?? size;
    return [off.toString(16), ix(owner), version, (free ?? next - off).toString(16)];
  });
  const wireVotes = votes.map(([s, v]) => {
    const p = peers[s]!;
    return [ix(s), ix(v), typeof p === 'number' ? p : p[0]];
  }).sort((x, y) => x[0]! - y[0]! || x[1]! - y[1]!);
  return decodeRing({ v: 1, range, genesis, peers: wirePeers, tokens: wireTokens, votes: wireVotes });
}

/** Owner map as "offset-offset:peer" strings, easy to read in failures. */
export function layout(ring: Ring): string[] {
  const out: string[] = [];
  const ids = new Set<string>([...ring.peers.keys()]);
  const spans: [bigint, bigint, string][] = [];
  for (const id of ids) for (const r of ownedRanges(ring, id)) spans.push([r.first, r.last, id]);
  spans.sort((x, y) => (x[0] < y[0] ? -1 : 1));
  for (const [f, l, id] of spans) out.push(`${f - ring.first}-${l - ring.first}:${id}`);
  return out;
}

export function canon(ring: Ring): string {
  return JSON.stringify(encodeRing(ring));
}

/**
 * The invariants, checked independently of the implementation's own
 * segments: per-peer owned ranges are pairwise disjoint and together cover
 * the range exactly once; the structural checks pass; a codec round trip is
 * lossless.
 */
export function assertSound(ring: Ring, ctx = ''): void {
  const v = ringViolations(ring);
  assert.deepEqual(v, [], `${ctx}: ${v.join('; ')}`);
  const all: Interval[] = [];
  for (const id of ring.peers.keys()) all.push(...ownedRanges(ring, id));
  all.sort((x, y) => (x.first < y.first ? -1 : x.first > y.first ? 1 : 0));
  let expect = ring.first;
  for (const iv of all) {
    assert.equal(iv.first, expect, `${ctx}: gap or overlap at ${iv.first - ring.first}`);
    expect = iv.last + 1n;
  }
  assert.equal(expect, ring.last + 1n, `${ctx}: range not covered to the end`);
}

export function assertRoundTrip(ring: Ring): void {
  const wire = JSON.parse(JSON.stringify(encodeRing(ring))) as unknown;
  assert.equal(canon(decodeRing(wire)), canon(ring));
}

export function live(ring: Ring): string[] {
  return livePeers(ring);
}
