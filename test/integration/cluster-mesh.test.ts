/**
 * Three real routers on a simulated underlay: they mesh through the launch
 * arguments and discovery, announce their containers by gossip (cluster-wide
 * `weft ps --cluster`), and `weft connect`/`forget` and the status views work.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addContainer, buildCluster, FAST_MESH, type SimCluster, waitMeshConverged } from '../helpers/cluster.js';
import { waitFor, weftJson } from '../helpers/it-kit.js';
import { TestRouter } from '../helpers/router.js';
import { dirname } from 'node:path';
import { World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
let cl: SimCluster;

before(async () => {
  if (skip) return;
  cl = await buildCluster(world, 3, { ipallocRange: '10.41.0.0/16' });
});
after(() => world.cleanup());

interface PsRow { host: string; local: boolean; containerId: string; ips: string[]; mac: string; network: string }

test('routers mesh through one named peer plus discovery, and gossip their containers', { skip, timeout: 60_000 }, async () => {
  const [h1, h2, h3] = cl.hosts as [typeof cl.hosts[0], typeof cl.hosts[0], typeof cl.hosts[0]];
  await waitMeshConverged(cl.hosts);
  // h2 and h3 only named h1; discovery connects them to each other directly.
  const conns = await weftJson<{ connections: { nickname: string; state: string }[]; relayed: unknown[] }>(h2.router, 'status', 'connections');
  assert.ok(await waitFor(async () => (await weftJson<{ connections: { nickname: string; state: string }[] }>(h2.router, 'status', 'connections')).connections.filter((c) => c.state === 'established').length === 2, 10_000), `h2 connects to h3 by discovery: ${JSON.stringify(conns)}`);

  const c1 = await addContainer(world, h1, 'c1');
  const c3 = await addContainer(world, h3, 'c3');
  const seen = await waitFor(async () => {
    const rows = await weftJson<PsRow[]>(h2.router, 'ps', '--cluster');
    return rows.some((r) => r.containerId === c1.id && r.host === 'h1' && r.mac === c1.mac && r.ips.includes(c1.ip)) && rows.some((r) => r.containerId === c3.id && r.host === 'h3');
  }, 10_000);
  assert.ok(seen, 'h2 sees the containers of h1 and h3');

  const status = await weftJson<{ cluster: { peer: string; nickname: string; underlay: { ip: string; dev: string }; peers: { reachable: number } } }>(h1.router, 'status');
  assert.equal(status.cluster.nickname, 'h1');
  assert.deepEqual({ ip: status.cluster.underlay.ip, dev: status.cluster.underlay.dev }, { ip: '192.0.2.1', dev: 'eth0' });
  assert.equal(status.cluster.peers.reachable, 2);
  const human = await h1.router.weft('status', 'peers');
  assert.match(human.stdout, /h2/);
  assert.match(human.stdout, /h3/);

  // A container removed on h1 disappears from h2's view.
  const del = await h1.router.cni({ command: 'DEL', containerId: c1.id, netns: c1.ns.path, ifname: 'eth0' }, { cniVersion: '1.1.0', name: 'weft', type: 'weft' });
  assert.equal(del.code, 0);
  assert.ok(await waitFor(async () => !(await weftJson<PsRow[]>(h2.router, 'ps', '--cluster')).some((r) => r.containerId === c1.id), 10_000), 'the DEL reaches h2');
});

test('weft connect and forget manage targets, remembered for --resume', { skip, timeout: 60_000 }, async () => {
  const [, h2, h3] = cl.hosts as [typeof cl.hosts[0], typeof cl.hosts[0], typeof cl.hosts[0]];
  const out = await weftJson<{ address: string }[]>(h3.router, 'connect', h2.ip);
  assert.deepEqual(out, [{ address: `${h2.ip}:6783` }]);
  let targets = await weftJson<{ address: string; kind: string }[]>(h3.router, 'status', 'targets');
  assert.ok(targets.some((t) => t.address === `${h2.ip}:6783` && t.kind === 'explicit'), JSON.stringify(targets));
  const bad = await h3.router.weft('connect', 'not-an-address');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a peer address/);
  const f = await weftJson<{ address: string; wasTarget: boolean }[]>(h3.router, 'forget', h2.ip);
  assert.deepEqual(f, [{ address: `${h2.ip}:6783`, wasTarget: true }]);
  targets = await weftJson<{ address: string; kind: string }[]>(h3.router, 'status', 'targets');
  assert.ok(!targets.some((t) => t.address === `${h2.ip}:6783` && t.kind === 'explicit'));
});

test('--resume redials the targets remembered from the last run (launch peers and weft connect)', { skip, timeout: 60_000 }, async () => {
  const [h1, h2, h3] = cl.hosts as [typeof cl.hosts[0], typeof cl.hosts[0], typeof cl.hosts[0]];
  await weftJson(h3.router, 'connect', h2.ip);
  await h3.router.stop();
  // Restart h3 without any PEER argument and without discovery: only the remembered targets can bring its peers back.
  const again = new TestRouter(world, h3.ns, { ipallocRange: '10.41.0.0/16', name: 'h3', stateDir: dirname(h3.router.dataDir), extraArgs: ['--advertise-addr', h3.ip, ...FAST_MESH, '--no-discovery', '--resume'] });
  h3.router = again;
  await again.start();
  const targets = await weftJson<{ address: string; kind: string }[]>(again, 'status', 'targets');
  assert.deepEqual(targets.filter((t) => t.kind === 'explicit').map((t) => t.address).sort(), [`${h1.ip}:6783`, `${h2.ip}:6783`]);
  await waitMeshConverged(cl.hosts);
});
