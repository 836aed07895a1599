import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planMacvlanAttach, planVethAttach, resolveRoutes } from '../../src/core/dataplane/attach-plan.js';
import type { MacvlanAttachSpec, VethAttachSpec } from '../../src/core/dataplane/types.js';
import { InvalidConfigError, InvalidEnvError } from '../../src/core/errors.js';

const veth: VethAttachSpec = {
  netns: '/proc/1234/ns/net',
  ifname: 'eth0',
  hostIfname: 'wv0123456789abc',
  bridge: 'weft',
  mtu: 1450,
  mac: '02:AA:bb:cc:dd:ee',
  addresses: ['10.32.0.5/12', 'fd00::5/64'],
  gateways: ['10.32.0.1', 'fd00::1'],
  routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }, { dst: '192.168.0.0/16', gw: '10.32.0.254' }],
  hairpin: true,
};

test('veth: host side creates the peer inside the netns, enslaves, hairpins, ups', () => {
  const p = planVethAttach(veth);
  assert.deepEqual(p.host, [
    'link add name wv0123456789abc mtu 1450 type veth peer name eth0 mtu 1450 address 02:aa:bb:cc:dd:ee netns /proc/1234/ns/net',
    'link set dev wv0123456789abc master weft',
    'link set dev wv0123456789abc alias weft-port:weft:hairpin',
    'link set dev wv0123456789abc type bridge_slave hairpin on',
    'link set dev wv0123456789abc up',
  ]);
});

test('veth: container side addresses, alias, up, lo, then routes', () => {
  const p = planVethAttach(veth);
  assert.deepEqual(p.container, [
    'addr add 10.32.0.5/12 dev eth0',
    'addr add fd00::5/64 dev eth0 nodad',
    'link set dev eth0 alias weft:wv0123456789abc',
    'link set dev eth0 up',
    'link set dev lo up',
    'route append 0.0.0.0/0 via 10.32.0.1 dev eth0',
    'route append ::/0 via fd00::1 dev eth0',
    'route append 192.168.0.0/16 via 10.32.0.254 dev eth0',
  ]);
});

test('veth without mac/hairpin/gateways', () => {
  const p = planVethAttach({ ...veth, mac: undefined, hairpin: false, gateways: [], routes: [{ dst: '10.0.0.0/8' }] });
  assert.equal(p.host[0], 'link add name wv0123456789abc mtu 1450 type veth peer name eth0 mtu 1450 netns /proc/1234/ns/net');
  assert.equal(p.host.length, 4);
  assert.equal(p.host[2], 'link set dev wv0123456789abc alias weft-port:weft');
  assert.deepEqual(p.container.slice(-1), ['route append 10.0.0.0/8 dev eth0']);
});

test('resolveRoutes: gw per family, canonical prefixes, duplicates', () => {
  assert.deepEqual(resolveRoutes([{ dst: '10.1.2.3/8' }, { dst: '10.0.0.0/8' }, { dst: '::/0' }], ['10.0.0.1']), [
    { dst: '10.0.0.0/8', family: 4, via: '10.0.0.1' },
    { dst: '::/0', family: 6 },
  ]);
  assert.throws(() => resolveRoutes([{ dst: '10.0.0.0/8', gw: '10.0.0.1' }, { dst: '10.0.0.0/8', gw: '10.0.0.2' }], []), InvalidConfigError);
  assert.throws(() => resolveRoutes([{ dst: '10.0.0.0/8', gw: 'fd00::1' }], []), /another address family/);
  assert.throws(() => resolveRoutes([{ dst: 'nope' }], []), InvalidConfigError);
  assert.throws(() => resolveRoutes([], ['10.0.0']), InvalidConfigError);
  // empty gw string (seen in some CNI results) means "no gateway"
  assert.deepEqual(resolveRoutes([{ dst: '0.0.0.0/0', gw: '' }], ['10.0.0.1']), [{ dst: '0.0.0.0/0', family: 4, via: '10.0.0.1' }]);
});

test('veth: bad input is rejected before anything runs', () => {
  assert.throws(() => planVethAttach({ ...veth, netns: 'relative/path' }), InvalidEnvError);
  assert.throws(() => planVethAttach({ ...veth, netns: '/run/netns/a b' }), (e: unknown) => e instanceof InvalidEnvError && /CNI_NETNS/.test(e.message));
  assert.throws(() => planVethAttach({ ...veth, ifname: 'eth0 up' }), InvalidConfigError);
  assert.throws(() => planVethAttach({ ...veth, hostIfname: 'x'.repeat(16) }), InvalidConfigError);
  assert.throws(() => planVethAttach({ ...veth, mtu: 70000 }), InvalidConfigError);
  assert.throws(() => planVethAttach({ ...veth, mac: 'zz' }), InvalidConfigError);
  assert.throws(() => planVethAttach({ ...veth, addresses: ['10.0.0.5'] }), InvalidConfigError);
});

const mv: MacvlanAttachSpec = {
  netns: '/run/netns/c1',
  ifname: 'net1',
  master: 'eth1',
  mode: 'bridge',
  mtu: 1500,
  addresses: ['192.168.5.10/24'],
  gateways: ['192.168.5.1'],
  routes: [{ dst: '0.0.0.0/0' }],
};

test('macvlan: one host line creating the link in the netns, container side as for veth', () => {
  const p = planMacvlanAttach(mv);
  assert.deepEqual(p.host, ['link add link eth1 name net1 mtu 1500 netns /run/netns/c1 type macvlan mode bridge']);
  assert.deepEqual(p.container, [
    'addr add 192.168.5.10/24 dev net1',
    'link set dev net1 alias weft:macvlan',
    'link set dev net1 up',
    'link set dev lo up',
    'route append 0.0.0.0/0 via 192.168.5.1 dev net1',
  ]);
  assert.equal(planMacvlanAttach({ ...mv, mac: '02:00:00:00:00:09', mode: 'vepa' }).host[0], 'link add link eth1 name net1 mtu 1500 address 02:00:00:00:00:09 netns /run/netns/c1 type macvlan mode vepa');
  assert.throws(() => planMacvlanAttach({ ...mv, mode: 'bogus' as 'bridge' }), InvalidConfigError);
  assert.throws(() => planMacvlanAttach({ ...mv, master: 'a#b' }), InvalidConfigError);
});
