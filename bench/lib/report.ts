/** The shape of bench/results/latest.json and the plain-text table printed at the end of a run. */
import { type Calibration, describeCalibration } from './calibrate.js';
import { round, type Summary } from './stats.js';

export interface Target {
  readonly name: string;
  readonly measured: string;
  /** undefined: not measured in this run. */
  readonly met: boolean | undefined;
}

export interface BenchResults {
  meta: {
    date: string; node: string; cpus: number; kernel: string; weftCommit: string; weftTreeDirty: boolean; referencePlugins: string;
    load1Start: number; load1End?: number; durationS?: number;
    calibration?: Calibration;
  };
  config: Record<string, unknown>;
  sequential: Record<string, { add: Summary; check: Summary; del: Summary; addQuarters: number[]; wallS: Record<string, number>; cpuMsPerContainer: number }>;
  concurrent: Record<string, { cyclesPerSec: number; cycles: number; wallS: number; add: Summary; del: Summary; cpuMsPerCycle: number }>;
  floors: Record<string, Summary>;
  ipam: {
    weftInProcess: { allocsPerSec: number; latency: Summary; quarters: number[] };
    weftInProcessAnonymous: { allocsPerSec: number; latency: Summary; quarters: number[] };
    hostLocalExec: { allocsPerSec: number; latency: Summary };
    weftIpamExec: { allocsPerSec: number; latency: Summary };
    natPlanWith1000Attachments: Summary;
  };
  daemon: {
    histogramAdd: { count: number; p50EstMs: number; p99EstMs: number; meanMs: number; buckets: { le: string; count: number }[] };
    apiAdd: Summary;
    apiDel: Summary;
    /** The router's own time per request (server-timing), fresh container netns. */
    routerAdd: Summary;
    routerDel: Summary;
    cpuMsPerApiAdd: number;
    cpuMsPerApiDel: number;
    /** How the router programmed veths: `netlink` (in process) or `ip (<reason>)`. */
    vethProgramming?: string;
    vethAttachMs: Summary;
    vethDetachMs: Summary;
    rssIdleMiB: number;
    rssIdleAnonMiB: number;
    rssIdleFileMiB: number;
    rssEndMiB: number;
  };
  big?: {
    n: number; conc: number; attachedReported: number; rssBeforeMiB: number; rssAttachedMiB: number; rssAttachedAnonMiB: number; rssAttachedFileMiB: number;
    heapAttached: Heap; peakMiB: number; rssAfterDelMiB: number; heapAfterDel: Heap;
    apiAdd: Summary; apiAddQuarters: number[]; histogramAdd: { count: number; p50EstMs: number; meanMs: number }; apiDel: Summary;
    seqApiAddAtN: Summary; seqApiDelAtN: Summary; cpuMsPerApiAddAtN: number; cpuMsPerApiDelAtN: number;
    idle: { cpuMsPerAdd: number; cpuMsPerDel: number; add: Summary; del: Summary };
    launcherAddAtN: Summary; launcherDelAtN: Summary;
  };
  targets: Target[];
}

export interface Heap { usedMiB: number; totalMiB: number; externalMiB: number }

type Cell = string | number | undefined;

function fmt(x: Cell): string {
  if (x === undefined) return '-';
  if (typeof x === 'number') return Number.isFinite(x) ? String(round(x, x >= 100 ? 0 : x >= 10 ? 1 : 2)) : '-';
  return x;
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  return `${round(a / b, 2)}x`;
}

