/**
 * Clocks that disagree, without touching the machine's clock. Of three
 * routers on a 4 s lease:
 *  - h2 runs with its wall clock (Date, through an `--import` preload) 36 h
 *    ahead, and in its own time namespace whose monotonic and boot clocks
 *    are 10 days ahead of the others';
 *  - h3 runs with its wall clock a year behind;
 * then, mid-run, h2's wall clock steps back by two days and h3's forward by
 * two years (what an NTP step or a manual `date` does). Through all of it
 * nobody is voted expired or reclaimed, the mesh takes no step for silence,
 * every host keeps allocating distinct addresses and the containers keep
 * talking: the ring judges leases on each host's own monotonic clock and
 * ships no timestamps, and the mesh times heartbeats and dead peers on a
 * monotonic clock too (a frozen peer is found dead right after a step back).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { addContainer, buildCluster, FAST_MESH, pingEventually, type SimCluster, type SimContainer, type SimHost, waitMeshConverged } from '../helpers/cluster.js';
import { logsOf, meshOf, ringOf } from '../helpers/cluster-faults.js';
import { waitFor } from '../helpers/it-kit.js';
import { exec } from '../helpers/exec.js';
import { TestRouter } from '../helpers/router.js';
import { World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
const RANGE = '10.50.0.0/24';
const LEASE_S = 4;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;
let cl: SimCluster;
let cs: SimContainer[] = [];

interface Skew { readonly wallMs: number; readonly stepMs: number; readonly monotonicS?: number }
const SKEWS: Record<string, Skew> = { h2: { wallMs: 36 * HOUR, stepMs: -2 * DAY, monotonicS: 10 * 86_400 }, h3: { wallMs: -YEAR, stepMs: 2 * YEAR } };

/** An ESM preload that shifts Date by `wallMs` and, on SIGUSR2, by `stepMs` more. */
function preload(dir: string, name: string, s: Skew): string {
  const file = join(dir, `clock-${name}.mjs`);
  writeFileSync(file, `
const RealDate = globalThis.Date;
const realNow = RealDate.now.bind(RealDate);
let offset = ${s.wallMs};
function SkewedDate(...args) {
  if (!new.target) return new RealDate(realNow() + offset).toString();
  return args.length === 0 ? new RealDate(realNow() + offset) : new RealDate(...args);
}
SkewedDate.prototype = RealDate.prototype;
SkewedDate.now = () => realNow() + offset;
SkewedDate.parse = RealDate.parse;
SkewedDate.UTC = RealDate.UTC;
globalThis.Date = SkewedDate;
process.on('SIGUSR2', () => { offset += ${s.stepMs}; });
`);
  return pathToFileURL(file).href;
}

/** The same router as buildCluster made, but started through the clock wrappers. */
function skewedRouter(h: SimHost, s: Skew, ips: readonly string[], dir: string): TestRouter {
  const url = preload(dir, h.name, s);
  const wrapped = {
    tempDir: (tag?: string) => world.tempDir(tag),
    spawnIn: (ns: Parameters<World['spawnIn']>[0], cmd: string, args: readonly string[]) => {
      const node = [cmd, '--import', url, ...args];
      return s.monotonicS === undefined ? world.spawnIn(ns, node[0]!, node.slice(1))
        : world.spawnIn(ns, 'unshare', ['--time', '--monotonic', String(s.monotonicS), '--boottime', String(s.monotonicS), ...node]);
    },
  } as unknown as World;
  return new TestRouter(wrapped, h.ns, {
    ipallocRange: RANGE, name: h.name,
    extraArgs: ['--advertise-addr', h.ip, ...FAST_MESH, '--ipalloc-init', 'seed=h1,h2,h3', '--lease-timeout', String(LEASE_S), ips[0]!],
  });
}

