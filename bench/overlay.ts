/**
 * The across-hosts benchmarks (issue 3), run by `npm run bench` after the
 * single-host CNI phases and selectable with BENCH_ONLY:
 *
 *  - overlay:     container-to-container TCP throughput (iperf3, 1 and 4
 *                 streams) and latency (ping, sockperf TCP ping-pong when
 *                 installed) across two simulated hosts on one underlay
 *                 switch, for weft (real routers + CNI plugin), a hand-built
 *                 kernel VXLAN (the research's T3 recipe) and a plain veth
 *                 pair (the limit), interleaved in the same run;
 *  - connect:     time from `weft connect ADDR` to the first ping answered
 *                 between containers on the two hosts (bench/overlay-connect.ts);
 *  - convergence: virtual time and gossip bytes until N simulated routers
 *                 agree (bench/convergence.ts).
 *
 * Environment (all optional):
 *   BENCH_ONLY=cni,overlay,connect,convergence   sections to run (default: all; cni = the single-host phases of run.ts)
 *   BENCH_OVERLAY_SYSTEMS=weft,hand,veth,weft-brnf,hand-brnf
 *                                  weft and hand: hosts without br_netfilter's hooks on bridged frames
 *                                  (bridge-nf-call-* 0, as without the module: Debian's default);
 *                                  weft-brnf and hand-brnf: the same two with bridge-nf-call-* at the
 *                                  kernel default (1, a Docker or Kubernetes host); also weft-nomasq
 *                                  (weft with ipMasq off, bridge-nf-call-* at the default)
 *   BENCH_OVERLAY_REPS=3           rounds over every system (interleaved; medians reported)
 *   BENCH_OVERLAY_SECONDS=10       iperf3 -t
 *   BENCH_OVERLAY_PINGS=300        pings measured per round (-i 0.01), after BENCH_OVERLAY_WARM=200 warm-up pings
 *   BENCH_OVERLAY_SOCKPERF_SECONDS=5
 *   BENCH_CONNECT_RUNS=5           (BENCH_DEBUG_CONNECT=1 also prints every run's timeline)
 *   BENCH_CONV_PEERS=100           comma list; 500 takes ~6 min of real time (BENCH_CONV_PEERS=100,500)
 *   BENCH_ACROSS_OUT=bench/results/across-hosts.json
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec } from '../test/helpers/exec.js';
import { canCreateNetns, type World } from '../test/helpers/world.js';
import { BRNF_OFF, type Path, buildHandVxlan, sysctlIn, buildUnderlay, buildVethPair, addWeftContainer, hostDiagnostics, waitMeshConverged, weftRouters } from './lib/cluster.js';
import { type PingResult, type SockperfResult, type TcpResult, CLIENT_CPU, SERVER_CPU, Servers, haveTool, iperf, pingRtt, reachable, sockperfRtt } from './lib/cluster-tools.js';
import { round } from './lib/stats.js';
import { cpuOf, envInt, load1, progress } from './lib/util.js';
import { type ConnectResults, runConnect } from './overlay-connect.js';
import { type ConvergenceResults, runConvergence } from './convergence.js';
import { renderAcrossHosts } from './overlay-report.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BUNDLE = join(ROOT, 'dist/weft-cni.cjs');

export const SECTIONS = ['cni', 'overlay', 'connect', 'convergence'] as const;
export type Section = typeof SECTIONS[number];

/** BENCH_ONLY as a set of sections (every section when unset). */
export function selectedSections(): Set<Section> {
  const v = process.env.BENCH_ONLY;
  if (v === undefined || v.trim() === '') return new Set(SECTIONS);
  const out = new Set<Section>();
  for (const s of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`BENCH_ONLY: unknown section "${s}" (one of ${SECTIONS.join(', ')})`);
    out.add(s as Section);
  }
  return out;
}

export const SYSTEMS = ['weft', 'hand', 'veth', 'weft-brnf', 'hand-brnf', 'weft-nomasq'] as const;
export type SystemKey = typeof SYSTEMS[number];
export const SYSTEM_LABEL: Record<SystemKey, string> = {
  weft: 'weft (routers + CNI plugin, installed config), hosts without br_netfilter hooks',
  hand: 'hand-built kernel VXLAN (research T3), bridge-nf-call-* off',
  veth: 'veth pair (limit)',
  'weft-brnf': 'weft with bridge-nf-call-* at the kernel default (a Docker/Kubernetes host)',
  'hand-brnf': 'hand-built with bridge-nf-call-* at the kernel default (research T4a)',
  'weft-nomasq': 'weft with ipMasq off, bridge-nf-call-* at the kernel default',
};

export interface OverlayConfig {
  systems: SystemKey[];
  reps: number;
  seconds: number;
  pings: number;
  warm: number;
  sockperfSeconds: number;
}

