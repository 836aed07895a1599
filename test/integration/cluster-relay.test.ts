/**
 * Partial connectivity: three hosts where the underlay between A and C is
 * cut (an nftables table of the test's own in A's namespace drops every
 * packet to and from C's underlay address), while both reach B. The routers
 * route around it: A lists C as relayed via B, A's and C's containers
 * exchange pings and TCP through B's relay VXLAN device (B runs no
 * container of that network: it relays on a bare bridge), and a broadcast
 * burst from a container does not storm across the relay.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addContainer, buildCluster, pingEventually, type SimCluster, type SimContainer, type SimHost, waitMeshConverged } from '../helpers/cluster.js';
import { capture, lapsesDuring, logsOf, meshOf, tcpRoundTrip } from '../helpers/cluster-faults.js';
import { exec } from '../helpers/exec.js';
import { waitFor, weftJson } from '../helpers/it-kit.js';
import { weftConf } from '../helpers/router.js';
import { World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
let cl: SimCluster;
let a: SimHost;
let b: SimHost;
let c: SimHost;
const cs = new Map<string, SimContainer>();

/** The test's own table in A's netns (never weft's `inet weft` / `bridge weft`): A and C cannot exchange a single packet. */
const blockScript = (peerIp: string): string => `table inet wttest {
  chain in { type filter hook input priority -200; policy accept; ip saddr ${peerIp} counter drop; }
  chain out { type filter hook output priority -200; policy accept; ip daddr ${peerIp} counter drop; }
}
`;

before(async () => {
  if (skip) return;
  // B is first: every host names B at launch; A and C learn each other's address from B (discovery) and fail to connect.
  cl = await buildCluster(world, 3, { names: ['b', 'a', 'c'], ipallocRange: '10.43.0.0/16', extraArgs: ['--ipalloc-init', 'seed=a,b,c'], start: false });
  [b, a, c] = cl.hosts as [SimHost, SimHost, SimHost];
  await world.execOk('nft', ['-f', '-'], { netns: a.ns.name, input: blockScript(c.ip) });
  assert.notEqual((await exec('ping', ['-c', '1', '-W', '1', c.ip], { netns: a.ns.name })).code, 0, 'the underlay between A and C is cut');
  assert.equal((await exec('ping', ['-c', '1', '-W', '1', b.ip], { netns: a.ns.name })).code, 0, 'A reaches B');
  assert.equal((await exec('ping', ['-c', '1', '-W', '1', b.ip], { netns: c.ns.name })).code, 0, 'C reaches B');
  await Promise.all(cl.hosts.map((h) => h.router.start()));
  await waitMeshConverged(cl.hosts, 20_000);
  // B runs no container: it relays the network all the same (a bare bridge, no gateway).
  for (const h of [a, c]) cs.set(h.name, await addContainer(world, h, `c${h.name}`));
});
after(() => world.cleanup());

interface Connections { connections: { nickname?: string; state: string }[]; relayed: { peer: string; nickname: string; via: string }[] }

test('A lists C as relayed via B (and C lists A), with no direct connection between them', { skip, timeout: 60_000 }, async () => {
  const bPeer = (await meshOf(b)).peer;
  for (const [from, to] of [[a, c], [c, a]] as const) {
    let last: Connections | undefined;
    const ok = await waitFor(async () => {
      last = await weftJson<Connections>(from.router, 'status', 'connections');
      return last.relayed.some((r) => r.nickname === to.name && r.via === bPeer);
    }, 15_000);
    assert.ok(ok, `${from.name} lists ${to.name} as relayed via b (${bPeer}): ${JSON.stringify(last)}`);
    assert.ok(!last!.connections.some((x) => x.nickname === to.name && x.state === 'established'), `${from.name} has no established connection to ${to.name}`);
    assert.ok(last!.connections.some((x) => x.nickname === 'b' && x.state === 'established'), `${from.name} is connected to b`);
  }
  // The human view says the same.
  const human = await a.router.weft('status', 'connections');
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /\bc\b.*relayed via b/);
  // And the overlay routes C's traffic through B's underlay address.
  const ov = await a.router.api().get<{ routes: { peer: string; ip: string; nextHop: string; via?: string }[] }>('/v1/overlay');
  const cPeer = (await meshOf(c)).peer;
  assert.ok(ov.routes.some((r) => r.peer === cPeer && r.ip === c.ip && r.nextHop === b.ip && r.via === bPeer), `A's overlay route to C goes via B: ${JSON.stringify(ov.routes)}`);
});

