/**
 * Permanent loss of a host and automatic reclaim of its address space:
 * three routers with a 4 s lease and fast heartbeats share a /26; one is
 * killed with SIGKILL and its host namespace deleted (gone for good). The
 * survivors vote its lease expired and retire it in favour of one of them
 * (ring status shows the tombstone and the heir owning its range), its
 * containers vanish from `weft ps --cluster` (the reclaim makes the cluster
 * forget the host), and once the heir's own share is used up, new
 * containers get addresses from the reclaimed space and are reachable.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RingNodeStatus } from '../../src/core/ipam-ring/index.js';
import { addContainer, buildCluster, pingEventually, type SimCluster, type SimContainer, type SimHost, waitMeshConverged } from '../helpers/cluster.js';
import { parseIp } from '../../src/core/ip/addr.js';
import { parseCidr, usableRange } from '../../src/core/ip/cidr.js';
import { addressesIn, assertPartition, inRanges, logsOf, ringOf } from '../helpers/cluster-faults.js';
import { ipList, waitFor, weftJson } from '../helpers/it-kit.js';
import { World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
const RANGE = '10.46.0.0/26';
const LEASE_S = 4;
let cl: SimCluster;
let cs: SimContainer[] = [];
let h3Owned: string[] = [];
let heir: SimHost;

before(async () => {
  if (skip) return;
  cl = await buildCluster(world, 3, { ipallocRange: RANGE, extraArgs: ['--ipalloc-init', 'seed=h1,h2,h3', '--lease-timeout', String(LEASE_S)] });
  await waitMeshConverged(cl.hosts);
  cs = await Promise.all(cl.hosts.map((h) => addContainer(world, h, `c${h.name}`)));
});
after(() => world.cleanup());

const host = (i: number): SimHost => cl.hosts[i]!;

test('a host killed and deleted for good is reclaimed by the survivors after its lease', { skip, timeout: 60_000 }, async () => {
  const h3 = host(2);
  const before3 = await ringOf(h3);
  h3Owned = before3.owned.map((o) => o.range);
  assert.ok(h3Owned.length > 0, 'h3 owns a share');
  await h3.router.kill9();
  // The host is gone: its namespace (and with it its underlay link) and its container.
  await world.deleteNetns(cs[2]!.ns);
  await world.deleteNetns(h3.ns);
  const survivors = [host(0), host(1)];
  let views: RingNodeStatus[] = [];
  const reclaimed = await waitFor(async () => {
    views = await Promise.all(survivors.map((h) => ringOf(h)));
    return views.every((v) => v.peers.find((p) => p.id === 'h3')?.retired !== undefined);
  }, 30_000);
  assert.ok(reclaimed, `h1 and h2 retire h3 once its lease expired: ${JSON.stringify(views.map((v) => ({ me: v.me, peers: v.peers, votes: v.votes })))}\n${logsOf(survivors)}`);
  const rec = views[0]!.peers.find((p) => p.id === 'h3')!;
  assert.equal(rec.live, false);
  assert.equal(rec.retired!.reason, 'reclaim');
  assert.ok(['h1', 'h2'].includes(rec.retired!.heir), `a live peer inherits: ${rec.retired!.heir}`);
  assert.deepEqual(views[1]!.peers.find((p) => p.id === 'h3')!.retired, rec.retired, 'both survivors hold the same tombstone');
  heir = survivors.find((h) => h.name === rec.retired!.heir)!;
  // The heir now owns all of h3's former range (marked inherited); the survivors' shares tile the range.
  const after = await waitFor(async () => {
    views = await Promise.all(survivors.map((h) => ringOf(h)));
    return views.every((v) => v.state === 'ready' && v.peers.filter((p) => p.live).every((p) => views.some((x) => x.me === p.id && x.ownedSize === p.owned)));
  }, 10_000);
  assert.ok(after, `the survivors agree on who owns what: ${JSON.stringify(views.map((v) => v.peers))}`);
  const hv = views.find((v) => v.me === heir.name)!;
  for (const r of h3Owned) {
    const first = r.split('-')[0]!;
    const last = r.split('-')[1] ?? first;
    assert.ok(inRanges(first, hv.owned.map((o) => o.range)) && inRanges(last, hv.owned.map((o) => o.range)), `${heir.name} owns h3's former ${r}: ${JSON.stringify(hv.owned)}`);
  }
  assert.ok(hv.owned.some((o) => o.inherited), `${heir.name} marks the reclaimed space as inherited: ${JSON.stringify(hv.owned)}`);
  assert.equal(views.find((v) => v.me !== heir.name)!.peers.find((p) => p.id === 'h3')!.owned, '0', 'h3 owns nothing any more');
  assertPartition(RANGE, new Map(views.map((v) => [v.me, v.owned.map((o) => o.range)])));
  const human = await heir.router.weft('status', 'ipam');
  assert.match(human.stdout, /h3 .*reclaim by h[12], heir h[12]/, human.stdout);
});

test('the lost host\'s containers vanish from `weft ps --cluster` on the survivors', { skip, timeout: 30_000 }, async () => {
  for (const h of [host(0), host(1)]) {
    let rows: { host: string; containerId: string; reachable: boolean }[] = [];
    const gone = await waitFor(async () => {
      rows = await weftJson<typeof rows>(h.router, 'ps', '--cluster');
      return !rows.some((r) => r.containerId === cs[2]!.id);
    }, 15_000);
    assert.ok(gone, `${h.name} forgets h3's container: ${JSON.stringify(rows)}`);
    assert.deepEqual(rows.map((r) => r.containerId).sort(), [cs[0]!.id, cs[1]!.id].sort(), `${h.name} still lists the survivors' containers`);
    assert.ok(rows.every((r) => r.reachable));
  }
});

test('once the heir\'s own share is used up, new containers get addresses from the reclaimed space', { skip, timeout: 120_000 }, async () => {
  const other = heir === host(0) ? host(1) : host(0);
  const otherC = cs.find((c) => c.host === other)!;
  const inherited = (await ringOf(heir)).owned.filter((o) => o.inherited).map((o) => o.range);
  const own = (await ringOf(heir)).owned.filter((o) => !o.inherited).map((o) => o.range);
  const added: SimContainer[] = [];
  let first: SimContainer | undefined;
  // At most the whole range: far more than the heir's own share.
  for (let i = 0; i < 64 && !first; i++) {
    const c = await addContainer(world, heir, `f${i}`);
    added.push(c);
    if (inRanges(c.ip, inherited)) first = c;
    else assert.ok(inRanges(c.ip, own), `${c.ip} is in ${heir.name}'s own share ${own.join(',')} or the inherited ${inherited.join(',')}`);
  }
  assert.ok(first, `a container got an address from the reclaimed space: ${added.map((c) => c.ip).join(', ')}`);
  assert.ok(inRanges(first.ip, h3Owned), `${first.ip} lies in h3's former range ${h3Owned.join(',')}`);
  // It came only once the own share was exhausted: every address of it is allocated (or is the gateway).
  const ips = await ipList(heir.router);
  const taken = new Set([...ips.allocations.map((a) => a.ip), ...ips.reservations.map((r) => r.ip)]);
  const subnets = await heir.router.api().get<{ subnet: { name: string; cidr: string; gateway?: string } }[]>('/v1/subnets');
  const def = subnets.find((u) => u.subnet.name === 'default')!.subnet;
  const usable = usableRange(parseCidr(def.cidr));
  const ownFree = addressesIn(own).filter((ip) => {
    const v = parseIp(ip).value;
    return v >= usable.first && v <= usable.last && ip !== def.gateway && !taken.has(ip);
  });
  assert.deepEqual(ownFree, [], `no address of ${heir.name}'s own share was free when the inherited space was used`);
  assert.equal(new Set([...cs.slice(0, 2), ...added].map((c) => c.ip)).size, 2 + added.length, 'no address handed out twice');
  // The container with a reclaimed address is reachable from the other survivor.
  assert.ok(await pingEventually(otherC.ns, first.ip, 15_000), `${other.name} -> ${first.ip}\n${logsOf([host(0), host(1)])}`);
  assert.ok(await pingEventually(first.ns, otherC.ip, 15_000));
});
