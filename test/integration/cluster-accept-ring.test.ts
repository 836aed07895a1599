/**
 * A genesis conflict and the operator's way out (docs/ring.md, "Getting out
 * of a genesis conflict"). Two routers are seeded alone (`seed=h1`,
 * `seed=h2`), each gives its first container the same address, and h2 has
 * a second container. Then h2 connects to h1: h1's ring precedes (lower
 * genesis id), so h2 refuses it and reports `conflict`. `weft accept-ring`
 * on h2 adopts h1's ring: h2's second address is claimed from h1, the
 * shared one is reported as a duplicate until its container goes, and h2
 * allocates again (a block from h1).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RingNodeStatus } from '../../src/core/ipam-ring/index.js';
import { addContainer, buildCluster, pingEventually, type SimCluster, type SimContainer, type SimHost, waitMeshConverged } from '../helpers/cluster.js';
import { ringOf } from '../helpers/cluster-faults.js';
import { waitFor, weftJson } from '../helpers/it-kit.js';
import { weftConf } from '../helpers/router.js';
import { World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
let cl: SimCluster;
let h1: SimHost;
let h2: SimHost;
let c1: SimContainer;
let c2a: SimContainer;
let c2b: SimContainer;

before(async () => {
  if (skip) return;
  cl = await buildCluster(world, 2, {
    ipallocRange: '10.44.0.0/24',
    extraArgs: ({ name }) => ['--ipalloc-init', `seed=${name}`],
    peersOf: () => [], // apart at first
  });
  [h1, h2] = [cl.hosts[0]!, cl.hosts[1]!];
  c1 = await addContainer(world, h1, 'c1');
  c2a = await addContainer(world, h2, 'c2a');
  c2b = await addContainer(world, h2, 'c2b');
});
after(() => world.cleanup());

test('two rings seeded apart: the one whose genesis does not precede refuses the other (conflict), allocation stops there', { skip, timeout: 60_000 }, async () => {
  assert.equal(c1.ip, c2a.ip, 'each router handed out the same first address');
  assert.notEqual(c2b.ip, c2a.ip);
  const r = await h2.router.weft('connect', h1.ip);
  assert.equal(r.code, 0, r.stderr);
  await waitMeshConverged(cl.hosts);
  let st: RingNodeStatus | undefined;
  assert.ok(await waitFor(async () => (st = await ringOf(h2)).state === 'conflict', 15_000), `h2 is in conflict: ${JSON.stringify(st)}`);
  assert.equal((await ringOf(h1)).state, 'ready', 'h1 keeps its ring');
  // CNI STATUS says why h2 cannot allocate, and an ADD there fails with that reason.
  const status = await h2.router.cni({ command: 'STATUS' }, weftConf());
  assert.equal((status.json as { code?: number }).code, 50, status.stdout);
  assert.match(status.stdout, /conflict/);
  // The operator's command is refused where there is no conflict.
  const refused = await h1.router.weft('accept-ring');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /not in conflict/);
});

test('weft accept-ring: the other ring is adopted, addresses in use are claimed, the duplicate is reported until its container goes', { skip, timeout: 90_000 }, async () => {
  const out = await weftJson<{ accepted: boolean; claimed: string[]; duplicates: { address: string; why: string }[] }>(h2.router, 'accept-ring');
  assert.equal(out.accepted, true);
  assert.deepEqual(out.claimed, [c2b.ip], 'the address only h2 uses is granted to h2');
  assert.deepEqual(out.duplicates.map((d) => d.address), [c2a.ip], 'the address both use is a duplicate');
  assert.match(out.duplicates[0]!.why, /in-use/);
  const g1 = (await ringOf(h1)).genesis;
  assert.ok(await waitFor(async () => { const s = await ringOf(h2); return s.state === 'ready' && JSON.stringify(s.genesis) === JSON.stringify(g1); }, 15_000), 'h2 runs on h1\'s ring');
  const warned = await weftJson<{ warnings: string[] }>(h2.router, 'status');
  assert.ok(warned.warnings.some((w) => w.includes(`address ${c2a.ip} is in use here and on another host`)), JSON.stringify(warned.warnings));
  // The claimed address works across hosts (h1 learnt that h2 owns it).
  assert.ok(await pingEventually(c1.ns, c2b.ip, 15_000), 'c1 -> c2b');
  // The duplicate goes with its container; h2 allocates again, from a block h1 gives it, never an address h1 uses.
  const del = await h2.router.cni({ command: 'DEL', containerId: c2a.id, netns: c2a.ns.path, ifname: 'eth0' }, weftConf());
  assert.equal(del.code, 0, del.stdout + del.stderr);
  const after = await weftJson<{ warnings: string[] }>(h2.router, 'status');
  assert.ok(!after.warnings.some((w) => w.includes('in use here and on another host')), JSON.stringify(after.warnings));
  const c2c = await addContainer(world, h2, 'c2c');
  assert.ok(![c1.ip, c2b.ip].includes(c2c.ip), `a fresh address: ${c2c.ip}`);
  assert.ok(await pingEventually(c1.ns, c2c.ip, 15_000), 'c1 -> c2c');
  assert.ok(await pingEventually(c2c.ns, c1.ip, 15_000), 'c2c -> c1');
});
