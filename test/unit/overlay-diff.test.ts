import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vxlanNameFor, vxlanRelayNameFor } from '../../src/core/dataplane/names.js';
import { applyOverlayChanges, countChanges, diffOverlay, keepNetworksAsTheyAre, needsReplace, restrictToNetworks } from '../../src/core/dataplane/overlay-diff.js';
import { planOverlay, sortState } from '../../src/core/dataplane/overlay-plan.js';
import {
  EMPTY_OVERLAY_STATE,
  type OverlayChange,
  type OverlayInput,
  type OverlayState,
  type VxlanDevice,
} from '../../src/core/dataplane/overlay-types.js';
import { seededRandom } from '../../src/core/prng.js';

const N = 'blue';
const DX = vxlanNameFor(N);
const RX = vxlanRelayNameFor(N);

function input(over: Partial<OverlayInput> = {}): OverlayInput {
  return {
    localPeer: 'a',
    underlay: { ip: '192.0.2.1', dev: 'eth0' },
    networks: [{ name: N, bridge: 'wbblue', mtu: 1450 }],
    peers: [{ peer: 'b', ip: '192.0.2.2' }, { peer: 'c', ip: '192.0.2.3' }],
    endpoints: [
      { network: N, peer: 'b', mac: '02:00:00:00:00:0b', ips: ['10.1.0.11', 'fd00::b'] },
      { network: N, peer: 'c', mac: '02:00:00:00:00:0c', ips: ['10.1.0.12'] },
    ],
    ...over,
  };
}

const kinds = (cs: readonly OverlayChange[]): string[] => cs.map((c) => c.kind);

test('diff from nothing: filter first, devices, then FDB before bridge entries before neighbours', () => {
  const d = planOverlay(input()).desired;
  const cs = diffOverlay(d, EMPTY_OVERLAY_STATE);
  assert.deepEqual(kinds(cs), [
    'filter-apply', 'device-create', 'device-create',
    'fdb-add', 'fdb-add', 'fdb-add', 'fdb-add',
    'master-add', 'master-add',
    'neigh-add', 'neigh-add', 'neigh-add',
  ]);
  assert.deepEqual(applyOverlayChanges(EMPTY_OVERLAY_STATE, cs), sortState(d));
});

test('diff of a state with itself is empty', () => {
  const d = planOverlay(input()).desired;
  assert.deepEqual(diffOverlay(d, d), []);
});

test('a departed peer: its bridge entries go before its FDB entries, then its neighbours and replication entry', () => {
  const before = planOverlay(input()).desired;
  const after = planOverlay(input({ peers: [{ peer: 'b', ip: '192.0.2.2' }], endpoints: input().endpoints.filter((e) => e.peer !== 'c') })).desired;
  const cs = diffOverlay(after, before);
  assert.deepEqual(cs, [
    { kind: 'master-del', entry: { dev: DX, mac: '02:00:00:00:00:0c', static: true } },
    { kind: 'fdb-del', entry: { dev: DX, mac: '00:00:00:00:00:00', dst: '192.0.2.3', permanent: true } },
    { kind: 'fdb-del', entry: { dev: DX, mac: '02:00:00:00:00:0c', dst: '192.0.2.3', permanent: true } },
    { kind: 'neigh-del', entry: { dev: DX, ip: '10.1.0.12', mac: '02:00:00:00:00:0c', permanent: true } },
  ]);
});

test('a departed container: only its entries go; the peer keeps its replication entry while it has others', () => {
  const two = input({ endpoints: [...input().endpoints, { network: N, peer: 'c', mac: '02:00:00:00:00:0d', ips: ['10.1.0.13'] }] });
  const cs = diffOverlay(planOverlay(input()).desired, planOverlay(two).desired);
  assert.deepEqual(kinds(cs), ['master-del', 'fdb-del', 'neigh-del']);
  assert.ok(cs.every((c) => 'entry' in c && c.entry.mac === '02:00:00:00:00:0d'));
});

