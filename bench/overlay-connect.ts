/**
 * Time from `weft connect ADDR` to cross-host reachability, on two simulated
 * hosts on one underlay switch, default mesh timers:
 *
 *  - h1 runs `weft launch --advertise-addr 192.0.2.1 --ipalloc-init seed=h1`
 *    (a one-host cluster that owns the range) with container c1;
 *  - h2 runs `weft launch --advertise-addr 192.0.2.2 --ipalloc-init seed=h1`
 *    with NO peers: a new host, which owns no address space until it joins;
 *  - a runtime's ADD for c2 on h2 is already waiting in h2's router (sent
 *    1 s before; ADD waits for address space, docs/ring.md);
 *  - then, inside h2's netns, the CLI `weft connect 192.0.2.1`. The result
 *    is the time from starting that CLI to the first echo reply of a
 *    `ping -D -i 0.01` from c2 to c1, started the moment the ADD returns.
 *
 * So it includes: the CLI (Node start-up + one API call), the mesh
 * handshake, h2 obtaining a block of addresses from h1 over the ring, the
 * rest of the ADD (veth, addresses), gossip of the endpoints and the
 * kernel overlay programming on both hosts. Why not containers on both
 * hosts before connecting: a router that hears peers owning at most half
 * of the range pauses allocation (partition safety), so a lone host of a
 * two-seed ring cannot attach containers.
 *
 * ARP: until the overlay is programmed a container's ARP requests go
 * unanswered, and with the default 1 s retransmit timer it would ask again
 * only up to a second later (measuring the kernel's ARP timer, not weft).
 * Both containers therefore get net.ipv4.neigh.*.retrans_time_ms=10 inside
 * their own netns.
 *
 * Each run builds fresh namespaces and routers (a router restarted on a
 * host keeps the old kernel entries) and deletes them afterwards.
 */
import type { ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { Netns, World } from '../test/helpers/world.js';
import { addWeftContainer, buildUnderlay, sysctlIn, type WeftHost, weftRouters } from './lib/cluster.js';
import { round, summarize, type Summary } from './lib/stats.js';
import { load1, progress, sleep } from './lib/util.js';

export interface ConnectRun {
  /** From starting `weft connect` to the first echo reply. */
  readonly reachableMs: number;
  /** How long the `weft connect` CLI process took (Node start-up + one API call). */
  readonly cliMs: number;
  /** From starting the CLI until the waiting ADD on h2 returned. */
  readonly addMs: number;
  /** From starting the CLI to the first 'overlay applied' log record of each router (undefined: none seen). */
  readonly overlayAppliedMs: { h1?: number; h2?: number };
  readonly load1: number;
  /** The routers' log records of each step, ms after starting the CLI (log timestamps have ms resolution). */
  readonly timeline: TimelineEvent[];
}

export interface TimelineEvent {
  readonly host: string;
  readonly atMs: number;
  readonly event: string;
}

export interface ConnectResults {
  readonly runs: ConnectRun[];
  readonly reachable: Summary;
  readonly cli: Summary;
  readonly add: Summary;
  readonly meshTimers: string;
}

/** Log records of the steps between `weft connect` and reachability, as events relative to t0. */
const STEPS: [RegExp, string][] = [
  [/^mesh \S+: connected to/, 'mesh connection established'],
  [/^IPAM ring ownership changed$/, 'ring: address block granted'],
  [/^ADD retried after the IPAM ring granted space$/, 'ADD retried (space granted)'],
  [/^veth attached$/, 'container veth attached'],
  [/^overlay applied$/, 'overlay applied'],
];

function timelineOf(h: WeftHost, t0: number): TimelineEvent[] {
  const out: TimelineEvent[] = [];
  for (const line of h.router.log.split('\n')) {
    let r: { msg?: string; time?: string; changes?: Record<string, number>; ipLines?: number };
    try { r = JSON.parse(line) as typeof r; } catch { continue; }
    if (!r.msg || !r.time || r.ipLines !== undefined) continue; // overlay applied is logged twice; keep the summary record
    const t = Date.parse(r.time) - t0;
    if (t < 0) continue;
    const step = STEPS.find(([re]) => re.test(r.msg!));
    if (!step) continue;
    out.push({ host: h.name, atMs: t, event: step[1] === 'overlay applied' && r.changes ? `overlay applied (${Object.entries(r.changes).map(([k, v]) => `${k} ${v}`).join(', ')})` : step[1] });
  }
  return out;
}

/** A continuous `ping -D -i 0.01` whose first reply resolves `first` with its -D timestamp (ms since epoch). */
function pinger(world: World, from: Parameters<World['spawnIn']>[0], to: string): { child: ChildProcess; first: Promise<number>; replies: () => number; raw: () => string } {
  const child = world.spawnIn(from, 'ping', ['-D', '-n', '-i', '0.01', '-W', '1', to]);
  let n = 0;
  let buf = '';
  let raw = '';
  child.stderr!.setEncoding('utf8').on('data', (x: string) => { raw += x; });
  const first = new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      raw += s;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const m = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(line);
        if (m) { n++; if (n === 1) resolve(Number(m[1]) * 1000); }
      }
    });
    child.once('exit', (c) => reject(new Error(`ping exited (${c}) before a reply`)));
  });
  first.catch(() => undefined);
  return { child, first, replies: () => n, raw: () => raw };
}

