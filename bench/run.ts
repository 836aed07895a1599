/**
 * `npm run bench`: weft against Debian's reference CNI plugins (bridge +
 * host-local), measured in the same run on the same machine, each system in
 * its own host netns with one netns per container (all named wt…, removed
 * at the end and on failure). See docs/benchmarks.md for what each number
 * means and the latest results.
 *
 * Environment (all optional):
 *   BENCH_N=100          containers in the sequential ADD/CHECK/DEL phase (and API / weft-ipam phases)
 *   BENCH_CONC=8         concurrent workers in the throughput phase
 *   BENCH_CYCLES=96      ADD+DEL cycles per system in the throughput phase
 *   BENCH_FLOOR_N=40     execs per start-up floor measurement
 *   BENCH_IPAM_N=1000    in-process weft allocations (once with pod names, once without)
 *   BENCH_IPAM_EXEC_N=200  host-local ADD execs
 *   BENCH_IPAM_PLUGIN_N=50 weft-ipam ADD execs through the launcher
 *   BENCH_BIG=1          the 1000-container RSS phase (0 skips it)
 *   BENCH_BIG_N=1000     containers in that phase
 *   BENCH_BIG_CONC=8     API requests in flight while attaching them
 *   BENCH_DAEMON_NODE_ARGS=  node flags for the router, replacing ROUTER_NODE_FLAGS (experiments, e.g. --max-semi-space-size=2 or --cpu-prof)
 *   BENCH_IPMASQ=1       ipMasq on both systems (the default of `weft install-cni` and of podman's bridge network)
 *   BENCH_OUT=bench/results/latest.json
 *   CNI_REF_DIR=/usr/lib/cni
 *   WEFT_NETLINK=off     the router programs veths by spawning ip(8) (the fallback; for before/after comparisons)
 */
import { ROUTER_NODE_FLAGS } from '../src/cli/commands/launch.js';
import { execFile } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LmdbStore } from '../src/adapters/store/lmdb-store.js';
import { request } from '../src/client/unix-http.js';
import { CNI_ENDPOINT, type CniRequest } from '../src/core/cni/protocol.js';
import { IpamService } from '../src/daemon/ipam-service.js';
import { desiredNat } from '../src/core/plan/desired.js';
import type { Attachment } from '../src/core/ipam/attachment.js';
import { type Netns, World, canCreateNetns } from '../test/helpers/world.js';
import { renderReport, type BenchResults, type Target } from './lib/report.js';
import { ExecRunner, killRunners } from './lib/runner.js';
import { type Histogram, histogramDelta, histogramQuantile, parseHistogram, quarterMedians, round, summarize, type Summary } from './lib/stats.js';
import { calibrate } from './lib/calibrate.js';
import { type CniSystem, PLUGIN_PATH_ENV, referenceSystem, weftSystem } from './lib/systems.js';
import { cpuOf, elapsedS, envBool, envInt, getText, load1, logMs, memoryOf, pool, progress, sleep } from './lib/util.js';
// ---- across hosts (issue 3): bench/overlay.ts runs the sections BENCH_ONLY selects (cni = main below; overlay, connect, convergence)
import { runSections } from './overlay.js';

const execFileP = promisify(execFile);
const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = resolve(DIST, '..');
const WEFT_BIN = join(DIST, 'src/bin/weft.js');
const BUNDLE = join(DIST, 'weft-cni.cjs');

const cfg = {
  n: envInt('BENCH_N', 100),
  conc: envInt('BENCH_CONC', 8),
  cycles: envInt('BENCH_CYCLES', 96),
  floorN: envInt('BENCH_FLOOR_N', 40),
  ipamN: envInt('BENCH_IPAM_N', 1000),
  ipamExecN: envInt('BENCH_IPAM_EXEC_N', 200),
  ipamPluginN: envInt('BENCH_IPAM_PLUGIN_N', 50),
  big: envBool('BENCH_BIG', true),
  bigN: envInt('BENCH_BIG_N', 1000),
  bigConc: envInt('BENCH_BIG_CONC', 8),
  daemonNodeArgs: process.env.BENCH_DAEMON_NODE_ARGS !== undefined ? process.env.BENCH_DAEMON_NODE_ARGS.split(' ').filter((x) => x !== '') : [...ROUTER_NODE_FLAGS],
  ipMasq: envBool('BENCH_IPMASQ', true),
  refDir: process.env.CNI_REF_DIR || '/usr/lib/cni',
  out: resolve(ROOT, process.env.BENCH_OUT || 'bench/results/latest.json'),
};

// Address plan: 10.x only inside the namespaces this run creates.
const WEFT_RANGE = '10.77.0.0/16';
const REF_SUBNET = '10.78.0.0/16';
const REF_GATEWAY = '10.78.0.1';
const IPAM_INPROC_SUBNET = '10.79.0.0/16';
const IPAM_HOSTLOCAL_SUBNET = '10.80.0.0/16';

