import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterFingerprint } from '../../src/core/mesh/cluster-id.js';
import type { MeshConfigInput } from '../../src/core/mesh/config.js';
import { GCounter } from '../../src/core/mesh/gossip/g-counter.js';
import type { GossipReceiver, GossipSender } from '../../src/core/mesh/gossip/interfaces.js';
import { LwwMap, LwwMapData } from '../../src/core/mesh/gossip/lww-map.js';
import { Router } from '../../src/core/mesh/router.js';
import type { ConnHandle } from '../../src/core/mesh/router-types.js';
import { SimNetwork, simAddress, type SimNodeSpec } from '../../src/core/mesh/sim/sim-network.js';
import { CloseCode } from '../../src/core/mesh/wire/constants.js';
import { encodeHello } from '../../src/core/mesh/wire/hello-codec.js';
import { decodeMessage, encodeMessage } from '../../src/core/mesh/wire/message-codec.js';

interface App {
  counter: GCounter;
  map: LwwMap;
  mapSender: GossipSender<LwwMapData>;
  unicasts: { src: string; text: string }[];
}

const FAST: MeshConfigInput = { heartbeatIntervalMs: 1000, deadAfterMs: 3000, gossipIntervalMs: 5000, unreachableRemoveAfterMs: 20_000, backoff: { initialMs: 500, maxMs: 5000 } };
const id = (i: number): string => (0x1000 + i).toString(16).padStart(16, '0');

function net(opts: { seed?: number; log?: string[] } = {}): SimNetwork<App> {
  return new SimNetwork<App>({
    seed: opts.seed ?? 1,
    ...(opts.log ? { log: (level: string, m: string) => opts.log!.push(`${level} ${m}`) } : {}),
    setup: (router, spec, sim) => {
      const counter = new GCounter(spec.peer);
      counter.setSender(router.registerChannel('test.counter', counter));
      const map = new LwwMap(spec.peer, () => sim.now);
      const sender = router.registerChannel('test.map', map);
      map.setSender(sender);
      const unicasts: { src: string; text: string }[] = [];
      // Unicasts on the map channel are recorded, to test routing.
      map.onGossipUnicast = (src, payload) => {
        unicasts.push({ src, text: Buffer.from(payload).toString() });
      };
      return { counter, map, mapSender: sender, unicasts };
    },
  });
}

function spec(i: number, peers: number[], over: Partial<SimNodeSpec> = {}): SimNodeSpec {
  return { peer: id(i), nickname: `h${i}`, address: simAddress(i), peers: peers.map(simAddress), config: FAST, ...over };
}

const established = (sim: SimNetwork<App>, i: number): string[] => sim.node(simAddress(i)).router.connectedPeers();

test('two routers connect, exchange topology and state, and a broadcast reaches the other', () => {
  const sim = net();
  sim.add(spec(0, []));
  sim.add(spec(1, [0]));
  sim.run(2000);
  assert.deepEqual(established(sim, 0), [id(1)]);
  assert.deepEqual(established(sim, 1), [id(0)]);
  const a = sim.node(simAddress(0));
  assert.equal(a.router.topologyFingerprint(), sim.node(simAddress(1)).router.topologyFingerprint());
  a.app.counter.increment(3);
  sim.poke(simAddress(0));
  sim.run(100);
  assert.equal(sim.node(simAddress(1)).app.counter.value(), 3);
  const st = a.router.status();
  assert.equal(st.connections.length, 1);
  assert.equal(st.connections[0]!.state, 'established');
  assert.equal(st.peers[0]!.direct, true);
  assert.ok(a.events.some((e) => e.type === 'connection-up'));
});

test('simultaneous dials settle on one connection, the one the lower ID dialed, on both ends', () => {
  for (let seed = 1; seed <= 5; seed++) {
    const log: string[] = [];
    const sim = net({ seed, log });
    sim.add(spec(0, [1]));
    sim.add(spec(1, [0]));
    sim.run(5000);
    assert.deepEqual(established(sim, 0), [id(1)]);
    assert.deepEqual(established(sim, 1), [id(0)]);
    const conns = sim.node(simAddress(0)).router.status().connections.filter((c) => c.state === 'established');
    assert.equal(conns.length, 1);
    assert.equal(conns[0]!.outbound, true, 'h0 has the lower ID: its dial is the one kept');
    const ups = sim.node(simAddress(1)).events.filter((e) => e.type === 'connection-up').length;
    const downs = sim.node(simAddress(1)).events.filter((e) => e.type === 'connection-down').length;
    assert.equal(ups - downs, 1);
  }
});

