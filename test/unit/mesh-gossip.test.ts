import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MeshMalformedError } from '../../src/core/errors.js';
import { GCounter, GCounterData } from '../../src/core/mesh/gossip/g-counter.js';
import type { GossipData, GossipSender } from '../../src/core/mesh/gossip/interfaces.js';
import { LwwMap, LwwMapData, newerThan } from '../../src/core/mesh/gossip/lww-map.js';
import { neighbourSubset, randomSubset } from '../../src/core/mesh/gossip/neighbour-subset.js';
import { seededRandom } from '../../src/core/mesh/sim/rng.js';

const A = 'aaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbb';
const C = 'cccccccccccccccc';

function recorder<D extends GossipData<D>>(): GossipSender<D> & { broadcasts: D[] } {
  const broadcasts: D[] = [];
  return {
    broadcasts,
    gossipUnicast: () => true,
    gossipBroadcast: (d) => broadcasts.push(d),
    gossipNeighbourSubset: () => undefined,
  };
}

const counts = (o: Record<string, number>) => new GCounterData(new Map(Object.entries(o)));

test('g-counter: merges take the maximum per slot; onGossip returns exactly what grew', () => {
  const cases: { initial: Record<string, number>; incoming: Record<string, number>; delta: Record<string, number> | undefined; value: number }[] = [
    { initial: {}, incoming: { [A]: 3 }, delta: { [A]: 3 }, value: 3 },
    { initial: { [A]: 5 }, incoming: { [A]: 3 }, delta: undefined, value: 5 },
    { initial: { [A]: 5, [B]: 1 }, incoming: { [A]: 6, [B]: 1, [C]: 2 }, delta: { [A]: 6, [C]: 2 }, value: 9 },
  ];
  for (const c of cases) {
    const g = new GCounter(C);
    g.mergeData(counts(c.initial));
    const d = g.onGossip(counts(c.incoming).encode()[0]!);
    assert.deepEqual(d ? Object.fromEntries(d.counts) : undefined, c.delta);
    assert.equal(g.value(), c.value);
  }
  assert.deepEqual(Object.fromEntries(counts({ [A]: 1, [B]: 5 }).merge(counts({ [A]: 4 })).counts), { [A]: 4, [B]: 5 });
});

test('g-counter: local increments are broadcast as deltas of our own slot (two-step wiring)', () => {
  const g = new GCounter(A);
  g.increment();
  const s = recorder<GCounterData>();
  g.setSender(s);
  g.increment(4);
  assert.equal(g.value(), 5);
  assert.deepEqual(s.broadcasts.map((d) => Object.fromEntries(d.counts)), [{ [A]: 5 }]);
  assert.deepEqual(Object.fromEntries(g.gossip()!.counts), { [A]: 5 });
  assert.equal(new GCounter(B).gossip(), undefined, 'nothing to say when empty');
});

test('lww-map: the later write wins everywhere, ties by writer ID, deletes are tombstones', () => {
  assert.ok(newerThan({ value: 'x', ts: 2, origin: A }, { value: 'y', ts: 1, origin: B }));
  assert.ok(newerThan({ value: 'x', ts: 1, origin: B }, { value: 'y', ts: 1, origin: A }));
  assert.ok(!newerThan({ value: 'x', ts: 1, origin: A }, { value: 'y', ts: 1, origin: B }));
  let now = 100;
  const m1 = new LwwMap(A, () => now);
  const m2 = new LwwMap(B, () => now);
  m1.set('k', 'one');
  m2.set('k', 'two'); // same ms: B > A wins
  m1.mergeData(m2.gossip()!);
  m2.mergeData(m1.gossip()!);
  assert.equal(m1.get('k'), 'two');
  assert.equal(m1.fingerprint(), m2.fingerprint());
  now = 50; // a clock that jumped back still overwrites our own last value
  m1.delete('k');
  m2.mergeData(m1.gossip()!);
  assert.equal(m2.get('k'), undefined);
  assert.deepEqual(m2.entries(), []);
  assert.equal(m2.onGossip(m1.gossip()!.encode()[0]!), undefined, 'old news returns nothing');
});

test('lww-map: payloads are validated field by field', () => {
  const bad = [
    'not json', '[]', '{"e":[],"x":1}', '{"e":{}}', '{"e":[["k","v",1]]}', '{"e":[["","v",1,"aaaaaaaaaaaaaaaa"]]}',
    '{"e":[["k",5,1,"aaaaaaaaaaaaaaaa"]]}', '{"e":[["k","v",-1,"aaaaaaaaaaaaaaaa"]]}', '{"e":[["k","v",1.5,"aaaaaaaaaaaaaaaa"]]}',
    '{"e":[["k","v",1,"nope"]]}',
  ];
  for (const b of bad) assert.throws(() => LwwMapData.decode(Buffer.from(b)), MeshMalformedError, b);
  assert.throws(() => GCounterData.decode(Buffer.from('{"c":{"aaaaaaaaaaaaaaaa":-1}}')), MeshMalformedError);
  assert.throws(() => GCounterData.decode(Buffer.from([0xff, 0xfe])), MeshMalformedError);
});

test('lww-map: large states encode in chunks that each stand alone', () => {
  const m = new LwwMap(A, () => 1);
  for (let i = 0; i < 400; i++) m.set(`key-${i}`, 'v'.repeat(2000));
  const chunks = m.gossip()!.encode();
  assert.ok(chunks.length > 1);
  const other = new LwwMap(B, () => 1);
  for (const c of chunks) {
    assert.ok(c.length < 300 * 1024);
    other.onGossip(c);
  }
  assert.equal(other.fingerprint(), m.fingerprint());
});

test('neighbour subsets: about 2·log2(n), distinct, reproducible from the seed', () => {
  const ns = Array.from({ length: 60 }, (_, i) => i.toString(16).padStart(16, '0'));
  const pick = neighbourSubset(ns, 100, seededRandom(1));
  assert.equal(pick.length, 14);
  assert.equal(new Set(pick).size, 14);
  assert.deepEqual(neighbourSubset(ns, 100, seededRandom(1)), pick);
  assert.deepEqual(randomSubset([1, 2, 3], 10, seededRandom(2)).sort(), [1, 2, 3]);
});