const world = new World();

// ---------------------------------------------------------------- daemon

interface Daemon {
  readonly pid: number;
  readonly socket: string;
  readonly logLines: string[];
  stop(): Promise<void>;
}

async function startDaemon(host: Netns, dir: string): Promise<Daemon> {
  const socket = join(dir, 'weft.sock');
  const args = [...cfg.daemonNodeArgs, WEFT_BIN, 'launch', '--data-dir', join(dir, 'data'), '--socket', socket, '--name', 'bench', '--ipalloc-range', WEFT_RANGE, '--reconcile-interval', '0'];
  const child = world.spawnIn(host, process.execPath, args);
  const logLines: string[] = [];
  const logFile = createWriteStream(join(dir, 'weft.log'));
  for (const s of [child.stdout!, child.stderr!]) {
    createInterface({ input: s }).on('line', (l) => { logLines.push(l); logFile.write(`${l}\n`); });
  }
  const until = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`weft launch exited (${child.exitCode ?? child.signalCode}):\n${logLines.slice(-20).join('\n')}`);
    try {
      const r = await request({ socketPath: socket, method: 'GET', path: '/v1/status', timeoutMs: 1000 });
      if ((r.body as { ready?: boolean } | undefined)?.ready) break;
    } catch { /* starting */ }
    if (Date.now() > until) throw new Error(`weft router not ready after 30 s:\n${logLines.slice(-20).join('\n')}`);
    await sleep(50);
  }
  return {
    pid: child.pid!,
    socket,
    logLines,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await Promise.race([done, sleep(10_000)]);
      logFile.end();
    },
  };
}

/** V8 heap of the router from its Prometheus default metrics, in MiB. */
async function heapOf(socket: string): Promise<{ usedMiB: number; totalMiB: number; externalMiB: number }> {
  const text = await getText(socket, '/metrics');
  const val = (name: string): number => {
    let sum = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'gm'))) sum += Number(m[1]);
    return round(sum / 1048576, 1);
  };
  return { usedMiB: val('weft_nodejs_heap_size_used_bytes'), totalMiB: val('weft_nodejs_heap_size_total_bytes'), externalMiB: val('weft_nodejs_external_memory_bytes') };
}

async function scrapeAddHistogram(socket: string): Promise<Histogram> {
  return parseHistogram(await getText(socket, '/metrics'), 'weft_cni_request_duration_seconds', { command: 'ADD' });
}