export function overlayConfig(): OverlayConfig {
  const sys = (process.env.BENCH_OVERLAY_SYSTEMS || 'weft,hand,veth,weft-brnf,hand-brnf').split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of sys) if (!(SYSTEMS as readonly string[]).includes(s)) throw new Error(`BENCH_OVERLAY_SYSTEMS: unknown system "${s}" (one of ${SYSTEMS.join(', ')})`);
  return {
    systems: sys as SystemKey[],
    reps: Math.max(1, envInt('BENCH_OVERLAY_REPS', 3)),
    seconds: Math.max(1, envInt('BENCH_OVERLAY_SECONDS', 10)),
    pings: Math.max(10, envInt('BENCH_OVERLAY_PINGS', 300)),
    warm: envInt('BENCH_OVERLAY_WARM', 200),
    sockperfSeconds: Math.max(1, envInt('BENCH_OVERLAY_SOCKPERF_SECONDS', 5)),
  };
}

export interface SystemSamples {
  tcp1: TcpResult[];
  tcp4: TcpResult[];
  ping: PingResult[];
  sockperf: SockperfResult[];
  /** Host-side facts that explain differences (br_netfilter, nft tables, VXLAN device). */
  diagnostics?: Awaited<ReturnType<typeof hostDiagnostics>>;
  containerMtu?: number;
}

export interface OverlayResults {
  config: OverlayConfig;
  sockperf: boolean;
  pinning: { client: string; server: string };
  samples: Partial<Record<SystemKey, SystemSamples>>;
  /** Order the systems were measured in each round. */
  order: SystemKey[][];
  /** CPU of all weft routers (and their ip/nft children) during the rounds, in ms per second (1000 = one vCPU). */
  routersBackground: { routers: number; cpuMsPerSecond: number };
}

export interface AcrossHostsResults {
  meta: { date: string; node: string; cpus: number; kernel: string; load1Start: number; load1End?: number; durationS?: number };
  overlay?: OverlayResults;
  connect?: ConnectResults;
  convergence?: ConvergenceResults;
}

interface Sut {
  readonly key: SystemKey;
  readonly path: Path;
  readonly servers: Servers;
  readonly samples: SystemSamples;
}

async function mtuOf(ns: Path['client']): Promise<number | undefined> {
  const r = await exec('ip', ['-j', 'link', 'show', 'eth0'], { netns: ns.name });
  try { return (JSON.parse(r.stdout) as { mtu: number }[])[0]?.mtu; } catch { return undefined; }
}

async function setupSystem(world: World, key: SystemKey): Promise<{ path: Path; diagnostics?: SystemSamples['diagnostics']; pids?: number[] }> {
  if (key === 'veth') return { path: await buildVethPair(world, 'ovp') };
  if (key === 'hand' || key === 'hand-brnf') {
    const tag = key === 'hand' ? 'ohb' : 'ohn';
    const u = await buildUnderlay(world, tag, 2);
    const path = await buildHandVxlan(world, u, tag, { brNetfilter: key === 'hand-brnf' });
    return { path, diagnostics: await hostDiagnostics(u.hosts[0]!.ns) };
  }
  const ipMasq = key !== 'weft-nomasq';
  const tag = key === 'weft' ? 'owf' : key === 'weft-brnf' ? 'owb' : 'own';
  const u = await buildUnderlay(world, tag, 2);
  // The router never changes these sysctls; the bench sets up the host it runs on, as for `hand`.
  if (key === 'weft') for (const h of u.hosts) await sysctlIn(h.ns, BRNF_OFF);
  // Every host names the first one, as in the demo; default mesh timers.
  const hosts = weftRouters(world, u, { peersOf: (i) => (i === 0 ? [] : [u.hosts[0]!.ip]) });
  await Promise.all(hosts.map((h) => h.router.start()));
  await waitMeshConverged(hosts);
  const c1 = await addWeftContainer(world, hosts[0]!, `${tag}c`, ipMasq);
  const c2 = await addWeftContainer(world, hosts[1]!, `${tag}c`, ipMasq);
  return { path: { client: c1.ns, server: c2.ns, clientIp: c1.ip, serverIp: c2.ip }, diagnostics: await hostDiagnostics(u.hosts[0]!.ns), pids: hosts.map((h) => h.router.pid!) };
}

