import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inCyclicSpan, nextPeerId, peerIdAt, prevPeerId, tryParsePeerId, writePeerIdAt } from '../../src/core/mesh/peer-id.js';
import { randomPeerId, seededRandom } from '../../src/core/mesh/sim/rng.js';
import { broadcastChildren, broadcastFanout, originSpan } from '../../src/core/mesh/topology/broadcast-tree.js';
import { computeRoutes } from '../../src/core/mesh/topology/routes.js';
import { Topology, applyDelta, diffEntries } from '../../src/core/mesh/topology/topology.js';
import type { TopologyEntry } from '../../src/core/mesh/wire/messages.js';

const id = (n: number): string => n.toString(16).padStart(16, '0');
const e = (peer: string, version: number, connections: readonly string[]): TopologyEntry => ({ peer, version, nickname: `n${peer.slice(-3)}`, address: undefined, connections: [...connections].sort() });

test('peer IDs: parse, order, wrap-around arithmetic, byte conversion', () => {
  assert.equal(tryParsePeerId('0A:1b:2C:3d:4E:5f:60:71'), '0a1b2c3d4e5f6071');
  assert.equal(tryParsePeerId('0000000000000000'), undefined, 'zero is reserved');
  assert.equal(tryParsePeerId('xyz'), undefined);
  assert.equal(nextPeerId('ffffffffffffffff'), '0000000000000000');
  assert.equal(prevPeerId('0000000000000000'), 'ffffffffffffffff');
  assert.equal(nextPeerId('00000000000000ff'), '0000000000000100');
  assert.ok(inCyclicSpan(id(5), id(3), id(9)));
  assert.ok(!inCyclicSpan(id(2), id(3), id(9)));
  assert.ok(inCyclicSpan(id(1), 'fffffffffffffff0', id(2)), 'wrapping span');
  const b = new Uint8Array(10);
  assert.ok(writePeerIdAt('0123456789abcdef', b, 1));
  assert.equal(peerIdAt(b, 1), '0123456789abcdef');
  assert.equal(peerIdAt(new Uint8Array(8), 0), undefined);
  assert.ok(!writePeerIdAt('0123456789ABCDEF', b, 0), 'only the canonical lowercase form');
});

test('topology merge: highest version wins, in any order, any number of times', () => {
  const rnd = seededRandom(3);
  const updates: TopologyEntry[] = [];
  for (let p = 1; p <= 6; p++) for (let v = 1; v <= 4; v++) updates.push(e(id(p), v, [id(((p + v) % 6) + 1)].filter((c) => c !== id(p))));
  const expected = new Topology(id(99), 'me', undefined, 0);
  expected.merge(updates);
  for (let round = 0; round < 30; round++) {
    const t = new Topology(id(99), 'me', undefined, 0);
    const shuffled = [...updates, ...updates].sort(() => rnd() - 0.5);
    for (const u of shuffled) t.merge([u]);
    assert.equal(t.fingerprint(), expected.fingerprint());
    for (let p = 1; p <= 6; p++) assert.equal(t.get(id(p))!.version, 4);
  }
  const t = new Topology(id(99), 'me', undefined, 0);
  assert.equal(t.merge([e(id(1), 3, [])]).changed.length, 1);
  assert.equal(t.merge([e(id(1), 3, [])]).changed.length, 0, 'repeats are not news');
  assert.equal(t.merge([e(id(1), 2, [id(2)])]).changed.length, 0, 'older versions lose');
  assert.deepEqual(t.merge([e(id(1), 4, [id(7)])]).unknown, [id(7)], 'connections to unknown peers are reported');
});

test('topology deltas: applied on the exact base, otherwise the full entry is asked for', () => {
  const base = e(id(1), 10, [id(2), id(3), id(4), id(5)]);
  const next = e(id(1), 11, [id(2), id(3), id(5), id(6)]);
  const d = diffEntries(base, next)!;
  assert.deepEqual({ added: d.added, removed: d.removed, baseVersion: d.baseVersion }, { added: [id(6)], removed: [id(4)], baseVersion: 10 });
  assert.deepEqual(applyDelta(base, d), { ...next, connections: [...next.connections] });
  assert.equal(diffEntries(e(id(1), 1, [id(2)]), e(id(1), 2, [id(3)])), undefined, 'a delta as big as the entry is not worth it');
  assert.equal(applyDelta(e(id(1), 9, base.connections), d), undefined, 'wrong base');
  assert.equal(applyDelta({ ...base, connections: [id(2)] }, d), undefined, 'removing what is not there means we are out of step');

  const t = new Topology(id(99), 'me', undefined, 0);
  assert.deepEqual(t.merge([d]).unknown, [id(1)], 'a delta for an unknown peer asks for the entry');
  t.merge([base]);
  const r = t.merge([d]);
  assert.equal(r.changed.length, 1);
  assert.deepEqual(t.get(id(1))!.connections, next.connections);
  assert.deepEqual([...r.unknown].sort(), [id(2), id(3), id(5), id(6)]);
});

test('own entry: versions follow the clock, and a forgotten higher version of ourselves is jumped over', () => {
  const t = new Topology(id(1), 'me', undefined, 5000);
  assert.equal(t.localEntry().version, 5000);
  t.setLocalConnections([id(2)]);
  const c = t.commitLocal(5001)!;
  assert.equal(c.entry.version, 5001);
  assert.equal(t.commitLocal(5002), undefined, 'nothing changed, nothing published');
  // Someone still holds version 9000 of us (we restarted with a clock that went back).
  t.merge([e(id(1), 9000, [id(3)])]);
  assert.ok(t.localDirty);
  assert.equal(t.commitLocal(5003)!.entry.version, 9001);
  assert.deepEqual(t.localEntry().connections, [id(2)], 'nobody else can rewrite our entry');
  assert.ok(t.noteOwnVersionSeen(9500));
  assert.equal(t.commitLocal(5004)!.entry.version, 9501);
  assert.ok(!t.noteOwnVersionSeen(9501));
});