/** One CNI request straight to the daemon API (no plugin exec): the daemon's own handling time plus one socket round trip. */
/** One CNI request straight to the router: the round trip and the router's own time (its server-timing header), in ms. */
async function apiCall(socket: string, req: CniRequest): Promise<{ ms: number; routerMs: number }> {
  const t0 = performance.now();
  const r = await request({ socketPath: socket, method: 'POST', path: CNI_ENDPOINT, body: req, timeoutMs: 120_000 });
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error(`API ${req.command} ${req.env.containerId}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  if (r.serverMs === undefined) throw new Error('the router sent no server-timing header');
  return { ms, routerMs: r.serverMs };
}

async function apiCni(socket: string, req: CniRequest): Promise<number> {
  return (await apiCall(socket, req)).ms;
}

function apiReq(command: 'ADD' | 'DEL', cid: string, ns: Netns, socket: string, ipMasq: boolean): CniRequest {
  return {
    plugin: 'weft', command,
    env: { containerId: cid, netns: ns.path, ifname: 'eth0', args: `IgnoreUnknown=1;K8S_POD_NAME=${cid}` },
    config: { cniVersion: '1.0.0', name: 'weft', type: 'weft', socket, ipMasq },
  };
}

// ---------------------------------------------------------------- helpers

/**
 * CPU a system has spent so far, in ms: everything its exec runner has
 * waited for (the plugin processes and what they exec) plus, for weft, the
 * router and its ip/nft children.
 */
const cpuMeters = new Map<string, () => number>();

function cpuNow(system: string): number {
  return cpuMeters.get(system)!();
}

async function makeNetns(tag: string, count: number, label: string): Promise<Netns[]> {
  let done = 0;
  const step = Math.max(1, Math.ceil(count / 5));
  return pool(Array.from({ length: count }), 8, async () => {
    const ns = await world.netns(tag);
    if (++done % step === 0 && count >= 50) progress(`  ${label}: ${done}/${count} netns created`);
    return ns;
  });
}

function ms(x: Summary): Summary {
  return { n: x.n, p50: round(x.p50), p90: round(x.p90), p99: round(x.p99), min: round(x.min), max: round(x.max), mean: round(x.mean) };
}

function cid(prefix: string, i: number): string {
  return `${prefix}${String(i).padStart(5, '0')}`;
}

// ---------------------------------------------------------------- phases

async function sequentialPhase(systems: readonly CniSystem[], containers: Map<string, Netns[]>): Promise<Record<string, { add: Summary; check: Summary; del: Summary; addQuarters: number[]; wallS: Record<string, number>; cpuMsPerContainer: number }>> {
  const n = cfg.n;
  const cpu0 = new Map(systems.map((s) => [s.name, cpuNow(s.name)]));
  const times: Record<string, Record<'ADD' | 'CHECK' | 'DEL', number[]>> = {};
  const wall: Record<string, Record<string, number>> = {};
  const results: Record<string, unknown[]> = {};
  for (const s of systems) { times[s.name] = { ADD: [], CHECK: [], DEL: [] }; wall[s.name] = { ADD: 0, CHECK: 0, DEL: 0 }; results[s.name] = []; }
  for (const verb of ['ADD', 'CHECK', 'DEL'] as const) {
    progress(`sequential ${verb} x${n} per system (interleaved weft/reference)`);
    const step = Math.max(1, Math.ceil(n / 4));
    for (let i = 0; i < n; i++) {
      // Alternate which system goes first so drift in machine load hits both alike.
      const order = i % 2 === 0 ? systems : [...systems].reverse();
      for (const s of order) {
        const ns = containers.get(s.name)![i]!;
        const r = await s.call(verb, cid('seq', i), ns, verb === 'ADD' ? undefined : results[s.name]![i]);
        times[s.name]![verb].push(r.ms);
        wall[s.name]![verb]! += r.ms / 1000;
        if (verb === 'ADD') results[s.name]![i] = JSON.parse(r.stdout);
      }
      if ((i + 1) % step === 0) progress(`  ${verb} ${i + 1}/${n}: p50 so far ${systems.map((s) => `${s.name} ${round(summarize(times[s.name]![verb]).p50, 1)} ms`).join(', ')}`);
    }
  }
  await sleep(200);
  const out: Record<string, { add: Summary; check: Summary; del: Summary; addQuarters: number[]; wallS: Record<string, number>; cpuMsPerContainer: number }> = {};
  for (const s of systems) {
    const t = times[s.name]!;
    out[s.name] = {
      add: ms(summarize(t.ADD)), check: ms(summarize(t.CHECK)), del: ms(summarize(t.DEL)), addQuarters: quarterMedians(t.ADD).map((x) => round(x)),
      wallS: Object.fromEntries(Object.entries(wall[s.name]!).map(([k, v]) => [k, round(v)])),
      cpuMsPerContainer: round((cpuNow(s.name) - cpu0.get(s.name)!) / n, 1),
    };
  }
  return out;
}

async function concurrentPhase(systems: readonly CniSystem[], workers: Map<string, Netns[]>): Promise<Record<string, { cyclesPerSec: number; cycles: number; wallS: number; add: Summary; del: Summary; cpuMsPerCycle: number }>> {
  const rounds = 2;
  const perWorker = Math.max(1, Math.round(cfg.cycles / (cfg.conc * rounds)));
  const acc: Record<string, { cycles: number; wallS: number; add: number[]; del: number[]; cpuMs: number }> = {};
  for (const s of systems) acc[s.name] = { cycles: 0, wallS: 0, add: [], del: [], cpuMs: 0 };
  let serial = 0;
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? systems : [...systems].reverse();
    for (const s of order) {
      progress(`throughput round ${r + 1}/${rounds}: ${s.name}, ${cfg.conc} workers x ${perWorker} ADD+DEL cycles`);
      const a = acc[s.name]!;
      const c0 = cpuNow(s.name);
      const t0 = performance.now();
      await Promise.all(workers.get(s.name)!.map(async (ns) => {
        for (let k = 0; k < perWorker; k++) {
          const id = cid('cc', serial++);
          const add = await s.call('ADD', id, ns);
          a.add.push(add.ms);
          const del = await s.call('DEL', id, ns, JSON.parse(add.stdout));
          a.del.push(del.ms);
          a.cycles++;
        }
      }));
      const dt = (performance.now() - t0) / 1000;
      a.wallS += dt;
      await sleep(100);
      a.cpuMs += cpuNow(s.name) - c0;
      progress(`  ${s.name}: ${round(cfg.conc * perWorker / dt, 1)} cycles/s (load ${load1()})`);
    }
  }
  const out: Record<string, { cyclesPerSec: number; cycles: number; wallS: number; add: Summary; del: Summary; cpuMsPerCycle: number }> = {};
  for (const s of systems) {
    const a = acc[s.name]!;
    out[s.name] = { cyclesPerSec: round(a.cycles / a.wallS), cycles: a.cycles, wallS: round(a.wallS), add: ms(summarize(a.add)), del: ms(summarize(a.del)), cpuMsPerCycle: round(a.cpuMs / a.cycles, 1) };
  }
  return out;
}

async function floorPhase(runner: ExecRunner, binDir: string): Promise<Record<string, Summary>> {
  progress(`exec floors: ${cfg.floorN} runs of each, interleaved`);
  const versionIn = '{"cniVersion":"1.0.0"}';
  const jobs: Record<string, { file: string; args?: string[]; env: Record<string, string>; input?: string }> = {
    weftLauncherVersion: { file: `${binDir}/weft`, env: { PATH: PLUGIN_PATH_ENV, CNI_COMMAND: 'VERSION' }, input: versionIn },
    weftBundleVersion: { file: process.execPath, args: [`${binDir}/.weft-plugin.cjs`], env: { PATH: PLUGIN_PATH_ENV, CNI_COMMAND: 'VERSION', WEFT_PLUGIN_KIND: 'weft' }, input: versionIn },
    nodeE0: { file: process.execPath, args: ['-e', '0'], env: { PATH: PLUGIN_PATH_ENV } },
    referenceBridgeVersion: { file: `${cfg.refDir}/bridge`, env: { PATH: PLUGIN_PATH_ENV, CNI_COMMAND: 'VERSION' }, input: versionIn },
    referenceHostLocalVersion: { file: `${cfg.refDir}/host-local`, env: { PATH: PLUGIN_PATH_ENV, CNI_COMMAND: 'VERSION' }, input: versionIn },
    binTrue: { file: '/bin/true', env: { PATH: PLUGIN_PATH_ENV } },
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(jobs).map((k) => [k, []]));
  for (let i = 0; i < cfg.floorN; i++) {
    for (const [k, j] of Object.entries(jobs)) {
      const r = await runner.execOk(j, `floor ${k}`);
      times[k]!.push(r.ms);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, ms(summarize(v))]));
}

async function inProcessAllocations(dir: string, named: boolean): Promise<{ allocsPerSec: number; latency: Summary; quarters: number[] }> {
  const store = new LmdbStore(dir);
  const ipam = new IpamService(store, () => new Date());
  ipam.createSubnet({ name: 'bench', cidr: IPAM_INPROC_SUBNET });
  const t: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < cfg.ipamN; i++) {
    // named: what a runtime passing K8S_POD_NAME gets (podman always does); anonymous: no pod name.
    const identity = named ? { namespace: 'default', name: `p${i}` } : { namespace: 'default' };
    const s = performance.now();
    store.write((tx) => ipam.allocate(tx, { subnet: 'bench', identity, containerId: cid('ip', i), ifname: 'eth0', network: 'bench' }));
    t.push(performance.now() - s);
  }
  const wall = (performance.now() - t0) / 1000;
  await store.close();
  return { allocsPerSec: round(cfg.ipamN / wall), latency: ms(summarize(t)), quarters: quarterMedians(t).map((x) => round(x)) };
}

/** Cost of the NAT desired-state computation weft runs on every ADD/DEL with ipMasq (listAttachments + desiredNat), with 1000 stored attachments. */
async function natPlanCost(dir: string): Promise<Summary> {
  const store = new LmdbStore(dir);
  const ipam = new IpamService(store, () => new Date());
  ipam.createSubnet({ name: 'bench', cidr: IPAM_INPROC_SUBNET });
  store.write((tx) => {
    for (let i = 0; i < 1000; i++) {
      const ip = `10.79.${i >> 8}.${(i & 255) + 2}`;
      const a = {
        containerId: cid('nat', i), ifname: 'eth0', network: 'weft', plugin: 'weft', mode: 'bridge', state: 'ready', netns: `/run/netns/x${i}`, netnsId: '4:1234',
        identity: `default/p${i}`, tenant: 'default', ips: [{ subnet: 'bench', address: `${ip}/16`, gateway: '10.79.0.1' }], hostIfname: 'wv0123456789abc', bridge: 'weft', mtu: 1450,
        ipMasq: true, portMappings: [], aliases: [], createdAt: new Date().toISOString(), mac: '02:00:00:00:00:03',
        result: { interfaces: [{ name: 'weft', mac: '02:00:00:00:00:01' }, { name: 'wv0123456789abc', mac: '02:00:00:00:00:02' }, { name: 'eth0', mac: '02:00:00:00:00:03', mtu: 1450, sandbox: `/run/netns/x${i}` }], ips: [{ address: `${ip}/16`, gateway: '10.79.0.1', interface: 2 }], routes: [], dns: {} },
      } as unknown as Attachment;
      tx.putAttachment(a);
    }
  });
  const t: number[] = [];
  for (let i = 0; i < 50; i++) {
    const s = performance.now();
    store.read((tx) => desiredNat(tx.listAttachments(), new Map(tx.listSubnets().map((x) => [x.name, x]))));
    t.push(performance.now() - s);
  }
  await store.close();
  return ms(summarize(t));
}

async function ipamPhase(tmp: string, refRunner: ExecRunner, weft: { runner: ExecRunner; binDir: string; socket: string }, anyNs: Netns): Promise<BenchResults['ipam']> {
  // (a) weft in process: IpamService.allocate in one durable LMDB write transaction per address.
  progress(`IPAM: ${cfg.ipamN} in-process weft allocations with pod names, then ${cfg.ipamN} without (LMDB, one durable transaction each)`);
  const named = await inProcessAllocations(join(tmp, 'ipam-weft-named'), true);
  const anonymous = await inProcessAllocations(join(tmp, 'ipam-weft-anon'), false);
  const nat = await natPlanCost(join(tmp, 'nat-plan'));

  // (b) host-local exec'd as an IPAM plugin ADD (how bridge uses it), its own dataDir.
  progress(`IPAM: ${cfg.ipamExecN} host-local ADD execs`);
  const hlConf = JSON.stringify({ cniVersion: '1.0.0', name: 'hlbench', ipam: { type: 'host-local', dataDir: join(tmp, 'ipam-hostlocal'), ranges: [[{ subnet: IPAM_HOSTLOCAL_SUBNET }]] } });
  const hl: number[] = [];
  const t1 = performance.now();
  for (let i = 0; i < cfg.ipamExecN; i++) {
    const r = await refRunner.execOk({
      file: `${cfg.refDir}/host-local`, input: hlConf,
      env: { PATH: PLUGIN_PATH_ENV, CNI_COMMAND: 'ADD', CNI_CONTAINERID: cid('hl', i), CNI_NETNS: anyNs.path, CNI_IFNAME: 'eth0', CNI_PATH: cfg.refDir },
    }, `host-local ADD ${i}`);
    hl.push(r.ms);
  }
  const hlWall = (performance.now() - t1) / 1000;

  // (c) weft-ipam exec'd the same way (launcher -> node bundle -> router). Left allocated: this is the last phase.
  const wn = cfg.ipamPluginN;
  progress(`IPAM: ${wn} weft-ipam ADD execs through the launcher`);
  const wiConf = JSON.stringify({ cniVersion: '1.0.0', name: 'wipam', type: 'bridge', ipam: { type: 'weft-ipam', socket: weft.socket } });
  const wi: number[] = [];
  const t2 = performance.now();
  for (let i = 0; i < wn; i++) {
    const r = await weft.runner.execOk({
      file: `${weft.binDir}/weft-ipam`, input: wiConf,
      env: { PATH: PLUGIN_PATH_ENV, CNI_COMMAND: 'ADD', CNI_CONTAINERID: cid('wi', i), CNI_NETNS: anyNs.path, CNI_IFNAME: 'eth0', CNI_PATH: weft.binDir, CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAME=${cid('wi', i)}` },
    }, `weft-ipam ADD ${i}`);
    wi.push(r.ms);
  }
  const wiWall = (performance.now() - t2) / 1000;

  return {
    weftInProcess: { allocsPerSec: named.allocsPerSec, latency: named.latency, quarters: named.quarters },
    weftInProcessAnonymous: { allocsPerSec: anonymous.allocsPerSec, latency: anonymous.latency, quarters: anonymous.quarters },
    hostLocalExec: { allocsPerSec: round(cfg.ipamExecN / hlWall), latency: ms(summarize(hl)) },
    weftIpamExec: { allocsPerSec: round(wn / wiWall), latency: ms(summarize(wi)) },
    natPlanWith1000Attachments: nat,
  };
}