export async function runOverlay(world: World, cfg: OverlayConfig): Promise<OverlayResults> {
  if (!(await haveTool('iperf3'))) throw new Error('iperf3 is required for the across-hosts throughput numbers: apt-get install iperf3');
  const sockperf = await haveTool('sockperf');
  if (!sockperf) progress('overlay: sockperf not installed, TCP ping-pong skipped (apt-get install sockperf)');
  progress(`overlay: setting up ${cfg.systems.join(', ')} (client pinned to vCPU${CLIENT_CPU}, server to vCPU${SERVER_CPU})`);
  const suts: Sut[] = [];
  const routerPids: number[] = [];
  for (const key of cfg.systems) {
    const { path, diagnostics, pids } = await setupSystem(world, key);
    routerPids.push(...(pids ?? []));
    if (!(await reachable(path.client, path.serverIp, 30_000))) throw new Error(`overlay: ${key}: ${path.serverIp} is not reachable from the client container`);
    const servers = new Servers(world, path);
    await servers.start(sockperf);
    const containerMtu = await mtuOf(path.client);
    suts.push({ key, path, servers, samples: { tcp1: [], tcp4: [], ping: [], sockperf: [], ...(diagnostics ? { diagnostics } : {}), ...(containerMtu ? { containerMtu } : {}) } });
    progress(`  ${key}: ${path.clientIp} -> ${path.serverIp} reachable, container MTU ${containerMtu ?? '?'}`);
  }
  const order: SystemKey[][] = [];
  // CPU the weft routers spend in the background (repair, path-MTU probes, heartbeats) while every system is measured.
  const routerCpu = (): number => routerPids.reduce((a, pid) => { try { const c = cpuOf(pid); return a + c.selfMs + c.childrenMs; } catch { return a; } }, 0);
  const cpu0 = routerCpu();
  const wall0 = Date.now();
  try {
    for (let rep = 0; rep < cfg.reps; rep++) {
      // Rotate the order each round so slow drift in the machine's load hits every system alike.
      const round_ = suts.map((_, i) => suts[(i + rep) % suts.length]!);
      order.push(round_.map((s) => s.key));
      for (const s of round_) {
        const t1 = await iperf(s.path, 1, cfg.seconds);
        const t4 = await iperf(s.path, 4, cfg.seconds);
        const p = await pingRtt(s.path, cfg.pings, cfg.warm);
        const sp = sockperf ? await sockperfRtt(s.path, cfg.sockperfSeconds) : undefined;
        s.samples.tcp1.push(t1);
        s.samples.tcp4.push(t4);
        s.samples.ping.push(p);
        if (sp) s.samples.sockperf.push(sp);
        progress(`  round ${rep + 1}/${cfg.reps} ${s.key.padEnd(11)} TCPx1 ${t1.gbps} Gbit/s, TCPx4 ${t4.gbps} Gbit/s, ping p50 ${p.p50Us} us${sp ? `, sockperf p50 ${sp.p50Us} us` : ''} (load ${load1()})`);
      }
    }
  } finally {
    for (const s of suts) s.servers.stop();
  }
  const routersBackground = { routers: routerPids.length, cpuMsPerSecond: round((routerCpu() - cpu0) / ((Date.now() - wall0) / 1000), 1) };
  return {
    routersBackground,
    config: cfg,
    sockperf,
    pinning: { client: CLIENT_CPU, server: SERVER_CPU },
    samples: Object.fromEntries(suts.map((s) => [s.key, s.samples])),
    order,
  };
}

function preflight(): void {
  if (!canCreateNetns()) throw new Error('the across-hosts benchmarks need root on Linux (they create network namespaces)');
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\``);
}

/**
 * Runs the sections BENCH_ONLY selects: `cni` (the single-host phases, the
 * caller's `cni` function) and then the across-hosts ones, in namespaces of
 * `world` (the caller cleans it up on every exit path).
 */
export async function runSections(cni: () => Promise<void>, world: World): Promise<void> {
  const sel = selectedSections();
  if (sel.has('cni')) await cni();
  if (!sel.has('overlay') && !sel.has('connect') && !sel.has('convergence')) return;
  preflight();
  const started = Date.now();
  const results: AcrossHostsResults = { meta: { date: new Date().toISOString(), node: process.version, cpus: cpus().length, kernel: release(), load1Start: load1() } };
  progress(`across hosts: ${[...sel].filter((s) => s !== 'cni').join(', ')} (load ${results.meta.load1Start}, ${results.meta.cpus} cpus)`);
  if (sel.has('overlay')) results.overlay = await runOverlay(world, overlayConfig());
  if (sel.has('connect')) results.connect = await runConnect(world, { runs: Math.max(1, envInt('BENCH_CONNECT_RUNS', 5)) });
  if (sel.has('convergence')) {
    const peers = (process.env.BENCH_CONV_PEERS || '100').split(',').map((x) => Number(x.trim()));
    for (const p of peers) if (!Number.isInteger(p) || p < 2) throw new Error(`BENCH_CONV_PEERS: "${process.env.BENCH_CONV_PEERS}" is not a list of peer counts`);
    results.convergence = runConvergence({ peers });
  }
  results.meta.load1End = load1();
  results.meta.durationS = round((Date.now() - started) / 1000, 1);
  const out = resolve(ROOT, process.env.BENCH_ACROSS_OUT || 'bench/results/across-hosts.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(renderAcrossHosts(results));
  process.stdout.write(`\nJSON: ${out}\n`);
}