test('a router told to connect to itself notices and never dials that address again', () => {
  const sim = net();
  sim.add(spec(0, [0, 1]));
  sim.add(spec(1, []));
  sim.run(10_000);
  const t = sim.node(simAddress(0)).router.status().targets.find((x) => x.address === simAddress(0))!;
  assert.equal(t.state, 'self');
  const dials = sim.stats.dials;
  sim.run(30_000);
  assert.ok(sim.stats.dials - dials < 3, 'no redial loop');
  assert.deepEqual(established(sim, 0), [id(1)]);
});

test('peers of another cluster, and a second peer with a taken nickname, are refused', () => {
  const log: string[] = [];
  const sim = net({ log });
  sim.add(spec(0, []));
  sim.add(spec(1, [0], { cluster: clusterFingerprint('10.99.0.0/16') }));
  sim.add(spec(2, [0]));
  sim.add(spec(3, [0], { nickname: 'h2' }));
  sim.run(8000);
  assert.ok(!established(sim, 0).includes(id(1)));
  assert.ok(established(sim, 0).includes(id(2)));
  assert.ok(!established(sim, 0).includes(id(3)), 'h2 is live, so a second "h2" is refused');
  const t1 = sim.node(simAddress(1)).router.status().targets[0]!;
  assert.match(t1.lastError ?? '', /ClusterMismatch/);
  assert.ok(t1.failures >= 2, 'retried with backoff');
  assert.ok(log.some((l) => l.startsWith('warn') && l.includes('NameCollision')));
});

test('partial connectivity: A and C cannot talk directly, B relays unicast and broadcast', () => {
  const sim = net();
  sim.blockLink(simAddress(0), simAddress(2));
  sim.add(spec(0, [1]));
  sim.add(spec(1, []));
  sim.add(spec(2, [1]));
  sim.run(10_000);
  const a = sim.node(simAddress(0));
  assert.deepEqual(established(sim, 0), [id(1)]);
  assert.equal(a.router.nextHop(id(2)), id(1));
  assert.deepEqual([...a.router.reachablePeers()], [id(0), id(1), id(2)]);
  assert.ok(a.app.mapSender.gossipUnicast(id(2), Buffer.from('hi C')));
  a.app.counter.increment(7);
  sim.poke(simAddress(0));
  sim.run(200);
  const c = sim.node(simAddress(2));
  assert.deepEqual(c.app.unicasts, [{ src: id(0), text: 'hi C' }]);
  assert.equal(c.app.counter.value(), 7);
  assert.equal(a.app.mapSender.gossipUnicast(id(9), Buffer.from('?')), false, 'no route, no send');
});

/** A raw connection into a router, for feeding it bytes by hand. */
function rawConnection(r: Router): { sink: ReturnType<Router['connectionOpened']>; sent: Buffer[]; closed: () => boolean } {
  const sent: Buffer[] = [];
  let closed = false;
  const handle: ConnHandle = { send: (f) => sent.push(Buffer.from(f)), close: () => { closed = true; } };
  return { sink: r.connectionOpened(handle, { outbound: false }), sent, closed: () => closed };
}

function standalone(log: string[]): Router {
  let now = 0;
  return new Router(
    { peer: id(0), nickname: 'h0', cluster: clusterFingerprint('10.32.0.0/12'), config: { ...FAST, maxFrameBytes: 32 * 1024 } },
    { now: () => (now += 1), random: () => 0.5, dial: () => undefined, log: (l, m) => log.push(`${l} ${m}`) },
  );
}

