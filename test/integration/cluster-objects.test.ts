/**
 * Subnets, pools and reservations are cluster-wide objects: made with the
 * CLI on one host, they appear on every host (gossip, cluster.objects), a
 * reservation made on one host is honoured on another (the address is
 * claimed from its owner in the IPAM ring), and a replicated delete that
 * cannot be applied where containers still use the subnet is kept as a
 * conflict there instead of breaking them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addContainer, buildCluster, type SimCluster, type SimHost, waitMeshConverged } from '../helpers/cluster.js';
import { waitFor, weftJson } from '../helpers/it-kit.js';
import { weftConf } from '../helpers/router.js';
import { World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
let cl: SimCluster;
let h1: SimHost;
let h2: SimHost;

before(async () => {
  if (skip) return;
  cl = await buildCluster(world, 2, { ipallocRange: '10.43.0.0/24', extraArgs: ['--ipalloc-init', 'seed=h1,h2'] });
  [h1, h2] = cl.hosts as [SimHost, SimHost];
  await waitMeshConverged(cl.hosts);
});
after(() => world.cleanup());

interface SubnetUsage { subnet: { name: string; cidr: string; dns: { nameservers?: string[] } } }
const subnets = (h: SimHost): Promise<SubnetUsage[]> => weftJson<SubnetUsage[]>(h.router, 'subnet', 'list');

async function ok(h: SimHost, ...args: string[]): Promise<void> {
  const r = await h.router.weft(...args);
  assert.equal(r.code, 0, `weft ${args.join(' ')} on ${h.name}: ${r.stdout}${r.stderr}`);
}

test('a subnet created on one host appears on the other; updates and deletes follow', { skip, timeout: 60_000 }, async () => {
  await ok(h1, 'subnet', 'create', 'blue', '--cidr', '10.44.0.0/24', '--dns-server', '10.44.0.53');
  assert.ok(await waitFor(async () => (await subnets(h2)).some((u) => u.subnet.name === 'blue' && u.subnet.cidr === '10.44.0.0/24'), 10_000), 'blue reaches h2');
  await ok(h2, 'subnet', 'update', 'blue', '--dns-server', '10.44.0.54');
  assert.ok(await waitFor(async () => (await subnets(h1)).some((u) => u.subnet.name === 'blue' && u.subnet.dns.nameservers?.[0] === '10.44.0.54'), 10_000), 'the update made on h2 reaches h1');
  await ok(h1, 'pool', 'create', 'etcd', '--subnet', 'blue', '--addresses', '10.44.0.10-10.44.0.12', '--match-name', 'etcd-*');
  assert.ok(await waitFor(async () => (await weftJson<{ pool: { name: string } }[]>(h2.router, 'pool', 'list')).some((p) => p.pool.name === 'etcd'), 10_000), 'the pool reaches h2');
  const c = await addContainer(world, h2, 'etcd', weftConf({ subnet: 'blue' }));
  assert.equal(c.ip, '10.44.0.2', 'blue is not ring-managed: h2 allocates from it directly');
  await ok(h1, 'pool', 'delete', 'etcd');
  await ok(h1, 'subnet', 'delete', 'blue');
  assert.ok(await waitFor(async () => !(await weftJson<{ pool: { name: string } }[]>(h2.router, 'pool', 'list')).some((p) => p.pool.name === 'etcd'), 10_000), 'the pool delete reaches h2');
  // h2 still has a container on blue: the delete is a conflict there, blue stays and the container keeps its address.
  assert.ok(await waitFor(async () => {
    const st = await weftJson<{ warnings: string[] }>(h2.router, 'status');
    return st.warnings.some((w) => /subnet\/blue/.test(w));
  }, 10_000), 'h2 reports the delete it cannot apply');
  assert.ok((await subnets(h2)).some((u) => u.subnet.name === 'blue'));
  const del = await h2.router.cni({ command: 'DEL', containerId: c.id, netns: c.ns.path, ifname: 'eth0' }, weftConf({ subnet: 'blue' }));
  assert.equal(del.code, 0);
  // Once the last address is released, the periodic retry (or the next change) applies the delete.
  await ok(h1, 'subnet', 'create', 'green', '--cidr', '10.45.0.0/24');
  assert.ok(await waitFor(async () => {
    const names = (await subnets(h2)).map((u) => u.subnet.name);
    return names.includes('green') && (names.includes('blue') ? false : true);
  }, 40_000), 'blue goes from h2 after its container left');
});

test('a reservation made on h1 is honoured on h2: the address is claimed from its owner', { skip, timeout: 60_000 }, async () => {
  // 10.43.0.5 lies in h1's share of the ring (seed split: h1 owns the lower half).
  const ring = await weftJson<{ owned: { range: string }[] }>(h1.router, 'status', 'ipam');
  assert.match(ring.owned.map((o) => o.range).join(','), /10\.43\.0\.0/, JSON.stringify(ring));
  await ok(h1, 'ip', 'reserve', 'default', '10.43.0.5', '--owner', 'default/db-0');
  assert.ok(await waitFor(async () => (await weftJson<{ reservations: { ip: string }[] }>(h2.router, 'ip', 'list')).reservations.some((r) => r.ip === '10.43.0.5'), 10_000));
  const ns = await world.netns('db');
  const out = await h2.router.cni({ command: 'ADD', containerId: `db-${ns.name}`, netns: ns.path, ifname: 'eth0', args: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=db-0' }, weftConf());
  assert.equal(out.code, 0, out.stdout + out.stderr);
  assert.equal((out.json as { ips: { address: string }[] }).ips[0]!.address, '10.43.0.5/24');
  const after = await weftJson<{ owned: { range: string }[] }>(h2.router, 'status', 'ipam');
  assert.ok(after.owned.some((o) => o.range.startsWith('10.43.0.5')), `h2 now owns 10.43.0.5: ${JSON.stringify(after.owned)}`);
});

test('replicated objects survive a restart of a router', { skip, timeout: 60_000 }, async () => {
  await ok(h2, 'subnet', 'create', 'red', '--cidr', '10.46.0.0/24');
  assert.ok(await waitFor(async () => (await subnets(h1)).some((u) => u.subnet.name === 'red'), 10_000));
  await h2.router.stop();
  await h2.router.start();
  await waitMeshConverged(cl.hosts);
  await ok(h1, 'subnet', 'update', 'red', '--dns-server', '10.46.0.53');
  assert.ok(await waitFor(async () => (await subnets(h2)).some((u) => u.subnet.name === 'red' && u.subnet.dns.nameservers?.[0] === '10.46.0.53'), 10_000));
});