test('digest and answer: full and partial requests', () => {
  const t = new Topology(id(1), 'me', undefined, 1);
  t.merge([e(id(2), 5, []), e(id(3), 7, [])]);
  const full = t.answer([{ peer: id(2), version: 5 }, { peer: id(3), version: 9 }]);
  assert.deepEqual(full.entries.map((x) => x.peer).sort(), [id(1)], 'only what they lack: our own entry');
  assert.ok(full.theyHaveNewer);
  const partial = t.answer([{ peer: id(3), version: 0 }], true);
  assert.deepEqual(partial.entries.map((x) => x.peer), [id(3)]);
  assert.ok(!partial.theyHaveNewer);
  assert.deepEqual(t.digest().map((d) => d.peer).sort(), [id(1), id(2), id(3)]);
});

test('unreachable peers are marked, removed after the timeout, and a tombstone keeps old copies out', () => {
  const t = new Topology(id(1), 'me', undefined, 0);
  t.merge([e(id(2), 5, [id(1)])]);
  t.markReachable(new Set([id(1)]), 1000);
  assert.equal(t.unreachableSince(id(2)), 1000);
  assert.equal(t.nextGarbageAt(60_000), 61_000);
  assert.deepEqual(t.collectGarbage(60_999, 60_000), []);
  assert.deepEqual(t.collectGarbage(61_000, 60_000), [id(2)]);
  assert.ok(!t.has(id(2)));
  assert.equal(t.merge([e(id(2), 5, [])]).changed.length, 0, 'the same version gossiped back stays out');
  assert.equal(t.merge([e(id(2), 6, [])]).changed.length, 1, 'a newer one (the peer is back) gets in');
  t.markReachable(new Set([id(1), id(2)]), 62_000);
  assert.equal(t.unreachableSince(id(2)), undefined);
});

test('routes: BFS over connections both ends list; the first hop may be any established connection', () => {
  // 1 — 2 — 3 — 4, and 3 claims 5 but 5 does not list 3.
  const t = new Topology(id(1), 'me', undefined, 0);
  t.merge([e(id(2), 1, [id(1), id(3)]), e(id(3), 1, [id(2), id(4), id(5)]), e(id(4), 1, [id(3)]), e(id(5), 1, [])]);
  const r = computeRoutes(t, new Set([id(2)]));
  assert.deepEqual([...r.members], [id(1), id(2), id(3), id(4)]);
  assert.equal(r.nextHop.get(id(4)), id(2));
  assert.equal(r.nextHop.get(id(2)), id(2));
  assert.ok(!r.reachable.has(id(5)), 'a one-sided connection carries nothing');
  assert.deepEqual([...computeRoutes(t, new Set()).members], [id(1)], 'no connection of ours, no routes');
});

/** Simulates one broadcast from `origin`: every node forwards per its own membership view. */
function flood(views: Map<string, string[]>, origin: string, fanout: (n: number) => number): Map<string, number> {
  const got = new Map<string, number>();
  const queue: { node: string; first: string; last: string }[] = [];
  const span = originSpan(origin);
  const ov = views.get(origin)!;
  for (const c of broadcastChildren(ov, origin, span.first, span.last, fanout(ov.length))) queue.push({ node: c.head, first: c.spanFirst, last: c.spanLast });
  let sent = 0;
  while (queue.length > 0) {
    const q = queue.shift()!;
    sent++;
    assert.ok(sent < 100_000, 'a broadcast never loops');
    got.set(q.node, (got.get(q.node) ?? 0) + 1);
    const view = views.get(q.node)!;
    const children = broadcastChildren(view, q.node, q.first, q.last, fanout(view.length));
    assert.ok(children.length <= fanout(view.length));
    for (const c of children) queue.push({ node: c.head, first: c.spanFirst, last: c.spanLast });
  }
  return got;
}

test('broadcast tree: with consistent views every member gets exactly one copy, fan-out ≤ 2·log2(n), shallow', () => {
  const rnd = seededRandom(11);
  for (const n of [1, 2, 3, 7, 50, 300]) {
    const members = new Set<string>();
    while (members.size < n) members.add(randomPeerId(rnd));
    const sorted = [...members].sort();
    const views = new Map(sorted.map((m) => [m, sorted]));
    for (const origin of sorted.slice(0, 5)) {
      const got = flood(views, origin, broadcastFanout);
      assert.equal(got.size, n - 1, `n=${n}: everyone but the origin`);
      for (const [node, count] of got) {
        assert.equal(count, 1, `${node} got one copy`);
        assert.notEqual(node, origin);
      }
    }
  }
  assert.equal(broadcastFanout(100), 14);
  assert.equal(broadcastFanout(500), 18);
});

test('broadcast tree: inconsistent views never loop nor duplicate; a node only misses what its forwarders did not know', () => {
  const rnd = seededRandom(5);
  const all: string[] = [];
  while (all.length < 120) all.push(randomPeerId(rnd));
  all.sort();
  for (let round = 0; round < 20; round++) {
    // Each node knows a random 80-100 % of the others.
    const views = new Map(all.map((m) => [m, all.filter((x) => x === m || rnd() < 0.8 + 0.2 * (round / 20))]));
    const origin = all[Math.floor(rnd() * all.length)]!;
    const got = flood(views, origin, (n) => broadcastFanout(n));
    for (const count of got.values()) assert.equal(count, 1);
    assert.ok(!got.has(origin));
    assert.ok(got.size > all.length * 0.5, `most nodes reached (${got.size})`);
  }
});
