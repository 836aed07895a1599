import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vxlanNameFor, vxlanRelayNameFor } from '../../src/core/dataplane/names.js';
import { DATA_PORT_FLAGS, RELAY_PORT_FLAGS, assertVni, containerMtuFor, encapsulatedSize, planOverlay, relayVniFor, vniFor } from '../../src/core/dataplane/overlay-plan.js';
import type { OverlayInput } from '../../src/core/dataplane/overlay-types.js';
import { InvalidConfigError, VniConflictError } from '../../src/core/errors.js';
import { fails } from '../helpers/assert-error.js';

const N = 'blue';
const DX = vxlanNameFor(N);
const RX = vxlanRelayNameFor(N);

function input(over: Partial<OverlayInput> = {}): OverlayInput {
  return {
    localPeer: 'a',
    underlay: { ip: '192.0.2.1', dev: 'eth0' },
    networks: [{ name: N, bridge: 'wbblue', mtu: 1450 }],
    peers: [
      { peer: 'b', ip: '192.0.2.2' },
      { peer: 'c', ip: '192.0.2.3' },
    ],
    endpoints: [
      { network: N, peer: 'a', mac: '02:00:00:00:00:0a', ips: ['10.1.0.10'] },
      { network: N, peer: 'b', mac: '02:00:00:00:00:0b', ips: ['10.1.0.11/24', 'fd00::b'] },
      { network: N, peer: 'c', mac: '02:00:00:00:00:0c', ips: ['10.1.0.12'] },
    ],
    ...over,
  };
}

test('vniFor: deterministic, 1..2^23-1, distinct for distinct names (sample)', () => {
  assert.equal(vniFor('blue'), vniFor('blue'));
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const v = vniFor(`net-${i}`);
    assert.ok(v >= 1 && v < 0x800000, String(v));
    seen.add(v);
  }
  assert.ok(seen.size >= 1999); // a birthday collision among 2000 in 2^23 is possible but rare; this sample has none or one
});

test('relayVniFor flips bit 23 and is an involution', () => {
  assert.equal(relayVniFor(42), 42 + 0x800000);
  assert.equal(relayVniFor(relayVniFor(12345)), 12345);
  assert.notEqual(relayVniFor(vniFor('x')), vniFor('x'));
});

test('assertVni rejects 0, > 24 bits, non-integers and 2^23 (relay VNI 0)', () => {
  for (const v of [0, -1, 0x1000000, 1.5, 0x800000, Number.NaN]) fails(() => assertVni(v), InvalidConfigError, /out of range/);
  assertVni(1);
  assertVni(0xffffff);
});

test('container MTU = underlay − 50 (IPv4) / − 70 (IPv6); encapsulated size is the inverse', () => {
  assert.equal(containerMtuFor(1500), 1450);
  assert.equal(containerMtuFor(9000), 8950);
  assert.equal(containerMtuFor(1500, 6), 1430);
  assert.equal(encapsulatedSize(1450), 1500);
  assert.equal(encapsulatedSize(1430, 6), 1500);
  fails(() => containerMtuFor(100), InvalidConfigError, /container mtu/);
  fails(() => containerMtuFor(70000), InvalidConfigError, /underlay mtu/);
});