test('garbage, oversized and truncated input close that connection with a logged reason; the router carries on', () => {
  const log: string[] = [];
  const r = standalone(log);
  const cases: [string, Buffer][] = [
    ['garbage', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['oversized', Buffer.from([0, 0x10, 0, 0, 1])],
    ['wrong kind first', encodeMessage({ kind: 'heartbeat' }, 100)],
    ['bad hello', Buffer.from([0, 0, 0, 5, 1, 0x57, 0x45, 0x46, 0x00])],
  ];
  for (const [what, bytes] of cases) {
    const c = rawConnection(r);
    c.sink.data(bytes);
    assert.ok(c.closed(), what);
    const close = decodeMessage(c.sent.at(-1)!.subarray(4), 1);
    assert.ok(close.kind === 'close' && close.code === CloseCode.ProtocolError, what);
  }
  assert.equal(r.getStats().protocolErrors, 4);
  assert.equal(log.filter((l) => l.startsWith('warn') && l.includes('ProtocolError')).length, 4);

  // A well-behaved peer still gets in afterwards.
  const good = rawConnection(r);
  good.sink.data(encodeHello({
    minVersion: 1, maxVersion: 1, peer: id(5), nickname: 'h5', cluster: clusterFingerprint('10.32.0.0/12'), connSeq: 1, heartbeatMs: 1000,
    explicit: false, fresh: true, address: undefined, extensions: new Map(),
  }));
  good.sink.data(encodeMessage({ kind: 'accept' }, 100));
  assert.deepEqual(r.connectedPeers(), [id(5)]);
  // Truncation at end of stream.
  good.sink.data(Buffer.from([0, 0, 0, 9, 0x20]));
  good.sink.closed('reset');
  assert.deepEqual(r.connectedPeers(), []);
  assert.ok(log.some((l) => l.includes('MESH_TRUNCATED')));
});

test('a channel payload that does not decode is dropped and counted, not blamed on the neighbour', () => {
  const log: string[] = [];
  const r = standalone(log);
  const map = new LwwMap(id(0), () => 1);
  const sender = r.registerChannel('test.map', map);
  map.setSender(sender);
  const c = rawConnection(r);
  c.sink.data(encodeHello({
    minVersion: 1, maxVersion: 1, peer: id(5), nickname: 'h5', cluster: clusterFingerprint('10.32.0.0/12'), connSeq: 1, heartbeatMs: 1000,
    explicit: false, fresh: false, address: undefined, extensions: new Map(),
  }));
  c.sink.data(encodeMessage({ kind: 'accept' }, 100));
  c.sink.data(encodeMessage({ kind: 'gossip', channel: 'test.map', payload: Buffer.from('{"nope":1}') }, 1000));
  c.sink.data(encodeMessage({ kind: 'gossip', channel: 'unknown.channel', payload: Buffer.from('x') }, 1000));
  c.sink.data(encodeMessage({ kind: 'gossip', channel: 'test.map', payload: new LwwMapData(new Map([['k', { value: 'v', ts: 1, origin: id(5) }]])).encode()[0]! }, 1000));
  assert.equal(r.getStats().badPayloads, 1);
  // A channel that hands the router a payload over the frame limit loses that message, nothing more.
  const big = new LwwMapData(new Map([['big', { value: 'x'.repeat(60_000), ts: 9, origin: id(0) }]]));
  sender.gossipNeighbourSubset(big);
  assert.equal(r.getStats().dropped, 1);
  assert.ok(log.some((l) => l.includes('dropped a gossip message')));
  assert.ok(!c.closed());
  assert.equal(map.get('k'), 'v');
  assert.ok(!c.closed());
  assert.throws(() => r.registerChannel('test.map', map), /already registered/);
  assert.throws(() => r.registerChannel('Bad Name', map as GossipReceiver<LwwMapData>), /not allowed/);
});

test('connection limit: discovery stops at the limit, operator-requested peers still get in', () => {
  const sim = net();
  const cfg = { ...FAST, connLimit: 3 };
  for (let i = 0; i < 7; i++) sim.add(spec(i, i === 0 ? [] : [0], { config: cfg }), i * 300);
  sim.run(20_000);
  for (let i = 1; i < 7; i++) assert.ok(established(sim, i).length >= 1, `h${i} joined`);
  assert.ok(established(sim, 0).length > 3, 'h0 took operator-requested dials beyond its limit');
  assert.ok(established(sim, 0).length <= 6, '…but never more than twice it');
  for (let i = 1; i < 7; i++) assert.ok(established(sim, i).length <= 3, `h${i} stays within the limit`);
  for (let i = 0; i < 7; i++) assert.equal(sim.node(simAddress(i)).router.freshRoutes().members.length, 7, 'everyone reaches everyone through relays');
});

test('a silent peer is declared dead after the timeout, marked unreachable, then forgotten', () => {
  const sim = net();
  sim.add(spec(0, []));
  sim.add(spec(1, [0]));
  sim.add(spec(2, [0]));
  sim.run(5000);
  sim.kill(simAddress(2), { silent: true });
  sim.run(3500);
  const a = sim.node(simAddress(0));
  assert.deepEqual(established(sim, 0), [id(1)], 'heartbeat timeout closed the dead connection');
  assert.ok(a.events.some((e) => e.type === 'connection-down' && e.code === CloseCode.HeartbeatTimeout));
  sim.run(1000);
  const p2 = a.router.status().peers.find((p) => p.peer === id(2))!;
  assert.equal(p2.reachable, false);
  assert.ok(p2.unreachableSince !== undefined);
  sim.run(25_000);
  assert.equal(a.router.status().peers.find((p) => p.peer === id(2)), undefined, 'removed after unreachableRemoveAfterMs');
  assert.ok(a.events.some((e) => e.type === 'peer-removed' && e.peer === id(2)));
  assert.ok(!a.router.status().targets.some((t) => t.kind === 'discovered' && t.peer === id(2)), 'its discovered address is dropped too');
});

test('shutdown closes every connection with a reason and the peers see it at once', () => {
  const sim = net();
  sim.add(spec(0, []));
  sim.add(spec(1, [0]));
  sim.run(2000);
  sim.node(simAddress(1)).router.shutdown();
  sim.run(50);
  assert.deepEqual(established(sim, 0), []);
  assert.ok(sim.node(simAddress(0)).events.some((e) => e.type === 'connection-down' && e.code === CloseCode.Normal));
});
