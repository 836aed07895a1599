import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ClusterEndpoint, EndpointsChannel, EndpointsData, type HostRecord, MAX_ENDPOINTS_PER_HOST, recordNewer } from '../../src/core/cluster/endpoints.js';
import { clusterHosts } from '../../src/core/cluster/state.js';
import { chooseUnderlay } from '../../src/core/cluster/underlay.js';
import type { GossipSender } from '../../src/core/mesh/index.js';
import { MeshMalformedError } from '../../src/core/errors.js';

const A = '00000000000000aa';
const B = '00000000000000bb';
const ep = (n: number, over: Partial<ClusterEndpoint> = {}): ClusterEndpoint => ({ network: 'weft', mac: `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`, ips: [`10.40.0.${n}`], containerId: `c${n}`, ifname: 'eth0', ...over });

function capture(): { sent: EndpointsData[]; sender: GossipSender<EndpointsData> } {
  const sent: EndpointsData[] = [];
  return { sent, sender: { gossipBroadcast: (d) => { sent.push(d); }, gossipNeighbourSubset: () => undefined, gossipUnicast: () => true } };
}

test('publish broadcasts only changes, and a peer merges them', () => {
  const a = new EndpointsChannel(A, 'a', 1);
  const { sent, sender } = capture();
  a.setSender(sender);
  a.publish('192.0.2.1', [ep(1), ep(2)]);
  a.publish('192.0.2.1', [ep(2), ep(1)]);
  assert.equal(sent.length, 1, 'same set in another order is not a change');
  a.publish('192.0.2.1', [ep(1)]);
  assert.equal(sent.length, 2);
  const b = new EndpointsChannel(B, 'b', 1);
  for (const d of sent) for (const p of d.encode()) b.onGossipBroadcast(A, p);
  assert.deepEqual(b.get(A)!.endpoints.map((e) => e.containerId), ['c1']);
  assert.equal(b.get(A)!.underlay, '192.0.2.1');
  // Old news: onGossip returns nothing to relay.
  assert.equal(b.onGossip(sent[0]!.encode()[0]!), undefined);
});

test('a restarted host (new incarnation) wins over its old record even with a lower seq', () => {
  const old: HostRecord = { peer: A, nickname: 'a', incarnation: 1, seq: 50, underlay: '192.0.2.1', removed: false, endpoints: [ep(1)] };
  const fresh: HostRecord = { peer: A, nickname: 'a', incarnation: 2, seq: 1, underlay: '192.0.2.1', removed: false, endpoints: [] };
  assert.ok(recordNewer(fresh, old));
  assert.ok(!recordNewer(old, fresh));
  const tomb: HostRecord = { ...old, seq: 51, removed: true, endpoints: [] };
  assert.ok(recordNewer(tomb, old));
  assert.ok(recordNewer({ ...old, seq: 51 }, tomb), 'a live record beats a tombstone of the same step');
});

test('remove writes a tombstone; the host itself re-asserts when it hears of it', () => {
  const a = new EndpointsChannel(A, 'a', 3);
  const b = new EndpointsChannel(B, 'b', 1);
  const ca = capture();
  const cb = capture();
  a.setSender(ca.sender);
  b.setSender(cb.sender);
  a.publish('192.0.2.1', [ep(1)]);
  b.onGossipBroadcast(A, ca.sent[0]!.encode()[0]!);
  assert.ok(b.remove(A));
  assert.equal(b.get(A), undefined);
  assert.ok(!b.remove(A), 'idempotent');
  assert.ok(!b.remove(B), 'never removes itself');
  a.onGossipBroadcast(B, cb.sent.at(-1)!.encode()[0]!);
  const reassert = ca.sent.at(-1)!;
  assert.equal(reassert.hosts.get(A)!.removed, false);
  b.onGossipBroadcast(A, reassert.encode()[0]!);
  assert.deepEqual(b.get(A)!.endpoints.map((e) => e.containerId), ['c1']);
});

test('merge is commutative, associative and idempotent on random records', () => {
  let seed = 7;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const rec = (): EndpointsData => {
    const m = new Map<string, HostRecord>();
    for (const p of [A, B, '00000000000000cc']) if (rnd(2)) m.set(p, { peer: p, nickname: 'x', incarnation: rnd(3), seq: rnd(4), underlay: null, removed: rnd(2) === 0, endpoints: [ep(rnd(5) + 1)] });
    return new EndpointsData(m);
  };
  const key = (d: EndpointsData): string => JSON.stringify([...d.hosts.entries()].sort());
  for (let i = 0; i < 300; i++) {
    const [x, y, z] = [rec(), rec(), rec()];
    assert.equal(key(x.merge(y)), key(y.merge(x)));
    assert.equal(key(x.merge(y).merge(z)), key(x.merge(y.merge(z))));
    assert.equal(key(x.merge(x)), key(x));
  }
});