test('a peer moving behind a relay: new FDB on the relay device, bridge entry moved by replace, old FDB removed after', () => {
  const direct = planOverlay(input()).desired;
  const relayed = planOverlay(input({ peers: [{ peer: 'b', ip: '192.0.2.2' }, { peer: 'c', ip: '192.0.2.3', via: 'b' }] })).desired;
  const cs = diffOverlay(relayed, direct);
  assert.deepEqual(cs, [
    { kind: 'fdb-add', entry: { dev: RX, mac: '02:00:00:00:00:0c', dst: '192.0.2.2', permanent: true } },
    { kind: 'master-replace', entry: { dev: RX, mac: '02:00:00:00:00:0c', static: true } },
    { kind: 'neigh-add', entry: { dev: RX, ip: '10.1.0.12', mac: '02:00:00:00:00:0c', permanent: true } },
    { kind: 'fdb-del', entry: { dev: DX, mac: '00:00:00:00:00:00', dst: '192.0.2.3', permanent: true } },
    { kind: 'fdb-del', entry: { dev: DX, mac: '02:00:00:00:00:0c', dst: '192.0.2.3', permanent: true } },
  ]);
  assert.deepEqual(applyOverlayChanges(direct, cs), relayed);
});

test('a changed underlay address of a peer is an FDB replace; a stale neighbour is replaced', () => {
  const d = planOverlay(input()).desired;
  const actual: OverlayState = {
    ...d,
    fdb: d.fdb.map((e) => (e.mac === '02:00:00:00:00:0b' ? { ...e, dst: '192.0.2.99' } : e)),
    neigh: d.neigh.map((e) => (e.ip === '10.1.0.12' ? { ...e, permanent: false } : e)),
  };
  assert.deepEqual(kinds(diffOverlay(d, actual)), ['fdb-replace', 'neigh-replace']);
});

test('a device with another VNI is re-created and gets all its entries back', () => {
  const d = planOverlay(input()).desired;
  const actual: OverlayState = { ...d, devices: d.devices.map((x) => (x.name === DX ? { ...x, vni: 1 } : x)) };
  const cs = diffOverlay(d, actual);
  assert.deepEqual(kinds(cs).slice(0, 2), ['device-delete', 'device-create']);
  assert.equal((cs[0] as { reason: string }).reason, 'replace');
  assert.equal(cs.filter((c) => c.kind === 'fdb-add').length, 4);
  assert.equal(cs.filter((c) => c.kind === 'master-add').length, 2);
  assert.equal(cs.filter((c) => c.kind === 'neigh-add').length, 3);
  assert.deepEqual(applyOverlayChanges(actual, cs), sortState(d));
});

test('a device that lost its bridge is re-enslaved with its port flags and its bridge entries are re-added', () => {
  const d = planOverlay(input()).desired;
  const actual: OverlayState = {
    ...d,
    devices: d.devices.map((x) => (x.name === DX ? { ...x, master: null, portFlags: null } : x)),
    masterFdb: [],
  };
  const cs = diffOverlay(d, actual);
  assert.deepEqual(cs[0], { kind: 'device-update', name: DX, master: 'wbblue', portFlags: d.devices.find((x) => x.name === DX)!.portFlags! });
  assert.deepEqual(kinds(cs).slice(1), ['master-add', 'master-add']);
});

test('mtu, port flags and admin state are updated in place', () => {
  const d = planOverlay(input()).desired;
  const actual: OverlayState = { ...d, devices: d.devices.map((x) => (x.name === DX ? { ...x, mtu: 1500, up: false, portFlags: { ...x.portFlags!, hairpin: true } } : x)) };
  assert.deepEqual(diffOverlay(d, actual), [{ kind: 'device-update', name: DX, mtu: 1450, portFlags: d.devices.find((x) => x.name === DX)!.portFlags!, up: true }]);
});