test('plan: devices, FDB, bridge entries, neighbours and replication for two direct peers', () => {
  const p = planOverlay(input());
  const vni = vniFor(N);
  const dev = { network: N, port: 4789, local: '192.0.2.1', dev: 'eth0', learning: false, proxy: true, mtu: 1450, master: 'wbblue', up: true };
  assert.deepEqual(p.desired.devices, [
    { ...dev, name: RX, role: 'relay', vni: relayVniFor(vni), portFlags: RELAY_PORT_FLAGS },
    { ...dev, name: DX, role: 'data', vni, portFlags: DATA_PORT_FLAGS },
  ].sort((x, y) => (x.name < y.name ? -1 : 1)));
  assert.deepEqual(p.desired.fdb, [
    { dev: DX, mac: '00:00:00:00:00:00', dst: '192.0.2.2', permanent: true },
    { dev: DX, mac: '00:00:00:00:00:00', dst: '192.0.2.3', permanent: true },
    { dev: DX, mac: '02:00:00:00:00:0b', dst: '192.0.2.2', permanent: true },
    { dev: DX, mac: '02:00:00:00:00:0c', dst: '192.0.2.3', permanent: true },
  ]);
  assert.deepEqual(p.desired.masterFdb, [
    { dev: DX, mac: '02:00:00:00:00:0b', static: true },
    { dev: DX, mac: '02:00:00:00:00:0c', static: true },
  ]);
  assert.deepEqual(p.desired.neigh, [
    { dev: DX, ip: '10.1.0.11', mac: '02:00:00:00:00:0b', permanent: true },
    { dev: DX, ip: '10.1.0.12', mac: '02:00:00:00:00:0c', permanent: true },
    { dev: DX, ip: 'fd00::b', mac: '02:00:00:00:00:0b', permanent: true },
  ]);
  assert.ok(p.desired.filter !== null && p.desired.filter.rules === 4);
  assert.equal(p.endpoints, 2);
  assert.deepEqual(p.notes, []);
  assert.deepEqual(p.routes, [
    { peer: 'b', ip: '192.0.2.2', nextHop: '192.0.2.2' },
    { peer: 'c', ip: '192.0.2.3', nextHop: '192.0.2.3' },
  ]);
});

test('plan: a peer reached via a relay goes through the relay device to the relay, with neighbours on both devices and no replication entry', () => {
  const p = planOverlay(input({ peers: [{ peer: 'b', ip: '192.0.2.2' }, { peer: 'c', ip: '192.0.2.3', via: 'b' }] }));
  assert.deepEqual(p.desired.fdb.filter((e) => e.mac === '02:00:00:00:00:0c'), [{ dev: RX, mac: '02:00:00:00:00:0c', dst: '192.0.2.2', permanent: true }]);
  assert.deepEqual(p.desired.masterFdb.filter((e) => e.mac === '02:00:00:00:00:0c'), [{ dev: RX, mac: '02:00:00:00:00:0c', static: true }]);
  assert.deepEqual(p.desired.neigh.filter((e) => e.ip === '10.1.0.12').map((e) => e.dev).sort(), [DX, RX].sort());
  assert.deepEqual(p.desired.fdb.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst), ['192.0.2.2']);
  assert.deepEqual(p.routes.find((r) => r.peer === 'c'), { peer: 'c', ip: '192.0.2.3', nextHop: '192.0.2.2', via: 'b' });
});

test('plan: without relaying, relayed peers are left out with a note, and there is neither relay device nor filter', () => {
  const p = planOverlay(input({ peers: [{ peer: 'b', ip: '192.0.2.2' }, { peer: 'c', ip: '192.0.2.3', via: 'b' }] }), { relay: false });
  assert.deepEqual(p.desired.devices.map((d) => d.role), ['data']);
  assert.equal(p.desired.filter, null);
  assert.ok(!p.desired.fdb.some((e) => e.mac === '02:00:00:00:00:0c'));
  assert.deepEqual(p.notes.map((n) => n.code), ['RELAY_DISABLED']);
});

test('plan: bad relays are notes, not errors (unknown, relayed relay, self, local peer)', () => {
  const peers = [
    { peer: 'b', ip: '192.0.2.2', via: 'c' },
    { peer: 'c', ip: '192.0.2.3', via: 'd' },
    { peer: 'd', ip: '192.0.2.4' },
    { peer: 'e', ip: '192.0.2.5', via: 'zz' },
    { peer: 'f', ip: '192.0.2.6', via: 'f' },
    { peer: 'g', ip: '192.0.2.7', via: 'a' },
  ];
  const p = planOverlay(input({ peers }));
  assert.deepEqual(p.routes.map((r) => r.peer), ['c', 'd']);
  assert.deepEqual(p.notes.filter((n) => n.code === 'RELAY_INVALID').map((n) => n.peer).sort(), ['b', 'e', 'f', 'g']);
});