test('malformed payloads are refused with MeshMalformedError', () => {
  const good = { p: A, n: 'a', i: 1, s: 1, u: '192.0.2.1', x: false, e: [['weft', '02:00:00:00:00:01', ['10.40.0.1'], 'c1', 'eth0', null]] };
  const enc = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v));
  assert.equal(EndpointsData.decode(enc({ v: 1, h: [good] })).hosts.size, 1);
  const bad: unknown[] = [
    'nope', [], { v: 2, h: [] }, { v: 1 }, { v: 1, h: {} }, { v: 1, h: [good], extra: 1 },
    { v: 1, h: [{ ...good, p: 'zz' }] }, { v: 1, h: [{ ...good, n: '-bad' }] }, { v: 1, h: [{ ...good, i: -1 }] }, { v: 1, h: [{ ...good, s: 1.5 }] }, { v: 1, h: [{ ...good, u: 'host' }] },
    { v: 1, h: [{ ...good, x: 'no' }] }, { v: 1, h: [{ ...good, e: [['weft', 'XX', [], 'c', 'eth0', null]] }] },
    { v: 1, h: [{ ...good, e: [['weft', '02:00:00:00:00:01', ['10.40.0.999'], 'c', 'eth0', null]] }] },
    { v: 1, h: [{ ...good, e: [['weft', '02:00:00:00:00:01', [], '', 'eth0', null]] }] },
    { v: 1, h: [{ ...good, e: [['weft', '02:00:00:00:00:01', [], 'c', 'averyveryverylongifname', null]] }] },
    { v: 1, h: [{ ...good, e: [['', '02:00:00:00:00:01', [], 'c', 'eth0', null]] }] },
    { v: 1, h: [{ ...good, e: Array.from({ length: MAX_ENDPOINTS_PER_HOST + 1 }, () => good.e[0]) }] },
  ];
  for (const b of bad) assert.throws(() => EndpointsData.decode(enc(b)), MeshMalformedError, JSON.stringify(b).slice(0, 80));
  assert.throws(() => EndpointsData.decode(Buffer.from([0xff, 0xfe])), MeshMalformedError);
});

test('clusterHosts joins topology and records: relayed via, unknown hosts listed unreachable', () => {
  const C = '00000000000000cc';
  const D = '00000000000000dd';
  const recs: HostRecord[] = [
    { peer: A, nickname: 'a', incarnation: 1, seq: 1, underlay: '192.0.2.1', removed: false, endpoints: [ep(1)] },
    { peer: C, nickname: 'c', incarnation: 1, seq: 1, underlay: '192.0.2.3', removed: false, endpoints: [ep(3)] },
    { peer: D, nickname: 'd', incarnation: 1, seq: 1, underlay: '192.0.2.4', removed: false, endpoints: [] },
  ];
  const hosts = clusterHosts(A, 'a', {
    peers: [
      { peer: C, nickname: 'c', address: undefined, version: 1, connections: [B], reachable: true, direct: false, nextHop: B, unreachableSince: undefined },
      { peer: B, nickname: 'b', address: undefined, version: 1, connections: [A, C], reachable: true, direct: true, nextHop: B, unreachableSince: undefined },
    ],
  }, recs);
  assert.deepEqual(hosts.map((h) => [h.nickname, h.self, h.reachable, h.direct, h.via, h.underlay]), [
    ['a', true, true, true, undefined, '192.0.2.1'],
    ['b', false, true, true, undefined, null],
    ['c', false, true, false, B, '192.0.2.3'],
    ['d', false, false, false, undefined, '192.0.2.4'],
  ]);
});

test('chooseUnderlay: advertised address, else first global IPv4 on an up non-weft link', () => {
  const links = [
    { name: 'lo', up: true, mtu: 65536, loopback: true, addresses: [] },
    { name: 'weft', up: true, mtu: 1450, loopback: false, kind: 'bridge', addresses: ['10.32.0.1'] },
    { name: 'down0', up: false, mtu: 1500, loopback: false, addresses: ['198.51.100.9'] },
    { name: 'eth1', up: true, mtu: 1500, loopback: false, addresses: ['2001:db8::1'] },
    { name: 'eth0', up: true, mtu: 9000, loopback: false, addresses: ['192.0.2.7'] },
  ];
  assert.deepEqual(chooseUnderlay(links), { ip: '192.0.2.7', dev: 'eth0', mtu: 9000 });
  assert.deepEqual(chooseUnderlay(links, '2001:db8::1'), { ip: '2001:db8::1', dev: 'eth1', mtu: 1500 });
  assert.throws(() => chooseUnderlay(links, '192.0.2.99'), /not an address of this host/);
  assert.throws(() => chooseUnderlay(links, 'x'), /not an IP address/);
  assert.equal(chooseUnderlay(links.slice(0, 3)), undefined);
});

