/**
 * Five real routers on one simulated underlay, launched as a chain (each
 * names only the previous one): discovery completes the mesh, every router
 * sees the four others, the containers (one per host, attached in parallel)
 * get distinct addresses and all twenty ordered pairs reach each other.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addContainer, buildCluster, pingEventually, type SimCluster, type SimContainer, waitMeshConverged } from '../helpers/cluster.js';
import { assertPartition, inRanges, logsOf, ringOf, tcpRoundTrip } from '../helpers/cluster-faults.js';
import { waitFor, weftJson } from '../helpers/it-kit.js';
import { World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
const RANGE = '10.44.0.0/16';
const NAMES = ['h1', 'h2', 'h3', 'h4', 'h5'];
let cl: SimCluster;
let cs: SimContainer[] = [];

before(async () => {
  if (skip) return;
  cl = await buildCluster(world, 5, {
    names: NAMES, ipallocRange: RANGE, extraArgs: ['--ipalloc-init', `seed=${NAMES.join(',')}`],
    peersOf: (i, ips) => (i === 0 ? [] : [ips[i - 1]!]),
  });
  await waitMeshConverged(cl.hosts, 30_000);
  cs = await Promise.all(cl.hosts.map((h) => addContainer(world, h, `c${h.name}`)));
});
after(() => world.cleanup());

interface PeerRow { nickname: string; self: boolean; reachable: boolean; direct: boolean; underlay: string | null; endpoints: number }

test('every router sees the four others, directly connected by discovery', { skip, timeout: 60_000 }, async () => {
  for (const h of cl.hosts) {
    let rows: PeerRow[] = [];
    const ok = await waitFor(async () => {
      rows = await weftJson<PeerRow[]>(h.router, 'status', 'peers');
      const others = rows.filter((r) => !r.self);
      return others.length === 4 && others.every((r) => r.reachable && r.direct && r.endpoints === 1);
    }, 20_000);
    assert.ok(ok, `${h.name} sees four reachable, directly connected peers with one container each: ${JSON.stringify(rows)}`);
    assert.deepEqual(rows.filter((r) => !r.self).map((r) => r.nickname).sort(), NAMES.filter((n) => n !== h.name));
    assert.deepEqual(rows.filter((r) => !r.self).map((r) => r.underlay).sort(), cl.hosts.filter((o) => o !== h).map((o) => o.ip).sort());
    const human = await h.router.weft('status', 'peers');
    assert.equal(human.code, 0, human.stderr);
    for (const n of NAMES) assert.match(human.stdout, new RegExp(`\\b${n}\\b`), `${h.name}: ${human.stdout}`);
  }
});

test('addresses are distinct and each lies in its host\'s share of one ring', { skip, timeout: 30_000 }, async () => {
  assert.equal(new Set(cs.map((c) => c.ip)).size, 5, `distinct addresses: ${cs.map((c) => c.ip).join(', ')}`);
  const rings = await Promise.all(cl.hosts.map((h) => ringOf(h)));
  const owned = new Map(rings.map((r) => [r.me, r.owned.map((o) => o.range)]));
  assertPartition(RANGE, owned);
  for (const c of cs) assert.ok(inRanges(c.ip, owned.get(c.host.name)!), `${c.ip} is in ${c.host.name}'s share ${owned.get(c.host.name)!.join(',')}`);
  for (const r of rings) assert.deepEqual(r.genesis, rings[0]!.genesis, 'one genesis');
});

test('all twenty ordered pairs of containers reach each other; TCP across the chain\'s ends', { skip, timeout: 90_000 }, async () => {
  const pairs = cs.flatMap((x) => cs.filter((y) => y !== x).map((y) => [x, y] as const));
  const results = await Promise.all(pairs.map(async ([x, y]) => ({ x, y, ok: await pingEventually(x.ns, y.ip, 20_000) })));
  const bad = results.filter((r) => !r.ok).map((r) => `${r.x.host.name} -> ${r.y.host.name} (${r.y.ip})`);
  assert.deepEqual(bad, [], `unreachable pairs\n${logsOf(cl.hosts, 10)}`);
  assert.equal(await tcpRoundTrip(world, cs[4]!, cs[0]!, 7201), 'pong:ping');
  // The cluster-wide listing on any host shows all five containers.
  const rows = await weftJson<{ host: string; ips: string[]; reachable: boolean }[]>(cl.hosts[2]!.router, 'ps', '--cluster');
  assert.deepEqual(rows.map((r) => `${r.host} ${r.ips.join(',')} ${r.reachable}`).sort(), cs.map((c) => `${c.host.name} ${c.ip} true`).sort());
});
