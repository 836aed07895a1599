/**
 * The operator's ways of moving address space, against real routers:
 *  - `weft reset` on a live router hands its whole share to a live peer and
 *    leaves the ring (its ADDs are refused from then on);
 *  - `weft rmpeer NAME` on a stopped router, before its lease expires: refused
 *    while the peer was heard recently, then the running host takes over its
 *    space at once (a tombstone "rmpeer", not a lease reclaim). Run on two
 *    hosts concurrently, they end with one tombstone (had both been written,
 *    the lowest heir wins the merge); running it again is a no-op; the
 *    removed host's containers vanish from `weft ps --cluster`.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RingNodeStatus } from '../../src/core/ipam-ring/index.js';
import { addContainer, buildCluster, type SimCluster, type SimContainer, type SimHost, waitMeshConverged } from '../helpers/cluster.js';
import { assertPartition, inRanges, logsOf, ringOf } from '../helpers/cluster-faults.js';
import { waitFor, weftJson } from '../helpers/it-kit.js';
import { weftConf } from '../helpers/router.js';
import { World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
const RANGE = '10.47.0.0/24';
/** Long enough that rmpeer (possible once the peer is silent for lease/2) clearly comes first. */
const LEASE_S = 12;
let cl: SimCluster;
let cs: SimContainer[] = [];

before(async () => {
  if (skip) return;
  cl = await buildCluster(world, 4, { ipallocRange: RANGE, extraArgs: ['--ipalloc-init', 'seed=h1,h2,h3,h4', '--lease-timeout', String(LEASE_S)] });
  await waitMeshConverged(cl.hosts);
  cs = await Promise.all(cl.hosts.map((h) => addContainer(world, h, `c${h.name}`)));
});
after(() => world.cleanup());

const host = (i: number): SimHost => cl.hosts[i]!;
const rangesOf = (r: RingNodeStatus): string[] => r.owned.map((o) => o.range);
const covers = (ranges: readonly string[], inner: readonly string[]): boolean =>
  inner.every((r) => inRanges(r.split('-')[0]!, ranges) && inRanges(r.split('-')[1] ?? r, ranges));

test('weft reset on a live router hands its share to a live peer and leaves the ring', { skip, timeout: 60_000 }, async () => {
  const h2 = host(1);
  const owned2 = rangesOf(await ringOf(h2));
  const out = await weftJson<{ status: string; message: string }>(h2.router, 'reset');
  assert.equal(out.status, 'acked', `the heir acknowledged: ${JSON.stringify(out)}`);
  const heirName = /space handed to (\S+)/.exec(out.message)?.[1];
  assert.ok(heirName === 'h1' || heirName === 'h3' || heirName === 'h4', out.message);
  const heir = cl.hosts.find((h) => h.name === heirName)!;
  const st2 = await ringOf(h2);
  assert.equal(st2.state, 'left');
  assert.deepEqual(st2.owned, []);
  // Both others hold the tombstone, and the heir owns everything h2 had.
  const live = [host(0), host(2), host(3)];
  let views: RingNodeStatus[] = [];
  const seen = await waitFor(async () => {
    views = await Promise.all(live.map((h) => ringOf(h)));
    return views.every((v) => v.peers.find((p) => p.id === 'h2')?.retired?.reason === 'reset' && covers(rangesOf(views.find((x) => x.me === heirName)!), owned2));
  }, 10_000);
  assert.ok(seen, `h1, h3 and h4 see h2 retired by reset, ${heirName} owning ${owned2.join(',')}: ${JSON.stringify(views.map((v) => ({ me: v.me, owned: v.owned, peers: v.peers })))}`);
  for (const v of views) assert.deepEqual(v.peers.find((p) => p.id === 'h2')!.retired, { heir: heirName, by: 'h2', reason: 'reset', atHeartbeat: v.peers.find((p) => p.id === 'h2')!.retired!.atHeartbeat });
  assert.ok((await ringOf(heir)).owned.some((o) => o.inherited), 'the heir marks h2\'s space as inherited');
  assertPartition(RANGE, new Map(views.map((v) => [v.me, rangesOf(v)])));
  // h2 no longer allocates: an ADD is refused with the reason.
  const ns = await world.netns('cr');
  const add = await h2.router.cni({ command: 'ADD', containerId: `after-reset-${ns.name}`, netns: ns.path, ifname: 'eth0' }, weftConf());
  assert.notEqual(add.code, 0, `ADD on a router that left the ring is refused: ${add.stdout}`);
  assert.match(add.stdout, /left the IPAM ring/);
  // Its existing container is untouched and still announced.
  const rows = await weftJson<{ containerId: string; reachable: boolean }[]>(host(0).router, 'ps', '--cluster');
  assert.ok(rows.some((r) => r.containerId === cs[1]!.id && r.reachable), 'h2\'s container is still listed');
});