/** Fresh container netns, as a runtime gives (one that had an interface is cheaper to program: its lo is up already). */
async function apiPhase(d: Daemon, n: number): Promise<{ add: Summary; routerAdd: Summary; routerDel: Summary; del: Summary; cpuMsPerAdd: number; cpuMsPerDel: number }> {
  const containers = await makeNetns('ap', n, 'daemon API containers');
  // Let the kernel finish the namespaces' set-up work in the background first.
  await sleep(1000);
  progress(`daemon API: ${containers.length} ADDs then DELs straight to the socket (no plugin exec)`);
  const add: number[] = [];
  const del: number[] = [];
  const routerAdd: number[] = [];
  const routerDel: number[] = [];
  const cpu = (): number => { const c = cpuOf(d.pid); return c.selfMs + c.childrenMs; };
  const c0 = cpu();
  for (let i = 0; i < containers.length; i++) {
    const r = await apiCall(d.socket, apiReq('ADD', cid('api', i), containers[i]!, d.socket, cfg.ipMasq));
    add.push(r.ms);
    routerAdd.push(r.routerMs);
  }
  await sleep(100);
  const c1 = cpu();
  for (let i = 0; i < containers.length; i++) {
    const r = await apiCall(d.socket, apiReq('DEL', cid('api', i), containers[i]!, d.socket, cfg.ipMasq));
    del.push(r.ms);
    routerDel.push(r.routerMs);
  }
  await sleep(100);
  const c2 = cpu();
  await pool(containers, 8, (ns) => world.deleteNetns(ns));
  const count = Math.max(1, containers.length);
  return { add: ms(summarize(add)), del: ms(summarize(del)), routerAdd: ms(summarize(routerAdd)), routerDel: ms(summarize(routerDel)), cpuMsPerAdd: round((c1 - c0) / count, 1), cpuMsPerDel: round((c2 - c1) / count, 1) };
}

