/**
 * RingNodes over real mesh routers and the in-memory network, in virtual
 * time (ring-node-kit.ts): start-up in every mode, joining, space requests,
 * fixed-IP claims. Invariants are checked after every 50 ms step.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONSENSUS_CHANNEL, RING_CHANNEL } from '../../src/core/ipam-ring/index.js';
import type { GossipData } from '../../src/core/mesh/gossip/interfaces.js';
import { livePeers, ownedRanges, ownedSize } from '../../src/core/ring/index.js';
import { Cluster, HEARTBEAT, size } from './ring-node-kit.js';

test('ring node: 3 seeded peers split the range, converge, and become ready', () => {
  const c = new Cluster({ seed: 1 });
  for (let i = 0; i < 3; i++) c.add({ nickname: `h${i}`, init: 'seed=h0,h1,h2', peers: i > 0 ? [0] : [] }, i * 100);
  c.runUntil(() => c.alive().length === 3 && c.settled(), 20_000, 'ready');
  const ring = c.ring(0)!;
  assert.deepEqual(livePeers(ring), ['h0', 'h1', 'h2']);
  assert.equal(ring.genesis.id, 'seed:h0,h1,h2');
  const sizes = ['h0', 'h1', 'h2'].map((p) => ownedSize(ring, p));
  assert.equal(sizes.reduce((a, b) => a + b, 0n), 256n);
  for (const s of sizes) assert.ok(s >= 80n && s <= 90n, `share ${s}`);
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(c.node(i).ownedRanges(), ownedRanges(ring, `h${i}`));
    const st = c.node(i).status();
    assert.equal(st.state, 'ready');
    assert.equal(st.peers.length, 3);
    assert.ok(st.peers.every((p) => p.live && (p.self || p.fresh)));
    assert.ok(c.hosts[i]!.persists >= 1);
  }
  // Heartbeats keep flowing as small deltas; everybody keeps seeing everybody.
  c.run(5 * HEARTBEAT);
  assert.ok(c.sameRing());
  assert.ok(c.alive().every((i) => c.node(i).state() === 'ready'));
});

test('ring node: 5 peers with consensus=5 starting at once agree on one ring (deferred until the first need)', () => {
  const c = new Cluster({ seed: 2 });
  for (let i = 0; i < 5; i++) c.add({ nickname: `p${i}`, init: 'consensus=5', peers: i > 0 ? [i - 1] : [] }, i * 30);
  c.run(3000);
  for (let i = 0; i < 5; i++) {
    assert.equal(c.node(i).state(), 'waiting-for-consensus');
    assert.equal(c.node(i).status().consensus, null, 'deferred: nobody needs addresses yet');
  }
  // The first need for addresses on one peer starts the round; the others join as acceptors.
  const r = c.node(3).askForSpace();
  assert.equal(r.status, 'not-ready');
  c.poke(3);
  c.runUntil(() => c.alive().every((i) => c.ring(i) !== undefined) && c.sameRing(), 20_000, 'one ring');
  const ring = c.ring(0)!;
  assert.match(ring.genesis.id, /^consensus:/);
  assert.ok(ring.genesis.founders >= 3, 'a quorum at least');
  assert.deepEqual(livePeers(ring), ['p0', 'p1', 'p2', 'p3', 'p4']);
  c.runUntil(() => c.alive().every((i) => c.node(i).state() === 'ready'), 10_000, 'ready');
  // Every peer either learned the decision itself or adopted the ring by gossip; at least the proposer learned it.
  const learned = [0, 1, 2, 3, 4].filter((i) => c.app(i).events.some((e) => e.type === 'consensus-decided' && e.genesis === ring.genesis.id));
  assert.ok(learned.length >= 1);
  for (let i = 0; i < 5; i++) {
    assert.equal(c.node(i).status().consensus, null, 'the table is dropped once there is a ring');
    assert.equal((JSON.parse(c.hosts[i]!.disk!) as { consensus?: unknown }).consensus, undefined, 'and no longer stored');
  }
});

test('ring node: a joiner adopts the existing ring (never creates its own), then gets a block when it needs one', () => {
  const c = new Cluster({ seed: 3 });
  for (let i = 0; i < 3; i++) c.add({ nickname: `h${i}`, init: 'seed=h0,h1,h2', peers: i > 0 ? [0] : [] });
  c.runUntil(() => c.alive().length === 3 && c.settled(), 20_000, 'seeded');
  // A peer launched later with the default mode (consensus with N = 2) and one launch peer.
  const j = c.add({ nickname: 'joiner', init: '', peers: [1] });
  c.runUntil(() => c.alive().length === 4 && c.settled(), 20_000, 'joined');
  const ring = c.ring(j)!;
  assert.equal(ring.genesis.id, 'seed:h0,h1,h2');
  assert.equal(ownedSize(ring, 'joiner'), 0n);
  assert.deepEqual(c.node(j).ownedRanges(), []);
  assert.equal(c.node(j).status().consensus, null, 'it never ran consensus');
  const r = c.node(j).askForSpace();
  assert.equal(r.status, 'sent');
  c.poke(j);
  c.runUntil(() => r.status === 'sent' && c.reply(j, r.id) !== undefined, 5000, 'answer');
  const e = c.reply(j, (r as { id: number }).id)!;
  assert.equal(e.outcome, 'granted');
  assert.equal(e.range!.last - e.range!.first + 1n, 16n);
  assert.deepEqual(c.node(j).ownedRanges(), [e.range]);
  c.runUntil(() => c.sameRing(), 5000, 'grant everywhere');
  assert.equal(ownedSize(c.ring(0)!, 'joiner'), 16n);
  const got = c.allocate(j, 16);
  assert.equal(got.length, 16);
});

test('ring node: a peer that runs out asks for space, gets a block from a donor, and refused/excluded donors are skipped', () => {
  const c = new Cluster({ seed: 4 });
  for (let i = 0; i < 3; i++) c.add({ nickname: `h${i}`, init: 'seed=h0,h1,h2', peers: i > 0 ? [0] : [] });
  c.runUntil(() => c.alive().length === 3 && c.settled(), 20_000, 'ready');
  const mine = size(c.node(0).ownedRanges());
  assert.equal(c.allocate(0, 1000).length, Number(mine), 'h0 fills its share');
  // Its free report reaches the others on the next heartbeat.
  c.run(3 * HEARTBEAT);
  const r = c.node(0).askForSpace({ exclude: ['h2'] });
  assert.equal(r.status, 'sent');
  assert.equal((r as { to: string }).to, 'h1', 'h2 was excluded');
  c.poke(0);
  c.runUntil(() => c.reply(0, (r as { id: number }).id) !== undefined, 5000, 'answer');
  const e = c.reply(0, (r as { id: number }).id)!;
  assert.equal(e.outcome, 'granted');
  assert.equal(e.peer, 'h1');
  c.runUntil(() => c.sameRing(), 5000, 'converged');
  assert.equal(c.allocate(0, 100).length, 16, 'the block is usable at once');
  // A donor keeps at least as much as it gives: fill h1 and h2 too, then nobody can give.
  c.allocate(1, 1000);
  c.allocate(2, 1000);
  c.run(3 * HEARTBEAT);
  const none = c.node(0).askForSpace();
  if (none.status === 'sent') {
    c.poke(0);
    c.runUntil(() => c.reply(0, none.id) !== undefined, 5000, 'answer');
    assert.equal(c.reply(0, none.id)!.outcome, 'refused');
    assert.equal(c.reply(0, none.id)!.reason, 'no-space');
  } else {
    assert.equal(none.status, 'no-donor');
  }
});

test('ring node: a fixed-IP claim in another peer\'s space is granted as a one-address block, and refused when in use', () => {
  const c = new Cluster({ seed: 5 });
  for (let i = 0; i < 3; i++) c.add({ nickname: `h${i}`, init: 'seed=h0,h1,h2', peers: i > 0 ? [0] : [] });
  c.runUntil(() => c.alive().length === 3 && c.settled(), 20_000, 'ready');
  const theirs = c.node(2).ownedRanges()[0]!;
  const want = theirs.first + 5n;
  assert.equal(c.node(0).isOwner(want), false);
  const r = c.node(0).claimAddress(want);
  assert.equal(r.status, 'sent');
  assert.equal((r as { to: string }).to, 'h2');
  c.poke(0);
  c.runUntil(() => c.reply(0, (r as { id: number }).id) !== undefined, 5000, 'answer');
  assert.equal(c.reply(0, (r as { id: number }).id)!.outcome, 'granted');
  assert.deepEqual(c.reply(0, (r as { id: number }).id)!.range, { first: want, last: want });
  assert.ok(c.node(0).isOwner(want) && c.node(0).mayAllocate(want));
  c.hosts[0]!.allocs.add(want);
  c.runUntil(() => c.sameRing(), 5000, 'converged');
  assert.equal(c.node(2).isOwner(want), false);
  // Claiming it again from elsewhere: its owner is now h0, which has it in use.
  const again = c.node(1).claimAddress(want);
  assert.equal(again.status, 'sent');
  assert.equal((again as { to: string }).to, 'h0');
  c.poke(1);
  c.runUntil(() => c.reply(1, (again as { id: number }).id) !== undefined, 5000, 'answer');
  assert.equal(c.reply(1, (again as { id: number }).id)!.outcome, 'refused');
  assert.equal(c.reply(1, (again as { id: number }).id)!.reason, 'in-use');
  // An address h2 has allocated is refused too; our own address is simply owned.
  c.hosts[2]!.allocs.add(want + 1n);
  const busy = c.node(1).claimAddress(want + 1n);
  c.poke(1);
  c.runUntil(() => busy.status === 'sent' && c.reply(1, busy.id) !== undefined, 5000, 'answer');
  assert.equal(busy.status === 'sent' && c.reply(1, busy.id)!.reason, 'in-use');
  assert.equal(c.node(1).claimAddress(c.node(1).ownedRanges()[0]!.first).status, 'owned');
});

test('ring node: garbage on the ring channels, through real routers, is dropped and counted; rings and connections are untouched', () => {
  const c = new Cluster({ seed: 6 });
  for (let i = 0; i < 3; i++) c.add({ nickname: `h${i}`, init: 'seed=h0,h1,h2', peers: i > 0 ? [0] : [] });
  c.runUntil(() => c.alive().length === 3 && c.settled(), 20_000, 'ready');
  const rings = [1, 2].map((i) => c.ring(i));
  const bad = (bytes: string[]): GossipData<never> => ({ encode: () => bytes.map((b) => Buffer.from(b)), merge: (o: never) => o }) as unknown as GossipData<never>;
  const garbage = ['{', '{"v":1,"t":"ring","from":"h0","ring":{}}', '{"v":1,"t":"delta","from":"h0","ring":{"v":1}}', '{"v":7}'];
  c.app(0).senders.get(RING_CHANNEL)!.gossipBroadcast(bad(garbage) as never);
  c.app(0).senders.get(CONSENSUS_CHANNEL)!.gossipBroadcast(bad(['[]', '{"v":1,"c":{"v":1,"n":2,"rows":[["b"],["a"]]}}']) as never);
  c.poke(0);
  c.run(200);
  for (const i of [1, 2]) {
    const stats = c.sim.node(c.hosts[i]!.address).router.getStats();
    assert.equal(stats.badPayloads, garbage.length + 2, `host ${i} counted every bad payload`);
    assert.equal(stats.protocolErrors, 0, 'and closed no connection over them');
  }
  for (const [k, i] of [1, 2].entries()) {
    assert.equal(c.ring(i)!.genesis.id, rings[k]!.genesis.id);
    assert.deepEqual(c.app(i).events.filter((e) => e.type === 'warning'), [], 'dropped by the decoder, before anything else');
    assert.equal(c.node(i).state(), 'ready');
  }
  c.run(2000);
  assert.ok(c.settled());
});

test('ring node: 6 peers over a lossy, reordering, chunking network converge, reclaim a dead peer, and grant space; anti-entropy repairs lost deltas', () => {
  const c = new Cluster({ seed: 7, link: { loss: 0.05, reorder: 0.05, chunking: true, delayMinMs: 1, delayMaxMs: 15 } });
  const names = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5'];
  for (let i = 0; i < 6; i++) c.add({ nickname: names[i]!, init: `seed=${names.join(',')}`, peers: i > 0 ? [i - 1] : [] }, i * 50);
  c.runUntil(() => c.alive().length === 6 && c.settled(), 30_000, 'settled');
  for (let i = 0; i < 6; i++) c.allocate(i, 5);
  c.kill(5, { silent: true, wipe: true });
  const alive = [0, 1, 2, 3, 4];
  c.runUntil(() => alive.every((i) => c.ring(i)!.peers.get('n5')?.retired) && c.settled(alive), 60_000, 'reclaimed and converged');
  assert.equal(ownedSize(c.ring(0)!, 'n5'), 0n);
  // Space requests work over the lossy network too (retrying after a timeout, as the daemon would).
  c.allocate(0, 1000);
  c.run(3 * HEARTBEAT);
  let granted = false;
  for (let attempt = 0; attempt < 5 && !granted; attempt++) {
    const r = c.node(0).askForSpace();
    assert.equal(r.status, 'sent');
    c.poke(0);
    c.runUntil(() => r.status === 'sent' && c.reply(0, r.id) !== undefined, 10_000, 'an answer or a timeout');
    granted = r.status === 'sent' && c.reply(0, r.id)!.outcome === 'granted';
  }
  assert.ok(granted);
  c.runUntil(() => c.settled(alive), 30_000, 'converged again');
  assert.equal(c.transientDuplicates, 0);
  for (const i of alive) assert.equal(c.sim.node(c.hosts[i]!.address).router.getStats().badPayloads, 0);
});