test('weft rmpeer on a stopped router before its lease expires: refused while it was heard recently, then immediate; concurrent runs agree', { skip, timeout: 60_000 }, async () => {
  const [h1, h2, h3, h4] = [host(0), host(1), host(2), host(3)];
  const owned3 = rangesOf(await ringOf(h3));
  assert.ok(owned3.length > 0);
  assert.equal(await h3.router.stop(), 0, 'h3 stops cleanly');
  const stoppedAt = Date.now();
  const early = await h1.router.weft('rmpeer', 'h3');
  assert.notEqual(early.code, 0, `rmpeer of a peer heard moments ago is refused: ${early.stdout}`);
  assert.match(early.stderr, /alive/, early.stderr);
  // The same command on h1 and h4 at once, repeated until both accept it.
  const outs = new Map<string, { removed: string; gained: string[] }>();
  let last = '';
  const done = await waitFor(async () => {
    await Promise.all([h1, h4].filter((h) => !outs.has(h.name)).map(async (h) => {
      const r = await h.router.weft('rmpeer', 'h3', '-o', 'json');
      last = `${h.name}: ${r.stdout}${r.stderr}`;
      if (r.code === 0) outs.set(h.name, JSON.parse(r.stdout) as { removed: string; gained: string[] });
    }));
    return outs.size === 2;
  }, 20_000);
  const elapsed = Date.now() - stoppedAt;
  assert.ok(done, `rmpeer succeeds on h1 and h4 once h3 is silent: ${last}\n${logsOf([h1, h4])}`);
  assert.ok(elapsed < LEASE_S * 1000, `rmpeer ran before the lease expired (${elapsed} ms)`);
  assert.equal(outs.get('h1')!.removed, 'h3');
  assert.equal(outs.get('h4')!.removed, 'h3');
  // Whoever ran first took h3's share; the other run was a no-op, or, if both wrote a tombstone
  // before hearing of the other's, the merge keeps the lowest heir (h1).
  const writers = [...outs].filter(([, o]) => o.gained.length > 0).map(([n]) => n);
  assert.ok(writers.length >= 1, `someone took h3's share: ${JSON.stringify([...outs])}`);
  for (const w of writers) assert.ok(covers(outs.get(w)!.gained, owned3), `${w} gained h3's share ${owned3.join(',')}: ${outs.get(w)!.gained.join(',')}`);
  const expectedHeir = writers.length === 2 ? 'h1' : writers[0]!;
  // Whatever the interleaving, every live host ends with the same tombstone.
  let views: RingNodeStatus[] = [];
  const agreed = await waitFor(async () => {
    views = await Promise.all([h1, h4].map((h) => ringOf(h)));
    const recs = views.map((v) => JSON.stringify(v.peers.find((p) => p.id === 'h3')?.retired));
    return recs.every((x) => x === recs[0]) && views.every((v) => v.peers.filter((p) => p.live).every((p) => views.some((x) => x.me === p.id && x.ownedSize === p.owned)));
  }, 10_000);
  assert.ok(agreed, `h1 and h4 agree: ${JSON.stringify(views.map((v) => ({ me: v.me, peers: v.peers })))}`);
  const rec = views[0]!.peers.find((p) => p.id === 'h3')!;
  assert.deepEqual({ live: rec.live, heir: rec.retired?.heir, by: rec.retired?.by, reason: rec.retired?.reason }, { live: false, heir: expectedHeir, by: expectedHeir, reason: 'rmpeer' });
  assert.ok(covers(rangesOf(views.find((v) => v.me === expectedHeir)!), owned3), `${expectedHeir} owns h3's former share`);
  // The two live peers' shares tile the range: no address was given to both.
  assertPartition(RANGE, new Map(views.map((v) => [v.me, rangesOf(v)])));
  // Idempotent: once more, on either host, changes nothing.
  for (const h of [h1, h4]) {
    const again = await weftJson<{ removed: string; gained: string[] }>(h.router, 'rmpeer', 'h3');
    assert.deepEqual(again, { removed: 'h3', gained: [] });
    assert.deepEqual((await ringOf(h)).peers.find((p) => p.id === 'h3')!.retired, rec.retired, 'the tombstone is unchanged');
  }
  // The removed host's containers are forgotten cluster-wide (also by h2, which left the ring but still meshes).
  for (const h of [h1, h2, h4]) {
    assert.ok(await waitFor(async () => !(await weftJson<{ containerId: string }[]>(h.router, 'ps', '--cluster')).some((r) => r.containerId === cs[2]!.id), 10_000), `${h.name} forgets h3's container`);
  }
});
