import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseVxlanAlias, vxlanAlias, vxlanNameFor, vxlanRelayNameFor, isValidIfname } from '../../src/core/dataplane/names.js';
import { diffOverlay } from '../../src/core/dataplane/overlay-diff.js';
import {
  OVERLAY_FILTER_RULES, parseOverlayFilterCounters, parseOverlayFilterListing, renderOverlayFilter, renderOverlayFilterRemoval,
} from '../../src/core/dataplane/overlay-filter.js';
import { parseOverlayFdb, parseOverlayLinks, parseOverlayNeigh } from '../../src/core/dataplane/overlay-parse.js';
import { planOverlay } from '../../src/core/dataplane/overlay-plan.js';
import { deviceCreateLines, renderOverlayChanges } from '../../src/core/dataplane/overlay-render.js';
import { EMPTY_OVERLAY_STATE, type OverlayChange, type VxlanDevice } from '../../src/core/dataplane/overlay-types.js';
import { InvalidConfigError } from '../../src/core/errors.js';
import { fails } from '../helpers/assert-error.js';

// ---- names ----

test('vxlan device names: readable for the default network, wx/wr + 12 hex otherwise, stable, valid', () => {
  assert.equal(vxlanNameFor('weft'), 'weft-vx');
  assert.equal(vxlanRelayNameFor('weft'), 'weft-vxr');
  const d = vxlanNameFor('a-very-long-network-name-that-does-not-fit');
  const r = vxlanRelayNameFor('a-very-long-network-name-that-does-not-fit');
  assert.match(d, /^wx[0-9a-f]{12}$/);
  assert.match(r, /^wr[0-9a-f]{12}$/);
  assert.equal(d, vxlanNameFor('a-very-long-network-name-that-does-not-fit'));
  assert.ok(isValidIfname(d) && isValidIfname(r) && isValidIfname('weft-vxr'));
  assert.notEqual(vxlanNameFor('x'), vxlanNameFor('y'));
});

test('vxlan aliases round-trip; others are not weft\'s', () => {
  assert.deepEqual(parseVxlanAlias(vxlanAlias('blue', 'data')), { network: 'blue', role: 'data' });
  assert.deepEqual(parseVxlanAlias(vxlanAlias('a:b', 'relay')), { network: 'a:b', role: 'relay' });
  for (const a of [undefined, '', 'weft:blue', 'weft-vxlan:', 'weft-vxlan:data:', 'weft-vxlan:other:blue', 'weft-vxlan:blue']) assert.equal(parseVxlanAlias(a), undefined, String(a));
});

// ---- rendering ----

const dev: VxlanDevice = {
  name: 'wx0', network: 'blue', role: 'data', vni: 42, port: 4789, local: '192.0.2.1', dev: 'ul0', learning: false, proxy: true,
  mtu: 1450, master: 'br0', up: true, portFlags: { hairpin: false, learning: false, flood: false, mcastFlood: true, bcastFlood: true },
};

test('device creation: create, alias, enslave, port flags on their own line, up', () => {
  assert.deepEqual(deviceCreateLines(dev), [
    'link add name wx0 mtu 1450 type vxlan id 42 local 192.0.2.1 dev ul0 dstport 4789 nolearning proxy',
    'link set dev wx0 alias weft-vxlan:data:blue',
    'link set dev wx0 master br0',
    'link set dev wx0 type bridge_slave hairpin off learning off flood off mcast_flood on bcast_flood on',
    'link set dev wx0 up',
  ]);
});