export function renderReport(r: BenchResults): string {
  const rows: [string, Cell, Cell, string, string][] = [];
  const head = (t: string): void => { rows.push([`-- ${t}`, '', '', '', '']); };
  const row = (name: string, w: number | string | undefined, f: number | string | undefined, note = ''): void => {
    rows.push([name, w, f, typeof w === 'number' && typeof f === 'number' ? ratio(w, f) : '', note]);
  };
  const W = r.sequential['weft']!;
  const F = r.sequential['reference']!;
  head(`sequential, ${W.add.n} containers (ms; weft through the installed sh launcher -> curl -> router)`);
  row('ADD p50', W.add.p50, F.add.p50);
  row('ADD p99', W.add.p99, F.add.p99);
  row('CHECK p50', W.check.p50, F.check.p50);
  row('CHECK p99', W.check.p99, F.check.p99);
  row('DEL p50', W.del.p50, F.del.p50);
  row('DEL p99', W.del.p99, F.del.p99);
  row('ADD p50 by quarter', W.addQuarters.map((x) => fmt(x)).join('/'), F.addQuarters.map((x) => fmt(x)).join('/'), 'growth with containers present');
  row('CPU ms per container (ADD+CHECK+DEL)', W.cpuMsPerContainer, F.cpuMsPerContainer, 'plugins + what they exec (+ router for weft)');
  const CW = r.concurrent['weft']!;
  const CF = r.concurrent['reference']!;
  head(`throughput, ${String(r.config['conc'])} concurrent workers`);
  row('ADD+DEL cycles/s (higher is better)', CW.cyclesPerSec, CF.cyclesPerSec);
  row('ADD p50 under load (ms)', CW.add.p50, CF.add.p50);
  row('DEL p50 under load (ms)', CW.del.p50, CF.del.p50);
  row('CPU ms per ADD+DEL cycle', CW.cpuMsPerCycle, CF.cpuMsPerCycle, 'what bounds throughput on a busy box');
  const fl = r.floors;
  head('exec floor, p50 ms (VERSION)');
  row('plugin as installed (weft: sh launcher)', fl['weftLauncherVersion']!.p50, fl['referenceBridgeVersion']!.p50, 'reference: bridge');
  row('plugin through node (weft bundle)', fl['weftBundleVersion']!.p50, fl['referenceBridgeVersion']!.p50);
  row('node -e 0 (Node start-up floor)', fl['nodeE0']!.p50, undefined);
  row('host-local VERSION', undefined, fl['referenceHostLocalVersion']!.p50);
  row('/bin/true (exec floor of the harness)', fl['binTrue']!.p50, fl['binTrue']!.p50);
  const ip = r.ipam;
  head('IPAM');
  row('allocs/s: weft in-process (LMDB, durable) vs host-local exec', ip.weftInProcess.allocsPerSec, ip.hostLocalExec.allocsPerSec, `higher is better; ${fmt(ip.weftInProcess.latency.n)} pods with names`);
  row('per allocation p50 (ms), same', ip.weftInProcess.latency.p50, ip.hostLocalExec.latency.p50);
  row('  weft per allocation p50 by quarter (ms)', ip.weftInProcess.quarters.map((x) => fmt(x)).join('/'), undefined, 'growth with allocations present');
  row('allocs/s: weft in-process, no pod name', ip.weftInProcessAnonymous.allocsPerSec, ip.hostLocalExec.allocsPerSec, `p50 by quarter ${ip.weftInProcessAnonymous.quarters.map((x) => fmt(x)).join('/')} ms`);
  row('host-local ADD minus its exec floor (ms)', undefined, round(ip.hostLocalExec.latency.p50 - fl['referenceHostLocalVersion']!.p50), 'in-process estimate');
  row('IPAM plugin ADD exec p50 (weft-ipam vs host-local)', ip.weftIpamExec.latency.p50, ip.hostLocalExec.latency.p50);
  row('IPAM plugin allocs/s, exec (weft-ipam vs host-local)', ip.weftIpamExec.allocsPerSec, ip.hostLocalExec.allocsPerSec);
  row('NAT plan per ADD/DEL with 1000 attachments (ms)', ip.natPlanWith1000Attachments.p50, undefined, 'listAttachments+desiredNat');
  const d = r.daemon;
  head('router (daemon side)');
  row('ADD p50 in the router (ms; server-timing, fresh netns)', d.routerAdd.p50, undefined, `p90 ${fmt(d.routerAdd.p90)}, p99 ${fmt(d.routerAdd.p99)}`);
  row('DEL p50 in the router (ms)', d.routerDel.p50, undefined, `p99 ${fmt(d.routerDel.p99)}`);
  row('ADD p50 via API, no exec (ms)', d.apiAdd.p50, undefined, `p99 ${fmt(d.apiAdd.p99)}; adds the HTTP round trip`);
  row('DEL p50 via API, no exec (ms)', d.apiDel.p50, undefined, `p99 ${fmt(d.apiDel.p99)}`);
  row('router CPU per API ADD / DEL (ms, incl. its ip/nft children)', `${fmt(d.cpuMsPerApiAdd)} / ${fmt(d.cpuMsPerApiDel)}`, undefined);
  row('ADD p50 from weft_cni_request_duration_seconds (ms)', d.histogramAdd.p50EstMs, undefined, `bucket estimate; mean ${fmt(d.histogramAdd.meanMs)}`);
  row('  of which veth attach p50 (ms)', d.vethAttachMs.p50, undefined, `from the router log; veths via ${d.vethProgramming ?? '?'}`);
  row('RSS idle (MiB)', d.rssIdleMiB, undefined, `anon ${fmt(d.rssIdleAnonMiB)} + file ${fmt(d.rssIdleFileMiB)}`);
  if (r.big) {
    const b = r.big;
    head(`${b.n} attached containers (attached through the API, ${b.conc} at a time)`);
    row('daemon RSS (MiB)', b.rssAttachedMiB, undefined, `anon ${fmt(b.rssAttachedAnonMiB)} + file ${fmt(b.rssAttachedFileMiB)}; peak ${fmt(b.peakMiB)}; idle ${fmt(r.daemon.rssIdleMiB)}`);
    row('  V8 heap used / total (MiB)', `${fmt(b.heapAttached.usedMiB)} / ${fmt(b.heapAttached.totalMiB)}`, undefined, `after DEL of all: ${fmt(b.heapAfterDel.usedMiB)} / ${fmt(b.heapAfterDel.totalMiB)}, RSS ${fmt(b.rssAfterDelMiB)}`);
    row('API ADD p50 by quarter (ms)', b.apiAddQuarters.map((x) => fmt(x)).join('/'), undefined, `${b.conc} in flight`);
    row('  daemon-side ADD (histogram) p50 / mean (ms)', `${fmt(b.histogramAdd.p50EstMs)} / ${fmt(b.histogramAdd.meanMs)}`, undefined, `${b.conc} in flight`);
    row(`sequential API ADD p50 with ${b.n} attached (ms)`, b.seqApiAddAtN.p50, b.idle.add.p50, 'reference column: same on a nearly empty router');
    row(`sequential API DEL p50 with ${b.n} attached (ms)`, b.seqApiDelAtN.p50, b.idle.del.p50, 'vs nearly empty router');
    row(`router CPU per API ADD with ${b.n} attached (ms)`, b.cpuMsPerApiAddAtN, b.idle.cpuMsPerAdd, 'vs nearly empty router');
    row(`router CPU per API DEL with ${b.n} attached (ms)`, b.cpuMsPerApiDelAtN, b.idle.cpuMsPerDel, 'vs nearly empty router');
    row(`launcher ADD p50 with ${b.n} attached (ms)`, b.launcherAddAtN.p50, W.add.p50, 'vs empty router (sequential phase)');
    row(`launcher DEL p50 with ${b.n} attached (ms)`, b.launcherDelAtN.p50, W.del.p50, 'vs empty router');
  }
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((x) => (x[0].startsWith('-- ') && i === 0 ? 0 : fmt(x[i]).length)), ['metric', 'weft', 'reference', 'weft/ref'][i]!.length));
  const line = (c: string[]): string => `${c[0]!.padEnd(widths[0]!)}  ${c[1]!.padStart(widths[1]!)}  ${c[2]!.padStart(widths[2]!)}  ${c[3]!.padStart(widths[3]!)}  ${c[4] ?? ''}`.trimEnd();
  const out: string[] = [];
  out.push('');
  out.push(`weft bench ${r.meta.date}  node ${r.meta.node}  ${r.meta.cpus} cpus  kernel ${r.meta.kernel}  weft ${r.meta.weftCommit}${r.meta.weftTreeDirty ? '+dirty' : ''}  ${r.meta.referencePlugins}`);
  out.push(`load average ${r.meta.load1Start} -> ${r.meta.load1End ?? '?'}, ${r.meta.durationS ?? '?'} s, ipMasq=${String(r.config['ipMasq'])}${r.meta.calibration ? `; ${describeCalibration(r.meta.calibration)}` : ''}`);
  out.push('');
  out.push(line(['metric', 'weft', 'reference', 'weft/ref', 'note']));
  for (const x of rows) out.push(x[0].startsWith('-- ') ? `\n${x[0]}` : line([x[0], fmt(x[1]), fmt(x[2]), x[3], x[4]]));
  out.push('');
  out.push('targets');
  for (const t of r.targets) out.push(`  [${t.met === undefined ? 'skip' : t.met ? ' met' : 'MISS'}] ${t.name}: ${t.measured}`);
  return `${out.join('\n')}\n`;
}