test('containers on A and C ping each other and carry TCP through B', { skip, timeout: 90_000 }, async () => {
  const ca = cs.get('a')!;
  const cc = cs.get('c')!;
  assert.notEqual(ca.ip, cc.ip, 'distinct addresses');
  assert.ok(await pingEventually(ca.ns, cc.ip, 20_000), `a -> c (${cc.ip})\n${logsOf(cl.hosts)}`);
  assert.ok(await pingEventually(cc.ns, ca.ip, 20_000), `c -> a (${ca.ip})`);
  // The path is through B: on B's switch port, A's echo requests arrive from A's underlay address
  // and leave again, in B's own VXLAN packets, towards C's.
  const cap = await capture(world, cl.sw, b.swPort, 'udp port 4789');
  const r = await exec('ping', ['-c', '5', '-i', '0.1', '-W', '2', cc.ip], { netns: ca.ns.name });
  await new Promise((res) => setTimeout(res, 300));
  const pkts = await cap.stop();
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const echo = (from: string, to: string): string[] => pkts.filter((p) => p.includes(` ${from}.`) && p.includes(` > ${to}.4789`) && p.includes(`IP ${ca.ip} > ${cc.ip}: ICMP echo request`));
  assert.ok(echo(a.ip, b.ip).length >= 5 && echo(b.ip, c.ip).length >= 5, `A -> B -> C for each echo request:\n${pkts.slice(0, 12).join('\n')}`);
  assert.equal(echo(a.ip, c.ip).length, 0, 'nothing goes from A to C directly');
  assert.equal(await tcpRoundTrip(world, cc, ca, 7101), 'pong:ping', 'TCP a -> c');
  assert.equal(await tcpRoundTrip(world, ca, cc, 7102), 'pong:ping', 'TCP c -> a');
});

test('a broadcast burst from a container does not storm across the relay', { skip, timeout: 60_000 }, async () => {
  const ca = cs.get('a')!;
  const cc = cs.get('c')!;
  assert.ok(await pingEventually(ca.ns, cc.ip, 10_000));
  // A container on B for the burst: A replicates broadcasts only to peers with containers on the network.
  const cb = await addContainer(world, b, 'cbb');
  assert.ok(await pingEventually(ca.ns, cb.ip, 10_000), 'a -> b');
  const BURST = 50;
  // Every VXLAN packet on each host's switch port (both directions) during the burst.
  const caps = await Promise.all(cl.hosts.map((h) => capture(world, cl.sw, h.swPort, 'udp port 4789')));
  const r = await exec('ping', ['-b', '-c', String(BURST), '-i', '0.02', '-W', '1', '10.43.255.255'], { netns: ca.ns.name });
  await new Promise((res) => setTimeout(res, 1000));
  const [onB, onA, onC] = await Promise.all(caps.map((x) => x.stop())) as [string[], string[], string[]];
  assert.match(r.stdout, new RegExp(`${BURST} packets transmitted`), r.stdout + r.stderr);
  const bcast = (pkts: string[]): string[] => pkts.filter((p) => p.includes(`IP ${ca.ip} > 10.43.255.255: ICMP echo request`));
  const dump = (pkts: string[]): string => pkts.slice(0, 12).join('\n');
  // A replicates each broadcast once, to its direct peer B; B floods it to its own containers only:
  // nothing group-addressed goes back into the overlay, and none of it reaches the relayed C.
  assert.ok(bcast(onB).length >= BURST - 2 && bcast(onB).length <= BURST, `each broadcast crosses B's port once: ${bcast(onB).length}\n${dump(bcast(onB))}`);
  assert.ok(bcast(onB).every((p) => p.includes(` ${a.ip}.`) && p.includes(` > ${b.ip}.4789`)), 'all of them from A to B');
  assert.equal(bcast(onC).length, 0, `no broadcast copy reaches C through the relay:\n${dump(bcast(onC))}`);
  // And in total the underlay stays quiet (a loop would produce thousands of packets).
  const bound = 2 * BURST + 20;
  for (const [n, pkts] of [['A', onA], ['B', onB], ['C', onC]] as const) assert.ok(pkts.length <= bound, `bounded on ${n}'s underlay: ${pkts.length} > ${bound}\n${dump(pkts)}`);
  // The mesh and the relayed path are still fine afterwards.
  assert.ok(await pingEventually(cc.ns, ca.ip, 10_000), 'c -> a after the burst');
  const out = await b.router.cni({ command: 'DEL', containerId: cb.id, netns: cb.ns.path, ifname: 'eth0' }, weftConf());
  assert.equal(out.code, 0, out.stdout + out.stderr);
});