test('entries render to ip and bridge lines; neighbour deletes go last; zero-MAC entries append', () => {
  const cs: OverlayChange[] = [
    { kind: 'neigh-del', entry: { dev: 'wx0', ip: '10.0.0.9', mac: '02:00:00:00:00:09', permanent: true } },
    { kind: 'device-update', name: 'wx0', mtu: 1400, master: 'br0', portFlags: dev.portFlags!, up: true },
    { kind: 'fdb-add', entry: { dev: 'wx0', mac: '00:00:00:00:00:00', dst: '192.0.2.2', permanent: true } },
    { kind: 'fdb-replace', entry: { dev: 'wx0', mac: '00:00:00:00:00:00', dst: '192.0.2.3', permanent: true } },
    { kind: 'fdb-add', entry: { dev: 'wx0', mac: '02:00:00:00:00:02', dst: '192.0.2.2', permanent: true } },
    { kind: 'master-replace', entry: { dev: 'wx0', mac: '02:00:00:00:00:02', static: true } },
    { kind: 'neigh-add', entry: { dev: 'wx0', ip: 'fd00::2', mac: '02:00:00:00:00:02', permanent: true } },
    { kind: 'master-del', entry: { dev: 'wx0', mac: '02:00:00:00:00:03', static: true } },
    { kind: 'fdb-del', entry: { dev: 'wx0', mac: '02:00:00:00:00:03', dst: '192.0.2.3', permanent: true } },
    { kind: 'fdb-del', entry: { dev: 'wx0', mac: '00:00:00:00:00:00', dst: '192.0.2.4', permanent: true } },
    { kind: 'device-delete', name: 'wx1', reason: 'unwanted' },
    { kind: 'device-update', name: 'wx2', master: null },
  ];
  const r = renderOverlayChanges(cs);
  assert.deepEqual(r.ip, [
    'link set dev wx0 mtu 1400',
    'link set dev wx0 master br0',
    'link set dev wx0 type bridge_slave hairpin off learning off flood off mcast_flood on bcast_flood on',
    'link set dev wx0 up',
    'neigh replace fd00::2 lladdr 02:00:00:00:00:02 dev wx0 nud permanent',
    'link del dev wx1',
    'link set dev wx2 nomaster',
    'neigh del 10.0.0.9 dev wx0',
  ]);
  assert.deepEqual(r.ipSource, [1, 1, 1, 1, 6, 10, 11, 0]);
  assert.deepEqual(r.bridge, [
    'fdb append 00:00:00:00:00:00 dev wx0 dst 192.0.2.2 self permanent',
    'fdb del 00:00:00:00:00:00 dev wx0 dst 192.0.2.3 self',
    'fdb append 00:00:00:00:00:00 dev wx0 dst 192.0.2.3 self permanent',
    'fdb replace 02:00:00:00:00:02 dev wx0 dst 192.0.2.2 self permanent',
    'fdb replace 02:00:00:00:00:02 dev wx0 master static',
    'fdb del 02:00:00:00:00:03 dev wx0 master',
    'fdb del 02:00:00:00:00:03 dev wx0 self',
    'fdb del 00:00:00:00:00:00 dev wx0 dst 192.0.2.4 self',
  ]);
  assert.equal(r.nftBefore, undefined);
});

test('rendering refuses values that would smuggle tokens into a batch line', () => {
  fails(() => renderOverlayChanges([{ kind: 'fdb-add', entry: { dev: 'wx0', mac: '02:00:00:00:00:02 dev x', dst: '192.0.2.2', permanent: true } }]), InvalidConfigError, /MAC/);
  fails(() => renderOverlayChanges([{ kind: 'fdb-add', entry: { dev: 'wx0', mac: '02:00:00:00:00:02', dst: '192.0.2.2 self', permanent: true } }]), InvalidConfigError, /not an IP/);
  fails(() => renderOverlayChanges([{ kind: 'neigh-add', entry: { dev: 'wx0 up', ip: '10.0.0.1', mac: '02:00:00:00:00:02', permanent: true } }]), InvalidConfigError, /interface name/);
  fails(() => deviceCreateLines({ ...dev, network: 'a b' }), InvalidConfigError, /vxlan alias/);
  fails(() => deviceCreateLines({ ...dev, vni: 0 }), InvalidConfigError, /out of range/);
});

test('a full plan renders to one ip batch, one bridge batch and the nft table first', () => {
  const p = planOverlay({
    localPeer: 'a', underlay: { ip: '192.0.2.1', dev: 'ul0' }, networks: [{ name: 'blue', bridge: 'br0', mtu: 1450 }],
    peers: [{ peer: 'b', ip: '192.0.2.2' }], endpoints: [{ network: 'blue', peer: 'b', mac: '02:00:00:00:00:0b', ips: ['10.0.0.2'] }],
  });
  const r = renderOverlayChanges(diffOverlay(p.desired, EMPTY_OVERLAY_STATE));
  assert.equal(r.ip.length, 11); // 2 devices x 5 lines + 1 neighbour
  assert.equal(r.bridge.length, 3);
  assert.ok(r.nftBefore !== undefined && r.nftBefore.includes('table bridge weft {'));
  const gone = renderOverlayChanges(diffOverlay(EMPTY_OVERLAY_STATE, p.desired));
  assert.deepEqual(gone.ip.map((l) => l.split(' ').slice(0, 2).join(' ')), ['link del', 'link del']);
  assert.equal(gone.nftAfter, renderOverlayFilterRemoval());
});

