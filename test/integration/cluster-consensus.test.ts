/**
 * Three routers launched at the same moment with `--ipalloc-init
 * consensus=3` and no seed, each handed containers at once (before the mesh
 * has even formed): the first ADDs start the Paxos round, every host ends up
 * allocating, no address is handed out twice, and all three hold the same
 * ring, whose owned ranges are disjoint and cover the whole range.
 *
 * The round decides as soon as a quorum (2 of 3) has accepted, so a router
 * whose row arrives late may not be a founder (docs/ring.md, "Start-up");
 * it then gets a block from a founder like any later peer. Either way every
 * host allocates (cluster-latecomer.test.ts makes that case deterministic).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addContainer, buildCluster, pingEventually, type SimCluster, type SimContainer, type SimHost, waitMeshConverged } from '../helpers/cluster.js';
import { assertPartition, inRanges, logsOf, ringOf } from '../helpers/cluster-faults.js';
import { waitFor, weftJson } from '../helpers/it-kit.js';
import { World, canCreateNetns } from '../helpers/world.js';
import type { RingNodeStatus } from '../../src/core/ipam-ring/index.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
const RANGE = '10.45.0.0/24';
const PER_HOST = 2;
let cl: SimCluster;
let hosts: SimHost[] = [];
let cs: SimContainer[] = [];

before(async () => {
  if (skip) return;
  // Each host names the two others; all three processes are spawned together (buildCluster starts them in parallel).
  cl = await buildCluster(world, 3, {
    ipallocRange: RANGE, extraArgs: ['--ipalloc-init', 'consensus=3'],
    peersOf: (i, ips) => ips.filter((_, j) => j !== i),
  });
  hosts = cl.hosts;
  // ADDs on every host at once, without waiting for the mesh: they wait for the consensus the first of them starts.
  cs = await Promise.all(hosts.flatMap((h) => Array.from({ length: PER_HOST }, (_, k) => addContainer(world, h, `c${h.name}${k}`))));
});
after(() => world.cleanup());

test('every host allocates, and no address is handed out twice', { skip, timeout: 30_000 }, async () => {
  assert.equal(cs.length, 3 * PER_HOST);
  assert.equal(new Set(cs.map((c) => c.ip)).size, cs.length, `distinct addresses: ${cs.map((c) => `${c.host.name}=${c.ip}`).join(', ')}`);
  for (const h of hosts) {
    const s = await weftJson<RingNodeStatus>(h.router, 'status', 'ipam');
    assert.equal(s.state, 'ready', `${h.name}: ${JSON.stringify(s)}`);
    assert.equal(s.init, 'consensus');
    for (const c of cs.filter((x) => x.host === h)) assert.ok(inRanges(c.ip, s.owned.map((o) => o.range)), `${c.ip} lies in ${h.name}'s own share ${s.owned.map((o) => o.range).join(',')}`);
  }
});

test('all hosts hold the same ring: one consensus genesis founded by a quorum, owned ranges tiling the range', { skip, timeout: 30_000 }, async () => {
  await waitMeshConverged(hosts);
  let rings: RingNodeStatus[] = [];
  // Views agree once the last heartbeats and free-space reports have spread.
  const agree = await waitFor(async () => {
    rings = await Promise.all(hosts.map((h) => ringOf(h)));
    const views = rings.map((r) => JSON.stringify(r.peers.map((p) => [p.id, p.live, p.owned])));
    return views.every((v) => v === views[0]);
  }, 10_000);
  assert.ok(agree, `every host sees the same owners: ${JSON.stringify(rings.map((r) => r.peers))}\n${logsOf(hosts)}`);
  const g = rings[0]!.genesis;
  assert.ok(g, 'a ring exists');
  assert.match(g.id, /^consensus:/, `a consensus genesis: ${g.id}`);
  assert.ok(g.founders >= 2 && g.founders <= 3, `a quorum of the three founded the ring: ${g.founders}`);
  for (const r of rings) assert.deepEqual(r.genesis, g, `${r.me} holds the same genesis`);
  assert.deepEqual(rings.map((r) => r.me).sort(), hosts.map((h) => h.name).sort(), 'each router runs under its own name (nobody was retired and rejoined)');
  for (const r of rings) {
    assert.equal(r.tombstones, 0, `${r.me}: nobody retired`);
    assert.equal(r.conflict, null, `${r.me}: no genesis conflict`);
    assert.ok(r.peers.every((p) => p.live && BigInt(p.owned) > 0n), `${r.me}: every host owns space: ${JSON.stringify(r.peers)}`);
  }
  assertPartition(RANGE, new Map(rings.map((r) => [r.me, r.owned.map((o) => o.range)])));
  // Each host's own view of the others' sizes matches what they report themselves.
  for (const r of rings) for (const p of r.peers) assert.equal(p.owned, rings.find((x) => x.me === p.id)!.ownedSize, `${r.me}'s view of ${p.id}`);
});

test('the containers allocated during the consensus reach each other across hosts', { skip, timeout: 60_000 }, async () => {
  const firsts = hosts.map((h) => cs.find((c) => c.host === h)!);
  for (const x of firsts) for (const y of firsts) if (x !== y) assert.ok(await pingEventually(x.ns, y.ip, 15_000), `${x.host.name} -> ${y.host.name} (${y.ip})`);
});