before(async () => {
  if (skip) return;
  cl = await buildCluster(world, 3, { ipallocRange: RANGE, extraArgs: ['--ipalloc-init', 'seed=h1,h2,h3', '--lease-timeout', String(LEASE_S)], start: false });
  const dir = world.tempDir('weft-clock');
  const ips = cl.hosts.map((h) => h.ip);
  for (const h of cl.hosts) { const s = SKEWS[h.name]; if (s) h.router = skewedRouter(h, s, ips, dir); }
  await Promise.all(cl.hosts.map((h) => h.router.start()));
  await waitMeshConverged(cl.hosts);
  cs = await Promise.all(cl.hosts.map((h) => addContainer(world, h, `c${h.name}`)));
});
after(() => world.cleanup());

/** The wall clock a router's log lines carry, minus ours. */
function wallSkewOf(h: SimHost): number {
  const lines = h.router.log.trim().split('\n').filter((l) => l.startsWith('{'));
  const t = Date.parse((JSON.parse(lines[lines.length - 1]!) as { time: string }).time);
  return t - Date.now();
}

/**
 * Watches the ring views for `ms`: no vote, no tombstone, every peer live
 * (a peer's lease would have to look expired on some router for any of
 * these). Returns the problems seen. Transient at-risk states and mesh
 * reconnections are not counted here: a CPU-starved test machine causes
 * those too (the tests' mesh declares a peer dead after 0.4 s); the mesh
 * is checked for the clock-specific symptom instead (meshClockSymptoms).
 */
async function watch(ms: number): Promise<string[]> {
  const problems = new Set<string>();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (const h of cl.hosts) {
      const r = await ringOf(h);
      if (r.tombstones > 0) problems.add(`${h.name}: tombstones ${JSON.stringify(r.peers.filter((p) => p.retired))}`);
      for (const v of r.votes) problems.add(`${h.name}: vote against ${v.suspect} by ${v.voters.join(',')}`);
      for (const p of r.peers) if (!p.live) problems.add(`${h.name}: ${p.id} not live`);
    }
    await new Promise((res) => setTimeout(res, 250));
  }
  return [...problems];
}

/** Mesh connections closed as silent for longer than this test has been running: a clock step taken for silence. */
function meshClockSymptoms(): string[] {
  return cl.hosts.flatMap((h) => h.router.log.split('\n').filter((l) => {
    const m = /nothing received for (\d+) ms/.exec(l);
    return m !== null && Number(m[1]) > 10 * 60_000;
  }).map((l) => `${h.name}: ${l}`));
}

/** Eventually every router reaches every other one and every ring is ready. */
async function settled(): Promise<void> {
  await waitMeshConverged(cl.hosts, 20_000);
  let rs: Awaited<ReturnType<typeof ringOf>>[] = [];
  const ok = await waitFor(async () => {
    rs = await Promise.all(cl.hosts.map((h) => ringOf(h)));
    return rs.every((r) => r.state === 'ready' && r.tombstones === 0 && r.peers.every((p) => p.live));
  }, 15_000);
  assert.ok(ok, `every ring is ready and whole: ${JSON.stringify(rs.map((r) => ({ me: r.me, state: r.state, peers: r.peers })))}`);
}

test('the skews are real: wall clocks a day and a year off, a monotonic clock 10 days ahead', { skip, timeout: 30_000 }, async () => {
  assert.ok(Math.abs(wallSkewOf(cl.hosts[0]!)) < HOUR, 'h1 runs on the machine\'s clock');
  assert.ok(Math.abs(wallSkewOf(cl.hosts[1]!) - 36 * HOUR) < HOUR, `h2's wall clock is 36 h ahead: ${wallSkewOf(cl.hosts[1]!)}`);
  assert.ok(Math.abs(wallSkewOf(cl.hosts[2]!) + YEAR) < HOUR, `h3's wall clock is a year behind: ${wallSkewOf(cl.hosts[2]!)}`);
  const up = async (pid: number): Promise<number> => Number((await exec('nsenter', [`--target=${pid}`, '--time', 'cat', '/proc/uptime'])).stdout.split(' ')[0]);
  const d = (await up(cl.hosts[1]!.router.pid!)) - (await up(cl.hosts[0]!.router.pid!));
  assert.ok(Math.abs(d - 10 * 86_400) < 60, `h2's monotonic clock is 10 days ahead: ${d} s`);
});