// ---- the nft table ----

test('filter: only with relay devices; atomic replace of bridge weft only; digest changes with the devices', () => {
  assert.equal(renderOverlayFilter([dev]), null);
  const r = renderOverlayFilter([dev, { ...dev, name: 'wr0', role: 'relay' }])!;
  assert.equal(r.filter.rules, OVERLAY_FILTER_RULES);
  const lines = r.script.split('\n');
  assert.deepEqual(lines.slice(0, 3), ['table bridge weft {}', 'delete table bridge weft', 'table bridge weft {']);
  assert.ok(r.script.includes('iifname { "wr0", "wx0" } jump from_overlay'));
  assert.ok(r.script.includes('oifname { "wr0" } counter drop'));
  assert.ok(r.script.includes('ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 counter drop'));
  assert.ok(!/\b(inet|ip|ip6|netdev)\s+\w+\s*\{/.test(r.script), 'touches only the bridge family');
  const r2 = renderOverlayFilter([dev, { ...dev, name: 'wr1', role: 'relay' }])!;
  assert.notEqual(r2.filter.digest, r.filter.digest);
  assert.equal(renderOverlayFilterRemoval(), 'table bridge weft {}\ndelete table bridge weft\n');
});

const LISTING = `table bridge weft {
\tcomment "weft-overlay 0123456789abcdef"
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tiifname { "wr0", "wx0" } jump from_overlay
\t}

\tchain from_overlay {
\t\toifname "wr0" counter packets 3 bytes 252 drop
\t\toifname { "wr0", "wx0" } ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 counter packets 5 bytes 420 drop
\t\toifname { "wr0", "wx0" } counter packets 8 bytes 672 accept
\t}
}
`;

test('filter listing: digest, rule count and counters', () => {
  assert.deepEqual(parseOverlayFilterListing(LISTING), { digest: '0123456789abcdef', rules: 4 });
  assert.deepEqual(parseOverlayFilterCounters(LISTING), { relayLoopDrops: 3, groupDrops: 5, relayed: 8 });
  assert.equal(parseOverlayFilterListing(undefined), null);
  assert.deepEqual(parseOverlayFilterListing('table bridge weft {\n\tchain x {\n\t}\n}\n'), { digest: '', rules: 0 });
  assert.deepEqual(parseOverlayFilterCounters(undefined), { relayLoopDrops: 0, groupDrops: 0, relayed: 0 });
});

// ---- parsing what iproute2 6.1 prints (captured on Linux 6.18) ----

const LINKS = [
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, linkinfo: undefined },
  { ifindex: 3, ifname: 'br0', flags: ['BROADCAST', 'MULTICAST', 'UP'], mtu: 1450, linkinfo: { info_kind: 'bridge' }, ifalias: 'weft:blue' },
  {
    ifindex: 4, ifname: 'wx0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1450, master: 'br0', address: '6e:a6:cf:c9:17:6d',
    linkinfo: {
      info_kind: 'vxlan',
      info_data: { id: 42, local: '192.0.2.1', link: 'ul0', port_range: { low: 0, high: 0 }, port: 4789, learning: false, proxy: true, ttl: 0, df: 'unset', ageing: 300, udp_csum: true },
      info_slave_kind: 'bridge',
      info_slave_data: { state: 'forwarding', hairpin: false, learning: false, flood: false, mcast_flood: true, bcast_flood: true, multicast_router: 1 },
    },
    ifalias: 'weft-vxlan:data:blue',
  },
  { ifindex: 5, ifname: 'wr0', flags: ['BROADCAST', 'MULTICAST'], mtu: 1500, linkinfo: { info_kind: 'vxlan', info_data: { id: 8388650, local6: 'fd00::1', port: 4789, learning: true, proxy: false } }, ifalias: 'weft-vxlan:relay:blue' },
  { ifindex: 6, ifname: 'wx9', flags: ['UP'], mtu: 1500, linkinfo: { info_kind: 'dummy' }, ifalias: 'weft-vxlan:data:red' },
  { ifindex: 7, ifname: 'vx-other', flags: ['UP'], mtu: 1500, linkinfo: { info_kind: 'vxlan', info_data: { id: 7 } } },
];