interface OverlayView { networks: string[]; relayOnly: string[] }

/** B's bridge of the default network: its IPv4 addresses, or undefined when it does not exist. */
async function bridgeV4(h: SimHost): Promise<string[] | undefined> {
  const r = await exec('ip', ['-j', '-4', 'addr', 'show', 'dev', 'weft'], { netns: h.ns.name });
  if (r.code !== 0) return undefined;
  return ((JSON.parse(r.stdout) as { addr_info: { local: string }[] }[])[0]?.addr_info ?? []).map((x) => x.local);
}

test('B relays a network it runs no container of; a container coming and going on B keeps the relay', { skip, timeout: 90_000 }, async () => {
  const ca = cs.get('a')!;
  const cc = cs.get('c')!;
  const ov = (): Promise<OverlayView> => b.router.api().get<OverlayView>('/v1/overlay');
  // The container of the previous test is gone; a reconcile takes the gateway off the bridge the relay keeps.
  await b.router.api().post('/v1/reconcile', {});
  assert.ok(await waitFor(async () => JSON.stringify((await ov()).relayOnly) === '["weft"]', 10_000), `B carries "weft" only for others: ${JSON.stringify(await ov())}`);
  assert.deepEqual(await bridgeV4(b), [], 'a bare bridge on B: no gateway address');
  const human = await b.router.weft('status');
  assert.match(human.stdout, /relaying for others: weft/);
  // A container on B: the bridge gets its gateway, the network is B's own, all three reach each other.
  const cb = await addContainer(world, b, 'cb');
  assert.ok(await waitFor(async () => (await ov()).relayOnly.length === 0, 10_000), 'weft is local on B now');
  assert.equal((await bridgeV4(b))?.length, 1, 'the gateway is on B\'s bridge');
  assert.ok(await pingEventually(ca.ns, cb.ip, 10_000), 'a -> b');
  assert.ok(await pingEventually(cc.ns, cb.ip, 10_000), 'c -> b');
  // It goes again; a reconcile (which removes unused bridges) keeps the relay's, bare.
  const out = await b.router.cni({ command: 'DEL', containerId: cb.id, netns: cb.ns.path, ifname: 'eth0' }, weftConf());
  assert.equal(out.code, 0, out.stdout + out.stderr);
  await b.router.api().post('/v1/reconcile', {});
  assert.ok(await waitFor(async () => (await ov()).relayOnly.includes('weft'), 10_000), 'relayed only again');
  assert.ok(await waitFor(async () => JSON.stringify(await bridgeV4(b)) === '[]', 10_000), `the bridge stays, without its gateway: ${JSON.stringify(await bridgeV4(b))}`);
  assert.ok(await pingEventually(ca.ns, cc.ip, 10_000), 'a -> c still relayed through B');
  assert.ok(await pingEventually(cc.ns, ca.ip, 10_000), 'c -> a');
  // A restart of B's router: its start-up reconcile leaves the relay bridge (it has weft VXLAN ports)
  // and the overlay's start-up grace keeps the entries, so the relayed path never breaks.
  const gaps = await lapsesDuring(async () => {
    const r = await exec('ip', ['-j', 'link', 'show', 'master', 'weft'], { netns: b.ns.name });
    const ports = r.code === 0 ? (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname) : [];
    return ports.includes('weft-vx') && ports.includes('weft-vxr') ? undefined : `ports of B's bridge: ${ports.join(',') || 'none (bridge gone?)'}`;
  }, async () => {
    assert.equal(await b.router.stop(), 0);
    await b.router.start();
    await waitMeshConverged(cl.hosts, 20_000);
    await new Promise((res) => setTimeout(res, 1500));
  });
  assert.deepEqual(gaps, [], 'B\'s relay bridge kept both VXLAN ports through the restart');
  assert.ok(await pingEventually(ca.ns, cc.ip, 10_000), 'a -> c after B\'s restart');
});