test('plan: peers with unusable addresses are notes; duplicate peers keep the first', () => {
  const p = planOverlay(input({
    peers: [
      { peer: 'b', ip: 'not-an-ip' },
      { peer: 'c', ip: 'fd00::3' },
      { peer: 'd', ip: '192.0.2.1' },
      { peer: 'e', ip: '0.0.0.0' },
      { peer: 'f', ip: '192.0.2.6' },
      { peer: 'f', ip: '192.0.2.7' },
      { peer: 'a', ip: '192.0.2.1' },
    ],
  }));
  assert.deepEqual(p.routes.map((r) => `${r.peer}=${r.ip}`), ['f=192.0.2.6']);
  const codes = p.notes.map((n) => `${n.peer}:${n.code}`).sort();
  assert.deepEqual(codes, ['b:PEER_INVALID', 'b:PEER_UNKNOWN', 'c:FAMILY_MISMATCH', 'c:PEER_UNKNOWN', 'd:PEER_INVALID', 'e:PEER_INVALID', 'f:PEER_DUPLICATE']);
});

test('plan: local endpoints are not programmed and win a MAC or address clash; remote clashes keep the smaller peer', () => {
  const p = planOverlay(input({
    peers: [{ peer: 'b', ip: '192.0.2.2' }, { peer: 'c', ip: '192.0.2.3' }],
    endpoints: [
      { network: N, peer: 'a', mac: '02:00:00:00:00:0a', ips: ['10.1.0.10'] },
      { network: N, peer: 'c', mac: '02:00:00:00:00:0a', ips: ['10.1.0.99'] }, // local MAC
      { network: N, peer: 'b', mac: '02:00:00:00:00:0b', ips: ['10.1.0.10', '10.1.0.11'] }, // local address
      { network: N, peer: 'c', mac: '02:00:00:00:00:0b', ips: ['10.1.0.13'] }, // b's MAC
      { network: N, peer: 'c', mac: '02:00:00:00:00:0c', ips: ['10.1.0.11'] }, // b's address
    ],
  }));
  assert.deepEqual(p.desired.masterFdb.map((e) => e.mac), ['02:00:00:00:00:0b', '02:00:00:00:00:0c']);
  assert.deepEqual(p.desired.neigh.map((e) => `${e.ip}=${e.mac}`), ['10.1.0.11=02:00:00:00:00:0b']);
  assert.deepEqual(p.notes.map((n) => n.code).sort(), ['DUPLICATE_IP', 'DUPLICATE_IP', 'DUPLICATE_MAC', 'DUPLICATE_MAC']);
});

test('plan: the same endpoint listed twice merges its addresses', () => {
  const p = planOverlay(input({
    endpoints: [
      { network: N, peer: 'b', mac: '02:00:00:00:00:0b', ips: ['10.1.0.11'] },
      { network: N, peer: 'b', mac: '02:00:00:00:00:0B', ips: ['10.1.0.12', '10.1.0.11'] },
    ],
  }));
  assert.deepEqual(p.desired.neigh.map((e) => e.ip), ['10.1.0.11', '10.1.0.12']);
  assert.equal(p.desired.masterFdb.length, 1);
  assert.deepEqual(p.notes, []);
});

test('plan: invalid endpoints, unknown networks and unknown peers are notes', () => {
  const p = planOverlay(input({
    endpoints: [
      { network: N, peer: 'b', mac: 'ff:ff:ff:ff:ff:ff', ips: ['10.1.0.5'] },
      { network: N, peer: 'b', mac: '00:00:00:00:00:00', ips: ['10.1.0.5'] },
      { network: N, peer: 'b', mac: '02:00:00:00:00:01', ips: ['10.1.0.5 dev x'] },
      { network: 'green', peer: 'b', mac: '02:00:00:00:00:02', ips: ['10.1.0.6'] },
      { network: N, peer: 'zz', mac: '02:00:00:00:00:03', ips: ['10.1.0.7'] },
      { network: 'green', peer: 'a', mac: '02:00:00:00:00:04', ips: ['10.1.0.8'] },
    ],
  }));
  assert.equal(p.endpoints, 0);
  assert.deepEqual(p.notes.map((n) => n.code).sort(), ['ENDPOINT_INVALID', 'ENDPOINT_INVALID', 'ENDPOINT_INVALID', 'NETWORK_UNKNOWN', 'PEER_UNKNOWN']);
  // no endpoint in the network: no replication entries either
  assert.deepEqual(p.desired.fdb, []);
});

