/** The plain-text report of the across-hosts benchmarks (bench/overlay.ts), in the style of bench/lib/report.ts. */
import type { PingResult, SockperfResult, TcpResult } from './lib/cluster-tools.js';
import { round } from './lib/stats.js';
import type { AcrossHostsResults, OverlayResults, SystemKey, SystemSamples } from './overlay.js';

export interface AcrossTarget {
  readonly name: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

const COL: Record<SystemKey, string> = { weft: 'weft', hand: 'hand-built', veth: 'veth', 'weft-brnf': 'weft-brnf', 'hand-brnf': 'hand-brnf', 'weft-nomasq': 'weft-nomasq' };

export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmt(x: number | string | undefined): string {
  if (x === undefined) return '-';
  if (typeof x === 'string') return x;
  if (!Number.isFinite(x)) return '-';
  return String(round(x, x >= 100 ? 0 : x >= 10 ? 1 : 2));
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  return `${round(a / b, 2)}x`;
}

type Metric = (s: SystemSamples) => number;
const tcpM = (k: 'tcp1' | 'tcp4', f: (t: TcpResult) => number): Metric => (s) => median(s[k].map(f));
const pingM = (f: (p: PingResult) => number): Metric => (s) => median(s.ping.map(f));
const spM = (f: (p: SockperfResult) => number): Metric => (s) => median(s.sockperf.map(f));

/** a/b of each round (drift-robust), unrounded: round only for display (fmtRatios). Empty without both. */
export function sameRoundRatios(o: OverlayResults, a: SystemKey, b: SystemKey, pick: (s: SystemSamples, i: number) => number | undefined): number[] {
  const A = o.samples[a];
  const B = o.samples[b];
  if (!A || !B) return [];
  const out: number[] = [];
  for (let i = 0; i < o.config.reps; i++) {
    const x = pick(A, i);
    const y = pick(B, i);
    if (x !== undefined && y !== undefined && y > 0) out.push(x / y);
  }
  return out;
}

/** Same-round ratios for the report: two decimals, slash-separated. */
export function fmtRatios(xs: readonly number[]): string {
  return xs.map((x) => round(x, 2)).join('/');
}

/** Latency metric for the target: sockperf p50 when measured, else ping p50. */
function latencyOf(o: OverlayResults): { name: string; m: Metric } {
  return o.sockperf ? { name: 'sockperf TCP RTT p50', m: spM((p) => p.p50Us) } : { name: 'ping p50', m: pingM((p) => p.p50Us) };
}

/** The issue's target for one like-for-like pair (same host configuration on both sides). */
function pairTargets(o: OverlayResults, wk: SystemKey, hk: SystemKey, hosts: string): AcrossTarget[] {
  const w = o.samples[wk]!;
  const h = o.samples[hk]!;
  const loads = [...w.tcp1, ...w.tcp4, ...h.tcp1, ...h.tcp4].map((t) => t.load1);
  const loadNote = `load1 ${fmt(Math.min(...loads))}-${fmt(Math.max(...loads))} during the TCP tests`;
  const t: AcrossTarget[] = [];
  // The verdict uses the median of the same-round ratios: the rounds interleave the
  // systems, so a ratio within a round cancels the machine's drift between rounds
  // (other tenants), which the ratio of the two medians does not.
  for (const k of ['tcp1', 'tcp4'] as const) {
    const a = tcpM(k, (x) => x.gbps)(w);
    const b = tcpM(k, (x) => x.gbps)(h);
    const same = sameRoundRatios(o, wk, hk, (s, i) => s[k][i]?.gbps);
    const verdict = same.length > 0 ? median(same) : a / b;
    t.push({ name: `TCP ${k === 'tcp1' ? '1 stream' : '4 streams'}, ${hosts}: ${wk} >= 0.95x ${hk}`, measured: `median of same-round ratios ${round(verdict, 3)}x (${fmtRatios(same)}); medians ${fmt(a)} vs ${fmt(b)} Gbit/s = ${ratio(a, b)}; ${loadNote}`, met: verdict >= 0.95 });
  }
  const lat = latencyOf(o);
  const a = lat.m(w);
  const b = lat.m(h);
  const same = sameRoundRatios(o, hk, wk, (s, i) => (o.sockperf ? s.sockperf[i]?.p50Us : s.ping[i]?.p50Us));
  const verdict = same.length > 0 ? median(same) : b / a;
  t.push({ name: `latency (${lat.name}), ${hosts}: ${wk} <= ${hk} / 0.95`, measured: `median of same-round ${hk}/${wk} ${round(verdict, 3)}x (${fmtRatios(same)}); medians ${fmt(a)} vs ${fmt(b)} us = ${ratio(a, b)} of ${hk}`, met: verdict >= 0.95 });
  return t;
}

export function overlayTargets(o: OverlayResults): AcrossTarget[] {
  const t: AcrossTarget[] = [];
  if (o.samples.weft && o.samples.hand) t.push(...pairTargets(o, 'weft', 'hand', 'hosts without br_netfilter'));
  if (o.samples['weft-brnf'] && o.samples['hand-brnf']) t.push(...pairTargets(o, 'weft-brnf', 'hand-brnf', 'hosts with br_netfilter'));
  if (t.length === 0) return [{ name: 'weft >= 0.95x the hand-built VXLAN', measured: 'not measured (needs weft and hand, or weft-brnf and hand-brnf, in BENCH_OVERLAY_SYSTEMS)', met: undefined }];
  return t;
}

function overlayRows(o: OverlayResults): string[] {
  const keys = (['weft', 'hand', 'veth', 'weft-brnf', 'hand-brnf', 'weft-nomasq'] as const).filter((k) => o.samples[k]);
  const ratioCols: [string, SystemKey, SystemKey][] = [];
  if (o.samples.weft && o.samples.hand) ratioCols.push(['weft/hand', 'weft', 'hand']);
  if (o.samples.weft && o.samples.veth) ratioCols.push(['weft/veth', 'weft', 'veth']);
  if (o.samples.hand && o.samples.veth) ratioCols.push(['hand/veth', 'hand', 'veth']);
  if (o.samples['weft-brnf'] && o.samples['hand-brnf']) ratioCols.push(['weft/hand brnf', 'weft-brnf', 'hand-brnf']);
  if (o.samples['hand-brnf'] && o.samples.hand) ratioCols.push(['brnf/hand', 'hand-brnf', 'hand']);
  if (o.samples['weft-nomasq'] && o.samples['hand-brnf']) ratioCols.push(['nomasq/hand brnf', 'weft-nomasq', 'hand-brnf']);
  const rows: string[][] = [];
  const row = (name: string, m: Metric | undefined, note = '', show = true): void => {
    if (!show) return;
    const vals = keys.map((k) => (m ? m(o.samples[k]!) : Number.NaN));
    const byKey = new Map(keys.map((k, i) => [k, vals[i]!]));
    rows.push([name, ...vals.map((v) => fmt(v)), ...ratioCols.map(([, a, b]) => (m ? ratio(byKey.get(a), byKey.get(b)) : '')), note]);
  };
  row('TCP 1 stream (Gbit/s, receiver)', tcpM('tcp1', (t) => t.gbps), 'higher is better');
  row('TCP 4 streams (Gbit/s, receiver)', tcpM('tcp4', (t) => t.gbps), 'higher is better');
  row('  retransmits per TCPx1 test', tcpM('tcp1', (t) => t.retransmits));
  row('  busy vCPUs during TCPx1 (whole VM)', tcpM('tcp1', (t) => t.busyCpus), 'of 2; includes other tenants');
  row('ping RTT p50 (us)', pingM((p) => p.p50Us), `${o.config.pings} pings at -i 0.01 after ${o.config.warm} warm-up`);
  row('ping RTT avg (us)', pingM((p) => p.avgUs));
  row('ping RTT p99 (us)', pingM((p) => p.p99Us));
  row('sockperf TCP ping-pong RTT p50 (us)', spM((p) => p.p50Us), `--full-rtt, ${o.config.sockperfSeconds} s`, o.sockperf);
  row('sockperf TCP ping-pong RTT p99 (us)', spM((p) => p.p99Us), '', o.sockperf);
  row('sockperf round trips/s', spM((p) => p.tps), 'higher is better', o.sockperf);
  row('container MTU', (s) => s.containerMtu ?? Number.NaN);
  const head = ['metric', ...keys.map((k) => COL[k]), ...ratioCols.map((c) => c[0]), 'note'];
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : i === r.length - 1 ? c : c.padStart(w[i]!))).join('  ').trimEnd();
  const out = all.map(line);
  const per = (k: SystemKey, f: (s: SystemSamples) => number[]): string => f(o.samples[k]!).map((x) => fmt(x)).join('/');
  out.push('');
  out.push('per round (in measurement order):');
  for (const k of keys) out.push(`  ${COL[k].padEnd(11)} TCPx1 ${per(k, (s) => s.tcp1.map((t) => t.gbps))}  TCPx4 ${per(k, (s) => s.tcp4.map((t) => t.gbps))}  ping p50 ${per(k, (s) => s.ping.map((p) => p.p50Us))}${o.sockperf ? `  sockperf p50 ${per(k, (s) => s.sockperf.map((p) => p.p50Us))}` : ''}  load1 ${per(k, (s) => s.tcp1.map((t) => t.load1))}`);
  for (const [a, b] of [['weft', 'hand'], ['weft-brnf', 'hand-brnf']] as const) {
    if (!o.samples[a] || !o.samples[b]) continue;
    out.push(`  same-round ${a}/${b}: TCPx1 ${fmtRatios(sameRoundRatios(o, a, b, (s, i) => s.tcp1[i]?.gbps))}  TCPx4 ${fmtRatios(sameRoundRatios(o, a, b, (s, i) => s.tcp4[i]?.gbps))}`);
  }
  out.push('hosts (first host of each topology):');
  for (const k of keys) {
    const d = o.samples[k]!.diagnostics;
    if (d) out.push(`  ${COL[k].padEnd(11)} bridge-nf-call-iptables=${d.brNfCallIptables}; nft tables: ${d.nftTables.join(', ') || 'none'}; ${d.vxlan}`);
  }
  out.push(`weft routers in the background during the rounds: ${o.routersBackground.routers} routers, ${fmt(o.routersBackground.cpuMsPerSecond)} ms CPU per second together (incl. their ip/nft children)`);
  if (!o.sockperf) out.push('sockperf: not installed, TCP ping-pong skipped (apt-get install sockperf)');
  return out;
}