test('relayNeeded: a relayed host, or two direct neighbours that are not connected to each other', async () => {
  const { relayNeeded } = await import('../../src/core/cluster/state.js');
  const h = (peer: string, o: { self?: boolean; direct?: boolean; via?: string; connections?: string[]; reachable?: boolean } = {}) => ({
    peer, nickname: peer, underlay: null, self: o.self ?? false, reachable: o.reachable ?? true, direct: o.direct ?? true, connections: o.connections ?? [], endpoints: [],
    ...(o.via ? { via: o.via } : {}),
  });
  // Full mesh of three: nothing to relay.
  assert.equal(relayNeeded([h('a', { self: true }), h('b', { connections: ['a', 'c'] }), h('c', { connections: ['a', 'b'] })]), false);
  // a reaches c only via b.
  assert.equal(relayNeeded([h('a', { self: true }), h('b', { connections: ['a', 'c'] }), h('c', { direct: false, via: 'b', connections: ['b'] })]), true);
  // b's view of the same: a and c are both its neighbours but not each other's.
  assert.equal(relayNeeded([h('b', { self: true }), h('a', { connections: ['b'] }), h('c', { connections: ['b'] })]), true);
  // Alone, or one neighbour: no.
  assert.equal(relayNeeded([h('a', { self: true })]), false);
  assert.equal(relayNeeded([h('a', { self: true }), h('b', { connections: ['a'] })]), false);
  // An unreachable host does not count.
  assert.equal(relayNeeded([h('b', { self: true }), h('a', { connections: ['b'] }), h('c', { reachable: false, direct: false })]), false);
});

test('relayNetworks: the networks two unconnected direct neighbours both have containers on', async () => {
  const { relayNetworks } = await import('../../src/core/cluster/state.js');
  const ep = (network: string) => ({ network, containerId: `c-${network}`, ifname: 'eth0', mac: '02:00:00:00:00:01', ips: ['10.0.0.1'] });
  const h = (peer: string, o: { self?: boolean; direct?: boolean; connections?: string[]; reachable?: boolean; nets?: string[] } = {}) => ({
    peer, nickname: peer, underlay: null, self: o.self ?? false, reachable: o.reachable ?? true, direct: o.direct ?? true, connections: o.connections ?? [], endpoints: (o.nets ?? []).map(ep),
  });
  // b between a and c (not connected to each other): the networks both have, not the others; b's own do not matter.
  assert.deepEqual(relayNetworks([h('b', { self: true, nets: ['mine'] }), h('a', { connections: ['b'], nets: ['weft', 'x', 'only-a'] }), h('c', { connections: ['b'], nets: ['x', 'weft', 'only-c'] })]), ['weft', 'x']);
  // a and c connected (either side says so): nothing to relay.
  assert.deepEqual(relayNetworks([h('b', { self: true }), h('a', { connections: ['b', 'c'], nets: ['weft'] }), h('c', { connections: ['b'], nets: ['weft'] })]), []);
  // c unreachable or not a direct neighbour: not carried here.
  assert.deepEqual(relayNetworks([h('b', { self: true }), h('a', { connections: ['b'], nets: ['weft'] }), h('c', { reachable: false, direct: false, nets: ['weft'] })]), []);
  assert.deepEqual(relayNetworks([h('b', { self: true }), h('a', { connections: ['b'], nets: ['weft'] }), h('c', { direct: false, nets: ['weft'] })]), []);
  // Three neighbours, two pairs unconnected.
  assert.deepEqual(relayNetworks([h('s', { self: true }), h('a', { connections: ['s', 'c'], nets: ['n1'] }), h('b', { connections: ['s'], nets: ['n1', 'n2'] }), h('c', { connections: ['s', 'a'], nets: ['n2'] })]), ['n1', 'n2']);
});

test('heardFromAll: every awaited underlay address is a directly connected host with a record', async () => {
  const { heardFromAll } = await import('../../src/core/cluster/state.js');
  const h = (peer: string, underlay: string | null, o: { self?: boolean; reachable?: boolean; direct?: boolean } = {}) => ({
    peer, nickname: peer, underlay, self: o.self ?? false, reachable: o.reachable ?? true, direct: o.direct ?? true, connections: [], endpoints: [],
  });
  const awaited = new Set(['192.0.2.1', '192.0.2.3']);
  assert.equal(heardFromAll(awaited, [h('me', '192.0.2.2', { self: true }), h('a', '192.0.2.1'), h('c', '192.0.2.3')]), true);
  assert.equal(heardFromAll(awaited, [h('me', '192.0.2.2', { self: true }), h('a', '192.0.2.1')]), false, 'c not known yet');
  assert.equal(heardFromAll(awaited, [h('me', '192.0.2.2', { self: true }), h('a', '192.0.2.1'), h('c', null)]), false, 'c connected, its record not yet here');
  assert.equal(heardFromAll(awaited, [h('me', '192.0.2.2', { self: true }), h('a', '192.0.2.1'), h('c', '192.0.2.3', { reachable: false })]), false, 'c only remembered');
  assert.equal(heardFromAll(awaited, [h('me', '192.0.2.2', { self: true }), h('a', '192.0.2.1'), h('c', '192.0.2.3', { direct: false })]), false, 'c heard of through a, not connected yet');
  assert.equal(heardFromAll(new Set(['192.0.2.2']), [h('me', '192.0.2.2', { self: true })]), false, 'our own address does not count');
  assert.equal(heardFromAll(new Set(), []), true);
});