test('needsReplace: immutable attributes only', () => {
  const dev = planOverlay(input()).desired.devices[0]!;
  assert.equal(needsReplace(dev, { ...dev, mtu: 1 }), false);
  assert.equal(needsReplace(dev, { ...dev, master: null }), false);
  for (const k of ['vni', 'port', 'local', 'dev', 'learning', 'proxy', 'network', 'role'] as const) {
    const other = { ...dev, [k]: k === 'learning' || k === 'proxy' ? !dev[k] : k === 'vni' || k === 'port' ? 9 : k === 'role' ? (dev.role === 'data' ? 'relay' : 'data') : 'x' } as VxlanDevice;
    assert.equal(needsReplace(dev, other), true, k);
  }
});

test('a removed network: its devices go (entries with them), and the filter goes when no relay device is left', () => {
  const d = planOverlay(input()).desired;
  const cs = diffOverlay(EMPTY_OVERLAY_STATE, d);
  assert.deepEqual(kinds(cs), ['device-delete', 'device-delete', 'filter-remove']);
  assert.deepEqual(applyOverlayChanges(d, cs), EMPTY_OVERLAY_STATE);
});

test('a foreign or outdated filter table is replaced', () => {
  const d = planOverlay(input()).desired;
  assert.deepEqual(kinds(diffOverlay(d, { ...d, filter: { digest: '', rules: 4 } })), ['filter-apply']);
  assert.deepEqual(kinds(diffOverlay(d, { ...d, filter: { digest: d.filter!.digest, rules: 2 } })), ['filter-apply']);
  assert.deepEqual(kinds(diffOverlay(d, { ...d, filter: null })), ['filter-apply']);
});

test('restrictToNetworks keeps one network and recomputes the filter', () => {
  const two = planOverlay(input({ networks: [{ name: N, bridge: 'wbblue', mtu: 1450 }, { name: 'red', bridge: 'wbred', mtu: 1450 }] })).desired;
  const blue = restrictToNetworks(two, (n) => n === N);
  assert.deepEqual(blue.devices.map((x) => x.network), [N, N]);
  assert.deepEqual(blue, planOverlay(input()).desired);
  assert.equal(restrictToNetworks(two, () => false).filter, null);
});

test('countChanges', () => {
  assert.deepEqual(countChanges(diffOverlay(planOverlay(input()).desired, EMPTY_OVERLAY_STATE)), { 'filter-apply': 1, 'device-create': 2, 'fdb-add': 4, 'master-add': 2, 'neigh-add': 3 });
});

// ---- properties over random plans and random kernel states ----

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

