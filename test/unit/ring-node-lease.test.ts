/**
 * RingNodes over the mesh simulator (ring-node-kit.ts) when peers die,
 * partitions split the cluster, operators act, and routers restart:
 * automatic reclaim after the lease, a 3|2 partition and its heal, rmpeer,
 * reset, restarts from the stored state (same id, or the next generation
 * after a retirement), and two rings of different genesis meeting.
 * The kit checks after every 50 ms step that every ring is sound, every
 * allocation lies in its holder's space, and hosts holding the same ring
 * never hold the same address.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BadRequestError, ConflictError, NotFoundError } from '../../src/core/errors.js';
import { livePeers, ownedRanges, ownedSize } from '../../src/core/ring/index.js';
import { fails } from '../helpers/assert-error.js';
import { Cluster, HEARTBEAT, LEASE, size } from './ring-node-kit.js';

function seeded(seed: number, n: number): Cluster {
  const c = new Cluster({ seed });
  const names = Array.from({ length: n }, (_, i) => `h${i}`);
  for (let i = 0; i < n; i++) c.add({ nickname: names[i]!, init: `seed=${names.join(',')}`, peers: i > 0 ? [0] : [] }, i * 20);
  c.runUntil(() => c.alive().length === n && c.settled(), 20_000, 'settled');
  return c;
}

test('ring node: a peer killed for good is reclaimed after the lease, by quorum, and its space is reused', () => {
  const c = seeded(11, 5);
  for (let i = 0; i < 5; i++) assert.equal(c.allocate(i, 10).length, 10);
  const deadSpace = ownedRanges(c.ring(0)!, 'h4');
  c.kill(4, { silent: true, wipe: true });
  const killedAt = c.sim.now;
  const alive = [0, 1, 2, 3];
  c.runUntil(() => alive.every((i) => c.ring(i)!.peers.get('h4')?.retired !== undefined), 4 * LEASE, 'reclaimed');
  const took = c.sim.now - killedAt;
  assert.ok(took >= LEASE, `not before the lease (${took} ms)`);
  assert.ok(took <= LEASE + 4 * HEARTBEAT, `soon after it (${took} ms)`);
  c.runUntil(() => c.sameRing(alive), 5000, 'converged');
  const ring = c.ring(0)!;
  const t = ring.peers.get('h4')!.retired!;
  assert.equal(t.reason, 'reclaim');
  assert.ok(alive.map((i) => `h${i}`).includes(t.heir));
  assert.equal(ownedSize(ring, 'h4'), 0n);
  const heir = Number(t.heir.slice(1));
  // The heir reports the gain as inherited and allocates there last; it can use it all.
  const gained = c.app(heir).changes.flatMap((ch) => ch.inherited);
  assert.deepEqual(gained, deadSpace);
  const ranges = c.node(heir).ownedRanges();
  assert.deepEqual(ranges.slice(-deadSpace.length), deadSpace, 'inherited space comes last');
  assert.ok(c.node(heir).status().owned.some((o) => o.inherited));
  const before = c.hosts[heir]!.allocs.size;
  c.allocate(heir, 1000);
  assert.equal(BigInt(c.hosts[heir]!.allocs.size - before), size(ranges) - BigInt(before));
  assert.ok(alive.some((i) => c.app(i).events.some((e) => e.type === 'reclaimed')));
  c.run(2000);
  assert.ok(c.sameRing(alive));
  assert.equal(c.transientDuplicates, 0);
});

test('ring node: partition 3|2 — the minority fences itself, only the majority reclaims; after the heal the minority rejoins under new ids and nothing is held twice', () => {
  const c = seeded(12, 5);
  for (let i = 0; i < 5; i++) c.allocate(i, 8);
  const major = [0, 1, 2];
  const minor = [3, 4];
  c.partition(major, minor);
  c.runUntil(() => minor.every((i) => c.node(i).state() === 'at-risk'), LEASE, 'minority fenced');
  assert.ok(c.sim.now < LEASE + 2000, 'fenced well before anybody can reclaim');
  for (const i of minor) assert.deepEqual(c.node(i).ownedRanges(), [], 'no new allocations on the minority side');
  for (const i of major) assert.equal(c.node(i).state(), 'ready');
  c.runUntil(() => major.every((i) => ['h3', 'h4'].every((p) => c.ring(i)!.peers.get(p)?.retired)), 4 * LEASE, 'majority reclaimed the minority');
  for (const i of minor) {
    assert.ok(!c.app(i).events.some((e) => e.type === 'reclaimed'), 'the minority never reclaims');
    assert.ok(livePeers(c.ring(i)!).includes('h0'), 'and never retired anyone');
  }
  // The majority hands out addresses from the inherited space meanwhile.
  c.runUntil(() => c.sameRing(major), 5000, 'majority converged');
  for (const i of major) c.allocate(i, 1000);
  c.run(1000);
  c.sim.heal();
  c.runUntil(() => c.alive().length === 5 && c.settled(), 30_000, 'healed');
  const ring = c.ring(0)!;
  assert.deepEqual(livePeers(ring), ['h0', 'h1', 'h2', 'h3.2', 'h4.2']);
  for (const i of minor) {
    assert.equal(c.node(i).me, `h${i}.2`);
    assert.ok(c.app(i).events.some((e) => e.type === 'rejoined' && e.previousId === `h${i}`));
    const ch = c.app(i).changes.find((x) => x.retired)!;
    assert.equal(ch.previousId, `h${i}`);
    assert.equal(ch.disowned.length, 8, 'its old allocations are reported as disowned');
    assert.equal(c.hosts[i]!.allocs.size, 0);
  }
  // One owner per address everywhere, and no address held twice at the end.
  const all = new Set<bigint>();
  for (const i of c.alive()) for (const x of c.hosts[i]!.allocs) { assert.ok(!all.has(x), `${x} held twice`); all.add(x); }
  for (const p of ['h3', 'h4']) assert.equal(ownedSize(ring, p), 0n);
});

test('ring node: rmpeer (refused for a live peer unless forced, by nickname, idempotent) and reset (heir acknowledges)', () => {
  const c = seeded(13, 4);
  const n0 = c.node(0);
  fails(() => n0.rmpeer('h3'), ConflictError, /^peer h3 is alive/);
  fails(() => n0.rmpeer('nobody'), NotFoundError, 'no ring peer "nobody"');
  fails(() => n0.rmpeer('h0'), BadRequestError, 'a peer cannot remove itself; use reset');
  const h3Space = ownedRanges(c.ring(0)!, 'h3');
  c.kill(3, { silent: true, wipe: true });
  c.run(LEASE / 2 + HEARTBEAT); // no longer fresh, long before the lease
  const r = n0.rmpeer('h3');
  c.poke(0);
  assert.deepEqual(r, { removed: 'h3', gained: h3Space });
  assert.deepEqual(n0.rmpeer('h3'), { removed: 'h3', gained: [] }, 'idempotent');
  c.runUntil(() => c.sameRing([0, 1, 2]), 5000, 'rmpeer everywhere');
  assert.equal(c.ring(1)!.peers.get('h3')!.retired!.reason, 'rmpeer');
  assert.equal(c.ring(1)!.peers.get('h3')!.retired!.heir, 'h0');
  // Racing rmpeer on another host is harmless: one tombstone wins everywhere.
  c.node(1).rmpeer('h3', { force: true });
  c.poke(1);
  c.runUntil(() => c.sameRing([0, 1, 2]), 5000, 'still one ring');

  // reset on h2: everything to a live heir, told directly; it acknowledges.
  c.allocate(2, 5);
  const h2Space = ownedSize(c.ring(2)!, 'h2');
  const res = c.node(2).reset();
  assert.equal(res.status, 'sent');
  c.poke(2);
  assert.equal(c.node(2).state(), 'left');
  assert.deepEqual(c.node(2).ownedRanges(), []);
  c.runUntil(() => res.status === 'sent' && c.reply(2, res.id) !== undefined, 5000, 'ack');
  const ack = c.reply(2, (res as { id: number }).id)!;
  assert.equal(ack.outcome, 'acked');
  const heir = ack.peer;
  c.runUntil(() => c.sameRing([0, 1]), 5000, 'reset everywhere');
  const ring = c.ring(0)!;
  assert.equal(ring.peers.get('h2')!.retired!.reason, 'reset');
  assert.equal(ring.peers.get('h2')!.retired!.heir, heir);
  assert.ok(ownedSize(ring, heir) >= h2Space);
  assert.equal(c.node(2).reset().status, 'not-ready', 'once left, nothing more to hand over');
  // A left node no longer heartbeats; the others do not care (it is retired, not suspected).
  c.run(LEASE + 1000);
  assert.deepEqual(c.node(0).status().votes, []);
  // The last live peer of a ring cannot hand over: it discards the ring.
  c.kill(1, { silent: true });
  c.run(LEASE / 2 + HEARTBEAT);
  c.node(0).rmpeer('h1');
  assert.equal(c.node(0).reset().status, 'discarded');
  assert.equal(c.node(0).state(), 'left');
  assert.equal(JSON.parse(c.hosts[0]!.disk!).ring, undefined);
});

test('ring node: restart from the stored state keeps id, ring and allocations; a peer retired while away comes back as the next generation', () => {
  const c = seeded(14, 4);
  c.allocate(1, 6);
  c.allocate(3, 6);
  const ringBefore = c.canon(1);
  // kill -9 and restart at once: same id, same space, nothing disowned.
  c.kill(1);
  c.restart(1);
  c.run(10);
  assert.equal(c.node(1).me, 'h1');
  assert.ok(c.canon(1) !== undefined);
  assert.equal(c.hosts[1]!.allocs.size, 6);
  assert.equal(c.node(1).state(), 'at-risk', 'just restarted: not sure of its space until it hears the others');
  c.runUntil(() => c.settled(), 10_000, 'back');
  assert.ok(ringBefore !== undefined);
  assert.equal(c.hosts[1]!.renumbered, 0);
  assert.deepEqual(c.app(1).changes.filter((x) => x.lost.length > 0), []);
  // h3 goes away long enough to be reclaimed, then comes back with its old disk.
  c.kill(3, { silent: true });
  c.runUntil(() => [0, 1, 2].every((i) => c.ring(i)!.peers.get('h3')?.retired), 4 * LEASE, 'reclaimed');
  c.restart(3);
  c.runUntil(() => c.alive().length === 4 && c.settled(), 20_000, 'rejoined');
  assert.equal(c.node(3).me, 'h3.2');
  assert.equal(c.hosts[3]!.renumbered, 6);
  assert.equal(JSON.parse(c.hosts[3]!.disk!).me, 'h3.2', 'the new id is stored');
  assert.deepEqual(livePeers(c.ring(0)!), ['h0', 'h1', 'h2', 'h3.2']);
  // The new generation is found by nickname, gets space, and can be removed by nickname.
  const r = c.node(3).askForSpace();
  assert.equal(r.status, 'sent');
  c.poke(3);
  c.runUntil(() => r.status === 'sent' && c.reply(3, r.id) !== undefined, 5000, 'answer');
  assert.equal(c.reply(3, (r as { id: number }).id)!.outcome, 'granted');
  c.kill(3, { silent: true });
  c.run(LEASE / 2 + HEARTBEAT);
  assert.equal(c.node(0).rmpeer('h3').removed, 'h3.2');
  c.poke(0);
  // It restarts with a stored ring from before the rmpeer: it runs as h3.2 (at risk) until it hears the cluster.
  c.runUntil(() => c.sameRing([0, 1, 2]), 5000, 'converged');
  c.restart(3);
  c.run(1);
  assert.equal(c.node(3).me, 'h3.2');
  assert.equal(c.node(3).state(), 'at-risk');
  c.runUntil(() => c.alive().length === 4 && c.settled(), 20_000, 'settled');
  assert.equal(c.node(3).me, 'h3.3');
  assert.deepEqual(livePeers(c.ring(0)!), ['h0', 'h1', 'h2', 'h3.3']);
  assert.equal(c.transientDuplicates, 0);
});

test('ring node: two rings of different genesis meet — a peer without allocations adopts the preceding one, a peer with allocations refuses and alerts until they are gone', () => {
  const c = new Cluster({ seed: 15 });
  // Cluster A: seeds a0, a1 (two founders). Cluster B: seeds b0, b1, launched towards a0 but cut off at first.
  c.add({ nickname: 'a0', init: 'seed=a0,a1' });
  c.add({ nickname: 'a1', init: 'seed=a0,a1', peers: [0] });
  c.add({ nickname: 'b0', init: 'seed=b0', peers: [0] });
  c.add({ nickname: 'b1', init: 'seed=b0', peers: [2] });
  c.partition([0, 1], [2, 3]);
  c.runUntil(() => c.alive().length === 4 && c.settled([0, 1]) && c.settled([2, 3]), 20_000, 'two rings');
  assert.equal(c.ring(2)!.genesis.id, 'seed:b0');
  c.allocate(2, 5);
  c.sim.heal();
  c.runUntil(() => c.node(2).state() === 'conflict' && c.ring(3)!.genesis.id === 'seed:a0,a1', 30_000, 'met');
  assert.deepEqual(c.node(2).ownedRanges(), [], 'no new allocations while in conflict');
  const ev = c.app(2).events.find((e) => e.type === 'genesis-conflict');
  assert.ok(ev && ev.type === 'genesis-conflict');
  assert.equal(ev.theirs.id, 'seed:a0,a1');
  assert.equal(ev.ours.id, 'seed:b0');
  const st = c.node(2).status();
  assert.equal(st.state, 'conflict');
  assert.equal(st.conflict!.theirs.id, 'seed:a0,a1');
  assert.equal(c.ring(2)!.genesis.id, 'seed:b0', 'refused: it keeps its ring');
  assert.equal(c.hosts[2]!.allocs.size, 5);
  // b1 had nothing allocated: it adopted the ring of cluster A (and its space there is nil).
  assert.equal(ownedSize(c.ring(3)!, 'b1'), 0n);
  // Others never adopt the losing ring.
  c.run(3000);
  assert.equal(c.ring(0)!.genesis.id, 'seed:a0,a1');
  // The operator decides: accept (the allocations are reported disowned: renumber).
  assert.equal(c.node(2).acceptForeignRing(), true);
  c.poke(2);
  assert.equal(c.hosts[2]!.allocs.size, 0);
  const ch = c.app(2).changes.find((x) => x.genesisReplaced)!;
  assert.equal(ch.disowned.length, 5);
  c.runUntil(() => c.settled(), 20_000, 'one ring');
  assert.deepEqual(livePeers(c.ring(0)!), ['a0', 'a1', 'b0', 'b1']);
});

test('ring node: conflicting rmpeers on the two sides of a partition make an orphaned span; after the heal the lowest live peer adopts it', () => {
  const c = seeded(16, 4);
  c.partition([0, 1], [2, 3]);
  c.run(LEASE / 2 + HEARTBEAT); // each side stops hearing the other
  // Operators on each side remove a peer of the other side, naming the executor as heir: h1 → h2 and h2 → h1.
  c.node(1).rmpeer('h2');
  c.node(2).rmpeer('h1');
  c.poke(1);
  c.poke(2);
  c.run(500);
  c.sim.heal();
  let sawOrphans = false;
  c.runUntil(() => {
    sawOrphans ||= c.alive().some((i) => c.node(i).status().orphans.length > 0);
    return c.alive().length === 4 && c.settled();
  }, 30_000, 'healed');
  assert.ok(sawOrphans, 'the heir cycle h1 ↔ h2 showed up as an orphaned span');
  const ring = c.ring(0)!;
  assert.deepEqual(livePeers(ring), ['h0', 'h1.2', 'h2.2', 'h3']);
  assert.deepEqual(c.node(0).status().orphans, []);
  assert.ok(ownedSize(ring, 'h0') > 80n, 'h0, the lowest live id, adopted the orphaned spans');
  assert.equal(ownedSize(ring, 'h0') + ownedSize(ring, 'h3') + ownedSize(ring, 'h1.2') + ownedSize(ring, 'h2.2'), 256n);
});
