/**
 * The late consensus participant, made deterministic: two routers launched
 * together with `--ipalloc-init consensus=3` reach the quorum (2 of 3) and
 * found a /24 ring between the two of them, 128 addresses each. The third
 * router, launched afterwards with the same flags, adopts that ring by
 * gossip and owns nothing; its first ADD must get a block from a founder.
 * (With a fixed 64-address block a founder holding 126 free addresses would
 * refuse, because a donor keeps at least one block for itself; the router
 * sizes blocks to the range, see blockSizeFor in src/daemon/ring-service.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RingNodeStatus } from '../../src/core/ipam-ring/index.js';
import { addContainer, buildCluster, pingEventually, type SimCluster, type SimContainer, type SimHost, waitMeshConverged } from '../helpers/cluster.js';
import { assertPartition, inRanges, ringOf } from '../helpers/cluster-faults.js';
import { waitFor } from '../helpers/it-kit.js';
import { World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
const RANGE = '10.48.0.0/24';
let cl: SimCluster;
let founders: SimHost[] = [];
let cs: SimContainer[] = [];

before(async () => {
  if (skip) return;
  cl = await buildCluster(world, 3, {
    ipallocRange: RANGE, extraArgs: ['--ipalloc-init', 'consensus=3'],
    peersOf: (i, ips) => ips.filter((_, j) => j !== i),
    start: false,
  });
  founders = cl.hosts.slice(0, 2);
  await Promise.all(founders.map((h) => h.router.start()));
  cs = await Promise.all(founders.map((h) => addContainer(world, h, `c${h.name}`)));
});
after(() => world.cleanup());

test('two of three found the ring; the third, launched later, gets a block at its first ADD', { skip, timeout: 60_000 }, async () => {
  const g = (await ringOf(founders[0]!)).genesis;
  assert.ok(g && /^consensus:/.test(g.id) && g.founders === 2, `the two running routers founded the ring: ${JSON.stringify(g)}`);
  const h3 = cl.hosts[2]!;
  await h3.router.start();
  await waitMeshConverged(cl.hosts);
  let st: RingNodeStatus | undefined;
  assert.ok(await waitFor(async () => (st = await ringOf(h3)).genesis !== null, 10_000), 'h3 adopts the ring by gossip');
  assert.deepEqual(st!.genesis, g, 'the same ring, not a second one');
  assert.equal(st!.ownedSize, '0', 'the latecomer owns nothing until it needs addresses');
  const c = await addContainer(world, h3, 'c3');
  assert.ok(!cs.some((x) => x.ip === c.ip), `${c.ip} is not handed out twice`);
  const mine = await ringOf(h3);
  assert.ok(BigInt(mine.ownedSize) > 0n && inRanges(c.ip, mine.owned.map((o) => o.range)), `h3 was granted a block holding ${c.ip}: ${JSON.stringify(mine.owned)}`);
  assert.ok(BigInt(mine.ownedSize) <= 64n, `a block, not a founder's share: ${mine.ownedSize}`);
  // A second container on h3 comes from the same block, without asking again.
  const c2 = await addContainer(world, h3, 'c3b');
  assert.ok(inRanges(c2.ip, mine.owned.map((o) => o.range)));
  let rings: RingNodeStatus[] = [];
  assert.ok(await waitFor(async () => {
    rings = await Promise.all(cl.hosts.map((h) => ringOf(h)));
    const views = rings.map((r) => JSON.stringify(r.peers.map((p) => [p.id, p.owned])));
    return views.every((v) => v === views[0]);
  }, 10_000), `all three agree after the grant: ${JSON.stringify(rings.map((r) => r.peers))}`);
  assertPartition(RANGE, new Map(rings.map((r) => [r.me, r.owned.map((o) => o.range)])));
  assert.ok(await pingEventually(c.ns, cs[0]!.ip, 15_000), 'the latecomer\'s container reaches a founder\'s');
  assert.ok(await pingEventually(cs[1]!.ns, c2.ip, 15_000));
});