function shuffled<T>(rnd: () => number, xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function randomInput(rnd: () => number): OverlayInput {
  const npeers = Math.floor(rnd() * 6);
  const peers = Array.from({ length: npeers }, (_, i) => ({
    peer: `p${i + 1}`,
    ip: `192.0.2.${10 + i}`,
    ...(rnd() < 0.25 ? { via: pick(rnd, ['p1', 'p2', 'p3', 'p0', 'zz']) } : {}),
  }));
  const names = shuffled(rnd, ['blue', 'red', 'green']).slice(0, 1 + Math.floor(rnd() * 3));
  const networks = names.map((name) => ({ name, bridge: `br-${name}`, mtu: pick(rnd, [1400, 1450]) }));
  const endpoints = Array.from({ length: Math.floor(rnd() * 14) }, () => ({
    network: rnd() < 0.9 ? pick(rnd, names) : 'pink',
    peer: rnd() < 0.1 ? 'px' : `p${Math.floor(rnd() * (npeers + 1))}`,
    mac: rnd() < 0.03 ? '02:00:00:00:00:a' : `02:00:00:00:0${Math.floor(rnd() * 2)}:${(10 + Math.floor(rnd() * 12)).toString(16)}`,
    ips: Array.from({ length: Math.floor(rnd() * 3) }, () => (rnd() < 0.7 ? `10.9.0.${Math.floor(rnd() * 20)}` : `fd00::${Math.floor(rnd() * 20).toString(16)}`)),
  }));
  return { localPeer: 'p0', underlay: { ip: '192.0.2.9', dev: 'ul0' }, networks, peers, endpoints };
}

/** A plausible kernel state: parts of `desired` (some damaged) and of another plan, obeying the kernel's uniqueness rules. */
function randomActual(rnd: () => number, desired: OverlayState, other: OverlayState): OverlayState {
  const devices = new Map<string, VxlanDevice>();
  for (const d of [...desired.devices, ...other.devices]) {
    if (rnd() < 0.25 || devices.has(d.name)) continue;
    const r = rnd();
    let x: VxlanDevice = d;
    if (r < 0.1) x = { ...d, vni: d.vni + 1 };
    else if (r < 0.2) x = { ...d, mtu: 1500 };
    else if (r < 0.3) x = { ...d, master: null, portFlags: null };
    else if (r < 0.35) x = { ...d, master: 'br-other' };
    else if (r < 0.45) x = { ...d, up: false };
    else if (r < 0.55 && d.portFlags) x = { ...d, portFlags: { ...d.portFlags, flood: true, learning: true } };
    else if (r < 0.6) x = { ...d, local: '192.0.2.250' };
    devices.set(x.name, x);
  }
  const has = (dev: string): boolean => devices.has(dev);
  const fdb = new Map<string, OverlayState['fdb'][number]>();
  for (const e of [...desired.fdb, ...other.fdb]) {
    if (rnd() < 0.3 || !has(e.dev)) continue;
    const x = rnd() < 0.1 ? { ...e, dst: '192.0.2.200' } : rnd() < 0.1 ? { ...e, permanent: false } : e;
    const k = x.mac === '00:00:00:00:00:00' ? `${x.dev}|${x.mac}|${x.dst}` : `${x.dev}|${x.mac}`;
    if (!fdb.has(k)) fdb.set(k, x);
  }
  const master = new Map<string, OverlayState['masterFdb'][number]>();
  for (const e of [...desired.masterFdb, ...other.masterFdb]) {
    if (rnd() < 0.3 || !has(e.dev)) continue;
    const br = devices.get(e.dev)!.master;
    if (br === null) continue;
    const x = rnd() < 0.1 ? { ...e, static: false } : e;
    const k = `${br}|${x.mac}`;
    if (!master.has(k)) master.set(k, x);
  }
  const neigh = new Map<string, OverlayState['neigh'][number]>();
  for (const e of [...desired.neigh, ...other.neigh]) {
    if (rnd() < 0.3 || !has(e.dev)) continue;
    const x = rnd() < 0.1 ? { ...e, mac: '02:ff:00:00:00:01' } : rnd() < 0.1 ? { ...e, permanent: false } : e;
    const k = `${x.dev}|${x.ip}`;
    if (!neigh.has(k)) neigh.set(k, x);
  }
  const filter = pick(rnd, [null, desired.filter, other.filter, { digest: 'feed', rules: 3 }]);
  return sortState({ devices: [...devices.values()], fdb: [...fdb.values()], masterFdb: [...master.values()], neigh: [...neigh.values()], filter });
}

const PHASE: Record<OverlayChange['kind'], number> = {
  'filter-apply': 0, 'device-delete': 1, 'device-create': 2, 'device-update': 3,
  'fdb-add': 4, 'fdb-replace': 4, 'master-add': 5, 'master-replace': 5, 'neigh-add': 6, 'neigh-replace': 6,
  'master-del': 7, 'fdb-del': 8, 'neigh-del': 9, 'filter-remove': 10,
};

test('property: applying the diff reaches the desired state, after which the diff is empty (500 random cases)', () => {
  for (let seed = 1; seed <= 500; seed++) {
    const rnd = seededRandom(seed);
    const inp = randomInput(rnd);
    const relay = rnd() < 0.8;
    const desired = planOverlay(inp, { relay }).desired;
    const actual = randomActual(rnd, desired, planOverlay(randomInput(rnd), { relay: rnd() < 0.5 }).desired);
    const changes = diffOverlay(desired, actual);
    const after = applyOverlayChanges(actual, changes);
    assert.deepEqual(after, sortState(desired), `seed ${seed}`);
    assert.deepEqual(diffOverlay(desired, after), [], `seed ${seed}`);
    // deterministic
    assert.deepEqual(diffOverlay(desired, actual), changes, `seed ${seed}`);
  }
});

test('property: change order is safe (phases, no entry op on a dying device, bridge entry only after its FDB entry)', () => {
  for (let seed = 1; seed <= 500; seed++) {
    const rnd = seededRandom(seed * 7919);
    const desired = planOverlay(randomInput(rnd)).desired;
    const actual = randomActual(rnd, desired, planOverlay(randomInput(rnd)).desired);
    const cs = diffOverlay(desired, actual);
    for (let i = 1; i < cs.length; i++) assert.ok(PHASE[cs[i - 1]!.kind] <= PHASE[cs[i]!.kind], `seed ${seed}: ${cs[i - 1]!.kind} before ${cs[i]!.kind}`);
    const deleted = new Set(cs.flatMap((c) => (c.kind === 'device-delete' && c.reason === 'unwanted' ? [c.name] : [])));
    const wanted = new Set(desired.devices.map((d) => d.name));
    const fdbAfter = new Set(desired.fdb.map((e) => `${e.dev}|${e.mac}`));
    for (const c of cs) {
      if (!('entry' in c)) continue;
      assert.ok(!deleted.has(c.entry.dev), `seed ${seed}: ${c.kind} on deleted ${c.entry.dev}`);
      if (c.kind.endsWith('-add') || c.kind.endsWith('-replace')) assert.ok(wanted.has(c.entry.dev), `seed ${seed}: ${c.kind} on unwanted device`);
      // a bridge entry on a VXLAN port always has the port's FDB entry for the MAC (no flooding to all peers)
      if (c.kind === 'master-add' || c.kind === 'master-replace') assert.ok(fdbAfter.has(`${c.entry.dev}|${c.entry.mac}`), `seed ${seed}: bridge entry without FDB entry`);
    }
    const keys = cs.map((c) => ('entry' in c ? `${c.kind}|${JSON.stringify(c.entry)}` : 'name' in c ? `${c.kind}|${c.name}` : 'device' in c ? `${c.kind}|${c.device.name}` : c.kind));
    assert.equal(new Set(keys).size, keys.length, `seed ${seed}: duplicate change`);
  }
});

test('property: plan invariants (paired entries, relay targets, replication, order independence)', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const rnd = seededRandom(seed * 104729);
    const inp = randomInput(rnd);
    const plan = planOverlay(inp);
    const d = plan.desired;
    const fdb = new Map(d.fdb.filter((e) => e.mac !== '00:00:00:00:00:00').map((e) => [`${e.dev}|${e.mac}`, e]));
    const masters = new Set(d.masterFdb.map((e) => `${e.dev}|${e.mac}`));
    assert.deepEqual([...fdb.keys()].sort(), [...masters].sort(), `seed ${seed}: FDB and bridge entries pair up`);
    const devs = new Map(d.devices.map((x) => [x.name, x]));
    const routeByIp = new Map(plan.routes.map((r) => [r.nextHop, r]));
    for (const e of fdb.values()) {
      const dev = devs.get(e.dev)!;
      const r = routeByIp.get(e.dst);
      assert.ok(r !== undefined, `seed ${seed}: FDB dst ${e.dst} is a next hop`);
      if (dev.role === 'relay') assert.ok(plan.routes.some((x) => x.via !== undefined && x.nextHop === e.dst), `seed ${seed}`);
    }
    for (const r of plan.routes) if (r.via !== undefined) assert.ok(plan.routes.some((x) => x.peer === r.via && x.via === undefined && x.ip === r.nextHop), `seed ${seed}: relay is direct`);
    for (const z of d.fdb.filter((e) => e.mac === '00:00:00:00:00:00')) {
      assert.equal(devs.get(z.dev)!.role, 'data');
      assert.ok(plan.routes.some((r) => r.via === undefined && r.ip === z.dst), `seed ${seed}: replication only to direct peers`);
    }
    // a MAC is on one port per bridge; neighbours point at programmed MACs
    const perBridge = new Set<string>();
    for (const m of d.masterFdb) {
      const k = `${devs.get(m.dev)!.master}|${m.mac}`;
      assert.ok(!perBridge.has(k), `seed ${seed}: ${k} twice`);
      perBridge.add(k);
    }
    for (const n of d.neigh) assert.ok(d.masterFdb.some((m) => m.mac === n.mac && devs.get(m.dev)!.network === devs.get(n.dev)!.network), `seed ${seed}: neighbour without path`);
    // local endpoints are never programmed
    for (const e of inp.endpoints) if (e.peer === 'p0') assert.ok(!d.masterFdb.some((m) => m.mac === e.mac && devs.get(m.dev)!.network === e.network), `seed ${seed}: local endpoint programmed`);
    const rev = { ...inp, peers: shuffled(rnd, inp.peers), endpoints: shuffled(rnd, inp.endpoints), networks: shuffled(rnd, inp.networks) };
    assert.deepEqual(planOverlay(rev), plan, `seed ${seed}: order independent`);
  }
});