test('links: weft VXLAN devices by alias with their settings; everything else only listed', () => {
  const p = parseOverlayLinks(LINKS);
  assert.deepEqual(p.devices[0], { ...dev });
  assert.deepEqual(p.devices[1], {
    name: 'wr0', network: 'blue', role: 'relay', vni: 8388650, port: 4789, local: 'fd00::1', dev: null, learning: true, proxy: false, mtu: 1500, master: null, up: false, portFlags: null,
  });
  assert.equal(p.devices[2]!.vni, 0, 'a non-VXLAN link with weft\'s alias is marked for re-creation');
  assert.equal(p.devices.length, 3);
  assert.deepEqual(p.links.get('vx-other'), { name: 'vx-other', up: true, mtu: 1500, kind: 'vxlan' });
  assert.deepEqual([...p.links.keys()], ['lo', 'br0', 'wx0', 'wr0', 'wx9', 'vx-other']);
});

test('fdb: VXLAN entries and bridge entries; the port\'s own address and VLAN entries are skipped', () => {
  const doc = [
    { mac: '02:00:00:00:00:02', flags: [], master: 'br0', state: 'static' },
    { mac: '6e:a6:cf:c9:17:6d', flags: [], master: 'br0', state: 'permanent' },
    { mac: '02:00:00:00:00:05', flags: [], master: 'br0', state: '' },
    { mac: '02:00:00:00:00:06', flags: [], master: 'br0', state: 'static', vlan: 5 },
    { mac: '00:00:00:00:00:00', dst: '192.0.2.2', flags: ['self'], state: 'permanent' },
    { mac: '02:00:00:00:00:02', dst: '192.0.2.2', flags: ['self'], state: 'permanent' },
    { mac: '02:00:00:00:00:07', dst: '192.0.2.7', flags: ['self'], state: 'permanent', vni: 9 },
    { mac: '02:00:00:00:00:08', dst: '192.0.2.8', flags: ['self'], state: 'static' },
    { mac: '33:33:00:00:00:01', flags: ['self'], state: 'permanent' },
  ];
  assert.deepEqual(parseOverlayFdb('wx0', doc), {
    fdb: [
      { dev: 'wx0', mac: '00:00:00:00:00:00', dst: '192.0.2.2', permanent: true },
      { dev: 'wx0', mac: '02:00:00:00:00:02', dst: '192.0.2.2', permanent: true },
      { dev: 'wx0', mac: '02:00:00:00:00:07', dst: '192.0.2.7', permanent: false },
      { dev: 'wx0', mac: '02:00:00:00:00:08', dst: '192.0.2.8', permanent: false },
    ],
    masterFdb: [
      { dev: 'wx0', mac: '02:00:00:00:00:02', static: true },
      { dev: 'wx0', mac: '02:00:00:00:00:05', static: false },
    ],
  });
});

test('neighbours: canonical addresses, state', () => {
  const doc = [
    { dst: '10.9.0.2', lladdr: '02:00:00:00:00:02', state: ['PERMANENT'] },
    { dst: 'FD00:0::2', lladdr: '02:00:00:00:00:02', state: ['PERMANENT'] },
    { dst: '10.9.0.3', state: ['FAILED'] },
    { dst: 'garbage', lladdr: '02:00:00:00:00:02', state: ['PERMANENT'] },
  ];
  assert.deepEqual(parseOverlayNeigh('wx0', doc), [
    { dev: 'wx0', ip: '10.9.0.2', mac: '02:00:00:00:00:02', permanent: true },
    { dev: 'wx0', ip: 'fd00::2', mac: '02:00:00:00:00:02', permanent: true },
    { dev: 'wx0', ip: '10.9.0.3', mac: '', permanent: false },
  ]);
});