test('plan: the result does not depend on input order', () => {
  const base = input({
    networks: [{ name: N, bridge: 'wbblue', mtu: 1450 }, { name: 'red', bridge: 'wbred', mtu: 1400 }],
    endpoints: [
      ...input().endpoints,
      { network: 'red', peer: 'b', mac: '02:00:00:00:01:0b', ips: ['10.2.0.11'] },
      { network: 'red', peer: 'c', mac: '02:00:00:00:01:0c', ips: ['10.2.0.12'] },
    ],
  });
  const rev = { ...base, networks: [...base.networks].reverse(), peers: [...base.peers].reverse(), endpoints: [...base.endpoints].reverse() };
  assert.deepEqual(planOverlay(rev), planOverlay(base));
});

test('plan: local configuration errors throw', () => {
  fails(() => planOverlay(input({ underlay: { ip: 'x', dev: 'eth0' } })), InvalidConfigError, /underlay address/);
  fails(() => planOverlay(input({ underlay: { ip: '192.0.2.1', dev: 'a b' } })), InvalidConfigError, /underlay device/);
  fails(() => planOverlay(input({ port: 0 })), InvalidConfigError, /port/);
  fails(() => planOverlay(input({ networks: [{ name: N, bridge: 'b1', mtu: 1450 }, { name: N, bridge: 'b2', mtu: 1450 }] })), InvalidConfigError, /listed twice/);
  fails(() => planOverlay(input({ networks: [{ name: N, bridge: 'b1', mtu: 1450 }, { name: 'red', bridge: 'b1', mtu: 1450 }] })), InvalidConfigError, /same bridge/);
  fails(() => planOverlay(input({ networks: [{ name: N, bridge: 'b1', mtu: 20 }] })), InvalidConfigError, /mtu/);
  fails(() => planOverlay(input({ networks: [{ name: N, bridge: 'b1', mtu: 1450, vni: 0 }] })), InvalidConfigError, /out of range/);
  fails(() => planOverlay(input({ networks: [{ name: 'na me', bridge: 'b1', mtu: 1450 }] })), InvalidConfigError, /network name/);
});

test('plan: two networks on one VNI (or on each other\'s relay VNI) are a VniConflictError', () => {
  fails(() => planOverlay(input({ networks: [{ name: N, bridge: 'b1', mtu: 1450, vni: 7 }, { name: 'red', bridge: 'b2', mtu: 1450, vni: 7 }] })), VniConflictError, /VNI 7/);
  fails(() => planOverlay(input({ networks: [{ name: N, bridge: 'b1', mtu: 1450, vni: 7 }, { name: 'red', bridge: 'b2', mtu: 1450, vni: 7 + 0x800000 }] })), VniConflictError, /already used/);
  const ok = planOverlay(input({ networks: [{ name: N, bridge: 'b1', mtu: 1450, vni: 7 }] }));
  assert.deepEqual(ok.desired.devices.map((d) => d.vni).sort((a, b) => a - b), [7, 7 + 0x800000]);
});

test('plan: IPv6 underlay', () => {
  const p = planOverlay(input({ underlay: { ip: 'fd00:0:0::1', dev: 'eth0' }, peers: [{ peer: 'b', ip: 'FD00::2' }, { peer: 'c', ip: '192.0.2.3' }] }));
  assert.equal(p.desired.devices[0]!.local, 'fd00::1');
  assert.deepEqual(p.routes.map((r) => r.nextHop), ['fd00::2']);
  assert.deepEqual(p.notes.map((n) => n.code).sort(), ['FAMILY_MISMATCH', 'PEER_UNKNOWN']);
});