test('property: removing a peer from the input removes every entry that pointed at it (unless it relays for another)', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rnd = seededRandom(seed * 15485863);
    const inp = randomInput(rnd);
    if (inp.peers.length === 0) continue;
    const gone = pick(rnd, inp.peers);
    const before = planOverlay(inp).desired;
    const next: OverlayInput = { ...inp, peers: inp.peers.filter((p) => p !== gone), endpoints: inp.endpoints.filter((e) => e.peer !== gone.peer) };
    const plan2 = planOverlay(next);
    const after = applyOverlayChanges(before, diffOverlay(plan2.desired, before));
    assert.deepEqual(after, plan2.desired, `seed ${seed}`);
    assert.ok(!after.fdb.some((e) => e.dst === gone.ip), `seed ${seed}: entry still points at ${gone.ip}`);
  }
});

test('keepNetworksAsTheyAre: a skipped network is left exactly as it is and stays under the loop guard', () => {
  const two = input({ networks: [{ name: N, bridge: 'wbblue', mtu: 1450 }, { name: 'red', bridge: 'wbred', mtu: 1450 }] });
  const desired = planOverlay(two).desired;
  // the kernel has an older version of both networks
  const actual = planOverlay({ ...two, networks: two.networks.map((n) => ({ ...n, mtu: 1400 })), endpoints: [] }).desired;
  const want = keepNetworksAsTheyAre(desired, actual, new Set(['red']));
  const cs = diffOverlay(want, actual);
  const redDevs = new Set(actual.devices.filter((d) => d.network === 'red').map((d) => d.name));
  assert.ok(cs.length > 0);
  for (const c of cs) {
    const dev = 'entry' in c ? c.entry.dev : 'name' in c ? c.name : 'device' in c ? c.device.name : undefined;
    assert.ok(dev === undefined || !redDevs.has(dev), `${c.kind} touches the skipped network`);
  }
  assert.ok(!cs.some((c) => c.kind === 'filter-remove'));
  assert.equal(want.filter!.digest, planOverlay(two).desired.filter!.digest, 'the filter still covers both networks');
  assert.equal(keepNetworksAsTheyAre(desired, actual, new Set()), desired);
});