async function oneRun(world: World, i: number, timeoutMs: number): Promise<ConnectRun> {
  const u = await buildUnderlay(world, 'cn', 2);
  const hosts: WeftHost[] = weftRouters(world, u, { seeds: ['h1'] });
  const nss: Netns[] = [u.sw, ...u.hosts.map((h) => h.ns)];
  let ping: ReturnType<typeof pinger> | undefined;
  try {
    await Promise.all(hosts.map((h) => h.router.start()));
    const [h1, h2] = hosts as [WeftHost, WeftHost];
    const c1 = await addWeftContainer(world, h1, 'cnc');
    nss.push(c1.ns);
    await sysctlIn(c1.ns, { 'net.ipv4.neigh.eth0.retrans_time_ms': '10' });
    const c2ns = await world.netns('cnc');
    nss.push(c2ns);
    let addDone: number | undefined;
    const add = addWeftContainer(world, h2, 'cnc', true, c2ns).then((c) => { addDone = Date.now(); return c; });
    add.catch(() => undefined);
    await sleep(1000);
    if (addDone !== undefined) throw new Error('connect: the ADD on the lone new host succeeded before `weft connect` (it should wait for address space)');
    const l = load1();
    const t0 = Date.now();
    const p0 = performance.now();
    const out = await h2.router.weft('connect', h1.ip);
    const cliMs = performance.now() - p0;
    if (out.code !== 0) throw new Error(`weft connect failed (exit ${out.code}): ${out.stdout}${out.stderr}`);
    const c2 = await add;
    // eth0 exists only now (a netns has no neigh.default to set beforehand); nothing was sent from c2 yet.
    await sysctlIn(c2.ns, { 'net.ipv4.neigh.eth0.retrans_time_ms': '10' });
    ping = pinger(world, c2.ns, c1.ip);
    const first = await Promise.race([ping.first, sleep(timeoutMs).then(() => undefined)]);
    if (first === undefined) throw new Error(`connect: no reply within ${timeoutMs} ms after weft connect:\n${hosts.map((h) => `--- ${h.name}\n${h.router.log.split('\n').slice(-15).join('\n')}`).join('\n')}`);
    // The routers' log lines reach us through pipes; give the last ones a moment.
    await sleep(500);
    const timeline = [...hosts.flatMap((h) => timelineOf(h, t0)), { host: 'c2', atMs: round(first - t0, 1), event: 'first echo reply' }].sort((a, b) => a.atMs - b.atMs);
    const firstApplied = (h: WeftHost): number | undefined => timeline.find((e) => e.host === h.name && e.event.startsWith('overlay applied'))?.atMs;
    const run: ConnectRun = { reachableMs: round(first - t0, 1), cliMs: round(cliMs, 1), addMs: round(addDone! - t0, 1), overlayAppliedMs: { h1: firstApplied(h1), h2: firstApplied(h2) }, load1: l, timeline };
    progress(`  connect run ${i + 1}: first reply ${run.reachableMs} ms after starting \`weft connect\` (CLI ${run.cliMs} ms, ADD on h2 returned +${run.addMs} ms, overlay applied h1 +${run.overlayAppliedMs.h1 ?? '?'} ms, h2 +${run.overlayAppliedMs.h2 ?? '?'} ms; load ${l})`);
    if (process.env.BENCH_DEBUG_CONNECT) process.stderr.write(`${timeline.map((e) => `    +${e.atMs} ${e.host} ${e.event}`).join('\n')}\n${ping.raw().split('\n').slice(0, 4).join('\n')}\n`);
    return run;
  } finally {
    ping?.child.kill('SIGKILL');
    await Promise.all(hosts.map((h) => h.router.stop().catch(() => null)));
    for (const ns of nss) await world.deleteNetns(ns).catch(() => undefined);
  }
}

export async function runConnect(world: World, cfg: { runs: number; timeoutMs?: number }): Promise<ConnectResults> {
  progress(`connect: ${cfg.runs} runs of weft connect -> first cross-host ping (a new host joins a one-host cluster; fresh namespaces and routers each run, default mesh timers)`);
  const runs: ConnectRun[] = [];
  for (let i = 0; i < cfg.runs; i++) runs.push(await oneRun(world, i, cfg.timeoutMs ?? 60_000));
  const s = (xs: number[]): Summary => { const x = summarize(xs); return { n: x.n, p50: round(x.p50, 1), p90: round(x.p90, 1), p99: round(x.p99, 1), min: round(x.min, 1), max: round(x.max, 1), mean: round(x.mean, 1) }; };
  return { runs, reachable: s(runs.map((r) => r.reachableMs)), cli: s(runs.map((r) => r.cliMs)), add: s(runs.map((r) => r.addMs)), meshTimers: 'defaults (--heartbeat-interval 30, --gossip-interval 30)' };
}