async function bigPhase(d: Daemon, weft: CniSystem, probeNs: Netns, idle: { cpuMsPerAdd: number; cpuMsPerDel: number; add: Summary; del: Summary }): Promise<NonNullable<BenchResults['big']>> {
  const n = cfg.bigN;
  const before = memoryOf(d.pid);
  progress(`RSS phase: creating ${n} container netns`);
  const nss = await makeNetns('wk', n, 'RSS phase');
  progress(`RSS phase: ${n} ADDs through the daemon API, ${cfg.bigConc} at a time (daemon RSS now ${round(before.rssMiB, 1)} MiB)`);
  const h0 = await scrapeAddHistogram(d.socket);
  let done = 0;
  const add = await pool(nss, cfg.bigConc, async (ns, i) => {
    const t = await apiCni(d.socket, apiReq('ADD', cid('big', i), ns, d.socket, cfg.ipMasq));
    if (++done % Math.ceil(n / 5) === 0) progress(`  ${done}/${n} attached, daemon RSS ${round(memoryOf(d.pid).rssMiB, 1)} MiB (load ${load1()})`);
    return t;
  });
  await sleep(500);
  const attached = memoryOf(d.pid);
  const heapAttached = await heapOf(d.socket);
  const h = histogramDelta(await scrapeAddHistogram(d.socket), h0);
  const status = (await request({ socketPath: d.socket, method: 'GET', path: '/v1/status', timeoutMs: 30_000 })).body as { attachments?: { ready?: number } };

  // With n attached: sequential ADD+DEL, straight to the API (router time and CPU, to set against the same on a nearly empty router) and through the launcher.
  const probe = 20;
  progress(`RSS phase: ${probe} sequential API ADD+DEL and ${probe} launcher ADD+DEL with ${n} attached`);
  const cpu = (): number => { const c = cpuOf(d.pid); return c.selfMs + c.childrenMs; };
  const aAdd: number[] = [];
  const aDel: number[] = [];
  let cpuAdd = 0;
  let cpuDel = 0;
  for (let i = 0; i < probe; i++) {
    let c = cpu();
    aAdd.push(await apiCni(d.socket, apiReq('ADD', cid('pra', i), probeNs, d.socket, cfg.ipMasq)));
    await sleep(20);
    cpuAdd += cpu() - c;
    c = cpu();
    aDel.push(await apiCni(d.socket, apiReq('DEL', cid('pra', i), probeNs, d.socket, cfg.ipMasq)));
    await sleep(20);
    cpuDel += cpu() - c;
  }
  const pAdd: number[] = [];
  const pDel: number[] = [];
  for (let i = 0; i < probe; i++) {
    const a = await weft.call('ADD', cid('prb', i), probeNs);
    pAdd.push(a.ms);
    pDel.push((await weft.call('DEL', cid('prb', i), probeNs, JSON.parse(a.stdout))).ms);
  }

  progress(`RSS phase: ${n} DELs through the API`);
  done = 0;
  const del = await pool(nss, cfg.bigConc, async (ns, i) => {
    const t = await apiCni(d.socket, apiReq('DEL', cid('big', i), ns, d.socket, cfg.ipMasq));
    if (++done % Math.ceil(n / 5) === 0) progress(`  ${done}/${n} detached`);
    return t;
  });
  await sleep(500);
  const after = memoryOf(d.pid);
  const heapAfter = await heapOf(d.socket);
  progress(`RSS phase: deleting ${n} netns`);
  await pool(nss, 8, (ns) => world.deleteNetns(ns));
  return {
    n,
    conc: cfg.bigConc,
    attachedReported: status.attachments?.ready ?? -1,
    rssBeforeMiB: round(before.rssMiB, 1),
    rssAttachedMiB: round(attached.rssMiB, 1),
    rssAttachedAnonMiB: round(attached.anonMiB, 1),
    rssAttachedFileMiB: round(attached.fileMiB, 1),
    heapAttached,
    peakMiB: round(attached.hwmMiB, 1),
    rssAfterDelMiB: round(after.rssMiB, 1),
    heapAfterDel: heapAfter,
    apiAdd: ms(summarize(add)),
    apiAddQuarters: quarterMedians(add).map((x) => round(x)),
    histogramAdd: { count: h.count, p50EstMs: round(histogramQuantile(h, 0.5) * 1000), meanMs: round(h.count ? (h.sum / h.count) * 1000 : Number.NaN) },
    apiDel: ms(summarize(del)),
    seqApiAddAtN: ms(summarize(aAdd)),
    seqApiDelAtN: ms(summarize(aDel)),
    cpuMsPerApiAddAtN: round(cpuAdd / probe, 1),
    cpuMsPerApiDelAtN: round(cpuDel / probe, 1),
    idle,
    launcherAddAtN: ms(summarize(pAdd)),
    launcherDelAtN: ms(summarize(pDel)),
  };
}

