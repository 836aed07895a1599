/**
 * The overlay adapter on a real kernel: three simulated hosts on one
 * underlay switch, containers on each, VXLAN programmed only through
 * KernelOverlay from planOverlay. Ping, TCP, full-MTU DF pings, no ARP on
 * the underlay (the VXLAN proxy answers locally), repair of hand-deleted
 * entries and devices, peer removal, name clashes, teardown, batch cost.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { vxlanNameFor, vxlanRelayNameFor } from '../../src/core/dataplane/names.js';
import { planOverlay, sortState } from '../../src/core/dataplane/overlay-plan.js';
import { exec, execOk } from '../helpers/exec.js';
import { World, canCreateNetns } from '../helpers/world.js';
import {
  BRIDGE, NETWORK, type SimWorld, addContainer, buildHosts, capture, inputFor, pingEventually, pingOk, program, rootSnapshot, tcpRoundTrip,
} from './overlay-kit.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const noTcpdump = ['/usr/bin/tcpdump', '/usr/sbin/tcpdump'].some((p) => existsSync(p)) ? false : 'needs tcpdump';
const DATA = vxlanNameFor(NETWORK);
const RELAY = vxlanRelayNameFor(NETWORK);

describe('overlay on a real kernel (3 hosts)', { skip }, () => {
  const world = new World();
  let sim: SimWorld;
  let root = '';

  before(async () => {
    root = await rootSnapshot();
    sim = await buildHosts(world, 3);
    for (const [i, h] of [[1, 0], [2, 1], [3, 2], [4, 0]] as const) await addContainer(sim, sim.hosts[h]!, i);
  });
  after(async () => {
    await world.cleanup();
    assert.equal(await rootSnapshot(), root, 'the root netns is unchanged');
  });

  const c = (i: number) => sim.containers[i - 1]!;
  const h = (i: number) => sim.hosts[i - 1]!;
  const programAll = async (): Promise<void> => {
    for (const host of sim.hosts) await program(host, inputFor(sim, host));
  };

  test('probe: VXLAN and nftables bridge filtering are available', async () => {
    const f = await h(1).overlay.probe();
    assert.deepEqual({ vxlan: f.vxlan, bridgeNft: f.bridgeNft }, { vxlan: true, bridgeNft: true }, JSON.stringify(f.reasons));
  });

  test('programmed hosts: containers ping each other across hosts and carry TCP; the kernel holds exactly the plan', { timeout: 60_000 }, async () => {
    await programAll();
    for (const a of [1, 2, 3, 4]) {
      for (const b of [1, 2, 3, 4]) if (a !== b) assert.ok(await pingEventually(c(a), c(b).ip), `c${a} -> c${b}`);
    }
    assert.equal(await tcpRoundTrip(sim, c(3), c(1), 7101), 'pong:200000');
    assert.equal(await tcpRoundTrip(sim, c(2), c(3), 7102), 'pong:200000');
    for (const host of sim.hosts) {
      const plan = planOverlay(inputFor(sim, host));
      const read = await host.overlay.read();
      assert.deepEqual(sortState(read.state), plan.desired, host.name);
      const again = await host.overlay.apply(plan.desired);
      assert.deepEqual(again.changes, {}, 'a second apply changes nothing');
      assert.equal(again.ipLines + again.bridgeLines + again.nftRuns, 0);
    }
    const links = JSON.parse(await execOk('ip', ['-j', '-d', 'link', 'show', 'dev', DATA], { netns: h(1).ns.name }))[0];
    assert.equal(links.mtu, 1450);
    assert.equal(links.master, BRIDGE);
    assert.deepEqual({ learning: links.linkinfo.info_data.learning, proxy: links.linkinfo.info_data.proxy, port: links.linkinfo.info_data.port, local: links.linkinfo.info_data.local }, { learning: false, proxy: true, port: 4789, local: '192.0.2.1' });
    assert.deepEqual(
      { hairpin: links.linkinfo.info_slave_data.hairpin, flood: links.linkinfo.info_slave_data.flood, learning: links.linkinfo.info_slave_data.learning },
      { hairpin: false, flood: false, learning: false },
    );
  });

  test('a full-size ping with DF set passes (container MTU 1450 = underlay 1500 − 50); one byte more does not fit', async () => {
    assert.ok(await pingOk(c(1), c(3).ip, { size: 1422, df: true, count: 2 }));
    assert.ok(await pingOk(c(2), c(1).ip, { size: 1422, df: true, count: 2 }));
    assert.equal(await pingOk(c(1), c(3).ip, { size: 1423, df: true }), false);
  });

  test('steady state: no ARP inside VXLAN and no ARP for container addresses on the underlay, even with cold neighbour caches', { timeout: 60_000, skip: noTcpdump }, async () => {
    // warm-up done by the tests above; now force every container to resolve again
    const arpInVxlan = await capture(world, sim.sw, 'any', 'udp port 4789 and udp[28:2] = 0x0806');
    const arpOnUnderlay = await capture(world, sim.sw, 'any', 'arp');
    const vxlan = await capture(world, sim.sw, 'any', 'udp port 4789');
    for (const x of sim.containers) await execOk('ip', ['neigh', 'flush', 'all'], { netns: x.ns.name });
    for (const a of [1, 2, 3]) for (const b of [1, 2, 3]) if (a !== b) assert.ok(await pingOk(c(a), c(b).ip, { count: 3 }), `c${a} -> c${b}`);
    assert.equal(await tcpRoundTrip(sim, c(1), c(2), 7103), 'pong:200000');
    const inVx = await arpInVxlan.stop();
    const onUl = await arpOnUnderlay.stop();
    const all = await vxlan.stop();
    assert.ok(all.length > 20, `the capture saw the VXLAN traffic (${all.length} packets)`);
    assert.deepEqual(inVx, [], 'ARP frames inside VXLAN');
    assert.deepEqual(onUl.filter((l) => l.includes('10.77.')), [], 'ARP for container addresses on the underlay');
  });

  test('IPv6: neighbour discovery is answered by the proxy too; ping6 across hosts', { timeout: 30_000, skip: noTcpdump }, async () => {
    for (const i of [1, 2]) await execOk('ip', ['addr', 'add', `fd77::${i}/64`, 'dev', 'eth0', 'nodad'], { netns: c(i).ns.name });
    const endpoints = sim.containers.map((x) => ({ network: NETWORK, peer: x.host.name, mac: x.mac, ips: [x.ip, ...(x === c(1) || x === c(2) ? [`fd77::${x === c(1) ? 1 : 2}`] : [])] }));
    const nsInVxlan = await capture(world, sim.sw, 'any', 'udp port 4789 and udp[28:2] = 0x86dd and udp[28+2+6:1] = 58 and (udp[28+2+40:1] = 135 or udp[28+2+40:1] = 136)');
    for (const host of sim.hosts) await program(host, inputFor(sim, host, { endpoints }));
    const r = await exec('ping', ['-6', '-n', '-c', '2', '-i', '0.2', '-W', '2', 'fd77::2'], { netns: c(1).ns.name });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(await nsInVxlan.stop(), [], 'neighbour solicitations/advertisements inside VXLAN');
    for (const host of sim.hosts) await program(host, inputFor(sim, host));
  });

  test('repair: a deleted FDB entry, bridge entry, neighbour, device or filter table comes back on the next apply', { timeout: 60_000 }, async () => {
    const ns = h(1).ns.name;
    const plan = () => program(h(1), inputFor(sim, h(1)));
    const apply = async () => h(1).overlay.apply(planOverlay(inputFor(sim, h(1))).desired);

    await execOk('bridge', ['fdb', 'del', c(2).mac, 'dev', DATA, 'self'], { netns: ns });
    assert.deepEqual((await apply()).changes, { 'fdb-add': 1 });

    await execOk('bridge', ['fdb', 'del', c(2).mac, 'dev', DATA, 'master'], { netns: ns });
    assert.equal(await pingOk(c(1), c(2).ip), false, 'without the bridge entry the frame is not flooded into the overlay');
    assert.deepEqual((await apply()).changes, { 'master-add': 1 });
    assert.ok(await pingEventually(c(1), c(2).ip));

    await execOk('ip', ['neigh', 'del', c(3).ip, 'dev', DATA], { netns: ns });
    await execOk('ip', ['neigh', 'replace', c(2).ip, 'lladdr', '02:00:00:00:99:99', 'dev', DATA, 'nud', 'permanent'], { netns: ns });
    assert.deepEqual((await apply()).changes, { 'neigh-add': 1, 'neigh-replace': 1 });

    await execOk('ip', ['link', 'del', 'dev', DATA], { netns: ns });
    assert.equal(await pingOk(c(1), c(3).ip), false);
    const r = await apply();
    assert.equal(r.changes['device-create'], 1);
    assert.equal(r.changes['fdb-add'], 4); // c2, c3 and one replication entry per peer
    assert.ok(await pingEventually(c(1), c(3).ip));

    await execOk('ip', ['link', 'set', 'dev', RELAY, 'nomaster'], { netns: ns });
    assert.deepEqual(Object.keys((await apply()).changes), ['device-update']);

    await execOk('nft', ['delete', 'table', 'bridge', 'weft'], { netns: ns });
    assert.deepEqual((await apply()).changes, { 'filter-apply': 1 });
    await plan();
    assert.deepEqual((await apply()).changes, {});
  });

  test('a peer removed from the plan loses its entries and its containers become unreachable; added back, it works again', { timeout: 30_000 }, async () => {
    await program(h(1), inputFor(sim, h(1), { exclude: ['h3'], endpoints: sim.containers.filter((x) => x.host !== h(3)).map((x) => ({ network: NETWORK, peer: x.host.name, mac: x.mac, ips: [x.ip] })) }));
    const st = (await h(1).overlay.read()).state;
    assert.ok(!st.fdb.some((e) => e.dst === h(3).ip), 'no FDB entry points at h3');
    assert.ok(!st.masterFdb.some((e) => e.mac === c(3).mac));
    assert.ok(!st.neigh.some((e) => e.ip === c(3).ip));
    assert.equal(await pingOk(c(1), c(3).ip), false);
    assert.ok(await pingOk(c(1), c(2).ip));
    await program(h(1), inputFor(sim, h(1)));
    assert.ok(await pingEventually(c(1), c(3).ip));
  });

  test('a link weft does not own with the device\'s name is left alone and the network is reported as skipped', async () => {
    const host = h(2);
    await host.overlay.removeAll();
    await execOk('ip', ['link', 'add', DATA, 'type', 'bridge'], { netns: host.ns.name });
    const r = await host.overlay.apply(planOverlay(inputFor(sim, host)).desired);
    assert.equal(r.skipped.length, 1);
    assert.match(r.skipped[0]!.reason, /exists and is not weft's \(bridge\)/);
    const l = JSON.parse(await execOk('ip', ['-j', '-d', 'link', 'show', 'dev', DATA], { netns: host.ns.name }))[0];
    assert.equal(l.linkinfo.info_kind, 'bridge');
    await execOk('ip', ['link', 'del', DATA], { netns: host.ns.name });
    await program(host, inputFor(sim, host));
    assert.ok(await pingEventually(c(2), c(1).ip));
  });

  test('a missing bridge skips the network without touching its devices; a missing underlay device is a config error', async () => {
    const host = h(3);
    const desired = planOverlay(inputFor(sim, host)).desired;
    const other = { ...desired, devices: desired.devices.map((d) => ({ ...d, master: 'nosuchbr' })) };
    const r = await host.overlay.apply(other);
    assert.deepEqual(r.skipped.map((s) => s.reason), ['bridge "nosuchbr" does not exist']);
    assert.deepEqual(r.changes, {});
    await assert.rejects(host.overlay.apply({ ...desired, devices: desired.devices.map((d) => ({ ...d, dev: 'nosuchdev' })) }), { code: 'INVALID_CONFIG' });
  });

  test('removeNetwork and removeAll delete weft\'s devices and table and nothing else', async () => {
    const host = h(3);
    const r = await host.overlay.removeNetwork(NETWORK);
    assert.equal(r.changes['device-delete'], 2);
    assert.equal(r.changes['filter-remove'], 1);
    const links = (JSON.parse(await execOk('ip', ['-j', 'link', 'show'], { netns: host.ns.name })) as { ifname: string }[]).map((l) => l.ifname);
    assert.ok(!links.includes(DATA) && !links.includes(RELAY));
    assert.ok(links.includes(BRIDGE) && links.includes('ul0'));
    assert.notEqual((await exec('nft', ['list', 'table', 'bridge', 'weft'], { netns: host.ns.name })).code, 0);
    assert.deepEqual((await host.overlay.removeAll()).changes, {});
  });

  test('batching: 2000 remote endpoints (6000 entries) are programmed and removed in one apply each', { timeout: 60_000 }, async () => {
    const host = h(3);
    const many = Array.from({ length: 2000 }, (_, i) => ({ network: NETWORK, peer: i % 2 === 0 ? 'h1' : 'h2', mac: `02:01:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ips: [`10.78.${i >> 8}.${i & 255}`] }));
    const add = await program(host, inputFor(sim, host, { endpoints: many })).then(async (p) => ({ p, r: await host.overlay.apply(p.desired) }));
    const st = (await host.overlay.read()).state;
    assert.equal(st.masterFdb.length, 2000);
    assert.equal(st.neigh.length, 2000);
    assert.equal(st.fdb.length, 2002);
    assert.deepEqual(add.r.changes, {}, 'the second apply of the same plan changes nothing');
    const t0 = performance.now();
    const gone = await host.overlay.removeAll();
    const removeMs = performance.now() - t0;
    assert.equal(gone.changes['device-delete'], 2);
    // entries vanish with their devices: deleting 6000 entries is two link deletions
    assert.ok(removeMs < 5000, `removal took ${removeMs} ms`);
    const t1 = performance.now();
    const again = await host.overlay.apply(add.p.desired);
    const addMs = performance.now() - t1;
    assert.equal((again.changes['fdb-add'] ?? 0) + (again.changes['master-add'] ?? 0) + (again.changes['neigh-add'] ?? 0), 6002);
    assert.ok(addMs < 10_000, `adding 6002 entries took ${addMs} ms`);
    console.log(`# overlay batch: ${again.ipLines} ip lines + ${again.bridgeLines} bridge lines applied in ${Math.round(addMs)} ms (${JSON.stringify(again.timings)}); removal ${Math.round(removeMs)} ms`);
    // and trimming to nothing but the real containers is one diff too
    const trimmed = await program(host, inputFor(sim, host));
    assert.ok(trimmed.endpoints === 3);
    assert.ok(await pingEventually(c(3), c(1).ip));
  });
});