export function renderAcrossHosts(r: AcrossHostsResults): string {
  const out: string[] = [''];
  out.push(`weft across hosts ${r.meta.date}  node ${r.meta.node}  ${r.meta.cpus} cpus  kernel ${r.meta.kernel}`);
  out.push(`load average ${r.meta.load1Start} -> ${r.meta.load1End ?? '?'}, ${r.meta.durationS ?? '?'} s`);
  const targets: AcrossTarget[] = [];
  if (r.overlay) {
    const o = r.overlay;
    out.push('');
    out.push(`-- data plane, container to container across two simulated hosts on one underlay switch (median of ${o.config.reps} interleaved rounds; iperf3 -t ${o.config.seconds}; client vCPU${o.pinning.client}, server vCPU${o.pinning.server})`);
    out.push(...overlayRows(o));
    targets.push(...overlayTargets(o));
  }
  if (r.connect) {
    const c = r.connect;
    out.push('');
    out.push(`-- weft connect -> first cross-host ping: new host h2 (no peers, no address space, an ADD waiting) joins h1 (${c.runs.length} runs, fresh routers each; mesh timers: ${c.meshTimers})`);
    out.push(`first echo reply c2 -> c1 after starting \`weft connect\`: median ${fmt(c.reachable.p50)} ms (min ${fmt(c.reachable.min)}, max ${fmt(c.reachable.max)}); runs ${c.runs.map((x) => fmt(x.reachableMs)).join('/')} ms`);
    out.push(`  the CLI process (Node start-up + POST /v1/mesh/connect): median ${fmt(c.cli.p50)} ms`);
    out.push(`  the waiting ADD on h2 returned (address space granted by h1, veth set up): median +${fmt(c.add.p50)} ms`);
    out.push(`  'overlay applied' logged after starting the CLI: h1 ${c.runs.map((x) => fmt(x.overlayAppliedMs.h1)).join('/')} ms, h2 ${c.runs.map((x) => fmt(x.overlayAppliedMs.h2)).join('/')} ms`);
    const mid = [...c.runs].sort((a, b) => a.reachableMs - b.reachableMs)[Math.floor((c.runs.length - 1) / 2)];
    if (mid) {
      out.push(`  timeline of the median run (ms after starting the CLI; CLI exited at +${fmt(mid.cliMs)}, load1 ${fmt(mid.load1)}):`);
      for (const e of mid.timeline) out.push(`    +${String(Math.round(e.atMs)).padStart(5)}  ${e.host.padEnd(3)} ${e.event}`);
    }
  }
  if (r.convergence) {
    const v = r.convergence;
    out.push('');
    out.push(`-- mesh convergence, simulated routers in virtual time (simulateConvergence, seed ${v.seed}, loss ${v.loss}, default mesh configuration)`);
    out.push('peers  converged  virtual s  bytes (all routers)  per router  messages  connections  real s');
    for (const x of v.results) {
      out.push(`${String(x.peers).padStart(5)}  ${(x.converged ? 'yes' : 'NO').padStart(9)}  ${(x.virtualMs / 1000).toFixed(1).padStart(9)}  ${`${(x.bytes / 1e6).toFixed(1)} MB`.padStart(19)}  ${`${(x.bytes / x.peers / 1e6).toFixed(2)} MB`.padStart(10)}  ${String(x.messages).padStart(8)}  ${String(x.connections).padStart(11)}  ${(x.wallMs / 1000).toFixed(1).padStart(6)}`);
    }
  }
  if (targets.length) {
    out.push('');
    out.push('targets');
    for (const t of targets) out.push(`  [${t.met === undefined ? 'skip' : t.met ? ' met' : 'MISS'}] ${t.name}: ${t.measured}`);
  }
  return `${out.join('\n')}\n`;
}