test('skewed clocks: no lease expires, no vote, no reclaim; addresses distinct; containers talk', { skip, timeout: 60_000 }, async () => {
  const problems = await watch(1.5 * LEASE_S * 1000);
  assert.deepEqual(problems, [], logsOf(cl.hosts));
  await settled();
  assert.equal(new Set(cs.map((c) => c.ip)).size, 3);
  for (const a of cs) for (const b of cs) if (a !== b) assert.ok(await pingEventually(a.ns, b.ip, 10_000), `${a.host.name} -> ${b.host.name}`);
});

test('wall-clock steps mid-run (h2 back two days, h3 forward two years) disturb neither the mesh nor the ring', { skip, timeout: 90_000 }, async () => {
  const [h2, h3] = [cl.hosts[1]!, cl.hosts[2]!];
  process.kill(h2.router.pid!, 'SIGUSR2');
  process.kill(h3.router.pid!, 'SIGUSR2');
  const problems = await watch(1.5 * LEASE_S * 1000);
  assert.deepEqual(problems, [], logsOf(cl.hosts, 30));
  // A forward step must not look like years of silence to the mesh (every connection dropped at once).
  assert.deepEqual(meshClockSymptoms(), [], 'no connection was closed for a silence as long as the clock step');
  await settled();
  // Every host still allocates (from its own share: no one lost space), and the new containers talk.
  const more = await Promise.all(cl.hosts.map((h) => addContainer(world, h, `d${h.name}`)));
  const all = [...cs, ...more];
  assert.equal(new Set(all.map((c) => c.ip)).size, all.length, `distinct: ${all.map((c) => c.ip).join(', ')}`);
  for (const a of more) for (const b of more) if (a !== b) assert.ok(await pingEventually(a.ns, b.ip, 10_000), `${a.host.name} -> ${b.host.name}`);
  // The steps did happen (the ADDs above logged lines stamped with the new clocks).
  assert.ok(Math.abs(wallSkewOf(h2) - (36 * HOUR - 2 * DAY)) < HOUR, `h2's wall clock stepped back: ${wallSkewOf(h2)}`);
  assert.ok(Math.abs(wallSkewOf(h3) - YEAR) < HOUR, `h3's wall clock stepped forward: ${wallSkewOf(h3)}`);
});

test('a peer that stops right after a backward step of the wall clock is still found dead', { skip, timeout: 60_000 }, async () => {
  const [h1, h2] = [cl.hosts[0]!, cl.hosts[1]!];
  const h1Peer = (await meshOf(h1)).peer;
  // h1 freezes (its TCP connections stay open: only the dead timer can tell), and at once h2's wall clock steps back two days.
  process.kill(h1.router.pid!, 'SIGSTOP');
  let noticed = false;
  try {
    process.kill(h2.router.pid!, 'SIGUSR2');
    const end = Date.now() + 3_000;
    while (!noticed && Date.now() < end) {
      const m = await meshOf(h2);
      noticed = !m.connections.some((c) => c.peer === h1Peer && c.state === 'established');
      if (!noticed) await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    process.kill(h1.router.pid!, 'SIGCONT');
  }
  assert.ok(noticed, `h2 drops its connection to the frozen h1 within 3 s (dead timer ${2 * 200} ms) despite its clock stepping back\n${logsOf([h2], 15)}`);
  // Everything recovers, and h1 was not reclaimed (it was frozen for less than a lease).
  await settled();
  assert.ok(await pingEventually(cs[1]!.ns, cs[0]!.ip, 10_000));
});