// ---------------------------------------------------------------- main

async function meta(): Promise<BenchResults['meta']> {
  const sh = async (cmd: string, args: string[]): Promise<string> => { try { return (await execFileP(cmd, args)).stdout.trim(); } catch { return 'unknown'; } };
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    kernel: release(),
    weftCommit: await sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    weftTreeDirty: (await sh('git', ['-C', ROOT, 'status', '--porcelain'])) !== '',
    referencePlugins: await sh('dpkg-query', ['-W', '-f', '${Package} ${Version}', 'containernetworking-plugins']),
    load1Start: load1(),
    calibration: calibrate(),
  };
}

function preflight(): void {
  if (!canCreateNetns()) throw new Error('the benchmark needs root on Linux (it creates network namespaces)');
  for (const p of ['bridge', 'host-local']) {
    if (!existsSync(join(cfg.refDir, p))) throw new Error(`reference plugin ${join(cfg.refDir, p)} is missing: apt-get install containernetworking-plugins (or set CNI_REF_DIR)`);
  }
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\``);
}

async function main(): Promise<void> {
  preflight();
  const m = await meta();
  progress(`weft bench: N=${cfg.n} conc=${cfg.conc} cycles=${cfg.cycles} floorN=${cfg.floorN} ipamN=${cfg.ipamN} big=${cfg.big ? cfg.bigN : 'off'} ipMasq=${cfg.ipMasq} (load ${m.load1Start}, ${m.cpus} cpus)`);
  const tmp = world.tempDir('weft-bench');
  const binDir = join(tmp, 'bin');

  progress('setup: host namespaces, weft router, launchers, exec runners');
  const [weftHost, refHost] = [await world.netns('wb'), await world.netns('rb')];
  const daemon = await startDaemon(weftHost, tmp);
  // Installed against this router's socket, so the launchers take the sh + curl fast path as in a real install.
  await execFileP(process.execPath, [WEFT_BIN, 'install-cni', '--bin-dir', binDir, '--no-conf', '--socket', daemon.socket]);
  const rssIdle = memoryOf(daemon.pid);
  const st = (await request({ socketPath: daemon.socket, method: 'GET', path: '/v1/status', timeoutMs: 5000 })).body as { vethProgramming?: { mode: string; reason?: string } } | undefined;
  const vethProgramming = st?.vethProgramming ? `${st.vethProgramming.mode}${st.vethProgramming.reason ? ` (${st.vethProgramming.reason})` : ''}` : 'unknown';
  progress(`router programs veths via ${vethProgramming}`);
  const weftRunner = new ExecRunner(weftHost);
  const refRunner = new ExecRunner(refHost);
  const weft = weftSystem({ host: weftHost, runner: weftRunner, binDir, socket: daemon.socket, ipMasq: cfg.ipMasq });
  const ref = referenceSystem({ host: refHost, runner: refRunner, pluginDir: cfg.refDir, dataDir: join(tmp, 'host-local'), ipMasq: cfg.ipMasq, subnet: REF_SUBNET, gateway: REF_GATEWAY });
  const systems = [weft, ref];
  cpuMeters.set('weft', () => { const r = cpuOf(weftRunner.pid); const d = cpuOf(daemon.pid); return r.childrenMs + d.selfMs + d.childrenMs; });
  cpuMeters.set('reference', () => cpuOf(refRunner.pid).childrenMs);

  progress(`setup: ${cfg.n} container netns per system, ${cfg.conc} worker netns per system`);
  const seqNs = new Map([['weft', await makeNetns('wc', cfg.n, 'weft containers')], ['reference', await makeNetns('rc', cfg.n, 'reference containers')]]);
  const workerNs = new Map([['weft', await makeNetns('ww', cfg.conc, 'weft workers')], ['reference', await makeNetns('rw', cfg.conc, 'reference workers')]]);

  // 1. sequential ADD / CHECK / DEL
  const hBefore = await scrapeAddHistogram(daemon.socket);
  const logFrom = daemon.logLines.length;
  const sequential = await sequentialPhase(systems, seqNs);
  await sleep(200);
  const hSeq = histogramDelta(await scrapeAddHistogram(daemon.socket), hBefore);
  const vethAttach = logMs(daemon.logLines, 'veth attached', logFrom);
  const vethDetach = logMs(daemon.logLines, 'veth detached', logFrom);

  // 5. daemon-side: direct API calls on fresh container netns (at least 100: a p50 of fewer is noise on a shared box)
  const api = await apiPhase(daemon, Math.max(cfg.n, 100));

  // 2. throughput at concurrency
  const concurrent = await concurrentPhase(systems, workerNs);

  // 3. exec floors
  const floors = await floorPhase(weftRunner, binDir);

  // 6. RSS with many containers
  const big = cfg.big ? await bigPhase(daemon, weft, workerNs.get('weft')![0]!, { cpuMsPerAdd: api.cpuMsPerAdd, cpuMsPerDel: api.cpuMsPerDel, add: api.add, del: api.del }) : undefined;
  const rssEnd = memoryOf(daemon.pid);

  // 4. IPAM (last: the weft-ipam allocations it makes are left in place)
  const ipam = await ipamPhase(tmp, refRunner, { runner: weftRunner, binDir, socket: daemon.socket }, refHost);

  const results: BenchResults = {
    meta: { ...m, load1End: load1(), durationS: round(elapsedS(), 1) },
    config: { ...cfg, out: undefined, weftRange: WEFT_RANGE, referenceSubnet: REF_SUBNET },
    sequential,
    concurrent,
    floors,
    ipam,
    daemon: {
      histogramAdd: { count: hSeq.count, p50EstMs: round(histogramQuantile(hSeq, 0.5) * 1000), p99EstMs: round(histogramQuantile(hSeq, 0.99) * 1000), meanMs: round(hSeq.count ? (hSeq.sum / hSeq.count) * 1000 : Number.NaN), buckets: hSeq.buckets.map((b) => ({ le: b.le === Infinity ? '+Inf' : String(b.le), count: b.count })) },
      apiAdd: api.add,
      apiDel: api.del,
      routerAdd: api.routerAdd,
      routerDel: api.routerDel,
      cpuMsPerApiAdd: api.cpuMsPerAdd,
      cpuMsPerApiDel: api.cpuMsPerDel,
      vethProgramming,
      vethAttachMs: ms(summarize(vethAttach)),
      vethDetachMs: ms(summarize(vethDetach)),
      rssIdleMiB: round(rssIdle.rssMiB, 1),
      rssIdleAnonMiB: round(rssIdle.anonMiB, 1),
      rssIdleFileMiB: round(rssIdle.fileMiB, 1),
      rssEndMiB: round(rssEnd.rssMiB, 1),
    },
    ...(big ? { big } : {}),
    targets: [],
  };
  results.targets = targets(results);

  progress('stopping the router');
  await daemon.stop();
  weftRunner.close();
  refRunner.close();

  mkdirSync(dirname(cfg.out), { recursive: true });
  writeFileSync(cfg.out, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(renderReport(results));
  process.stdout.write(`\nJSON: ${cfg.out}\n`);
}

function targets(r: BenchResults): Target[] {
  const w = r.sequential['weft']!;
  const f = r.sequential['reference']!;
  const t: Target[] = [];
  const tw = r.concurrent['weft']!.cyclesPerSec;
  const tr = r.concurrent['reference']!.cyclesPerSec;
  t.push({ name: `ADD+DEL throughput at concurrency ${cfg.conc} >= reference`, measured: `${tw} vs ${tr} cycles/s`, met: tw >= tr });
  const floor = r.floors['nodeE0']!.p50;
  const limit = round(f.add.p50 + floor);
  t.push({ name: 'ADD p50 <= reference ADD p50 + Node start-up floor', measured: `${w.add.p50} ms vs ${f.add.p50} + ${floor} = ${limit} ms`, met: w.add.p50 <= limit });
  t.push({ name: 'daemon-side ADD p50 < 5 ms', measured: `${r.daemon.routerAdd.p50} ms in the router (its server-timing); API round trip ${r.daemon.apiAdd.p50} ms`, met: r.daemon.routerAdd.p50 < 5 });
  if (r.big) t.push({ name: `daemon RSS < 100 MB with ${r.big.n} containers`, measured: `${r.big.rssAttachedMiB} MiB (peak ${r.big.peakMiB} MiB)`, met: r.big.rssAttachedMiB * 1.048576 < 100 });
  else t.push({ name: 'daemon RSS < 100 MB with 1000 containers', measured: 'skipped (BENCH_BIG=0)', met: undefined });
  return t;
}

let cleaning: Promise<void> | undefined;

/**
 * Cleans up once and exits with the code of the first caller. Later callers
 * (a phase failing because cleanup killed its runner) wait for the same
 * cleanup instead of exiting under it.
 */
async function cleanupAndExit(code: number): Promise<void> {
  if (cleaning) return cleaning;
  cleaning = (async () => {
    progress('cleaning up namespaces, processes and temp dirs');
    killRunners();
    try { await world.cleanup(); } catch (e) { process.stderr.write(`cleanup: ${(e as Error).message}\n`); }
    process.exit(code);
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { progress(`${sig}: aborting`); void cleanupAndExit(130); });

runSections(main, world).then(
  () => cleanupAndExit(0),
  (e: unknown) => {
    if (!cleaning) process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    void cleanupAndExit(1);
  },
);

