/**
 * Data-plane measurements between two namespaces, as the research measured
 * them (/work/shared/research/dataplane-limits.md, "Method"): the client
 * side (iperf3 -c, ping, sockperf client) pinned to vCPU0, the server side
 * (iperf3 -s, sockperf server) to vCPU1 with taskset, so each simulated
 * host gets one vCPU.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { exec } from '../../test/helpers/exec.js';
import type { Netns, World } from '../../test/helpers/world.js';
import { quantile, round } from './stats.js';
import { load1, sleep } from './util.js';
import type { Path } from './cluster.js';

export const CLIENT_CPU = '0';
export const SERVER_CPU = String(Math.min(1, cpus().length - 1));
const SOCKPERF_PORT = '11111';
const IPERF_PORT = '5201';

/** True when `cmd` is on PATH. */
export async function haveTool(cmd: string): Promise<boolean> {
  return (await exec('sh', ['-c', `command -v ${cmd}`])).code === 0;
}

/** Busy time of the whole machine between two snapshots, in vCPUs (1.0 = one vCPU busy the whole time). */
export function cpuSnapshot(): { total: number; idle: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const total = line.slice(0, 8).reduce((a, b) => a + b, 0);
  return { total, idle: line[3]! + line[4]! };
}

export function busyCpus(a: { total: number; idle: number }, b: { total: number; idle: number }): number {
  const dt = b.total - a.total;
  return dt > 0 ? round(((dt - (b.idle - a.idle)) / dt) * cpus().length, 2) : Number.NaN;
}

/** Polls `ss` in the netns until a TCP socket listens on `port` (servers block-buffer their banners into a pipe). */
async function listening(ns: Netns, port: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const r = await exec('ss', ['-Hltn', `sport = :${port}`], { netns: ns.name });
    if (r.code === 0 && r.stdout.trim() !== '') return true;
    await sleep(50);
  }
  return false;
}

/** Long-running servers in the server netns of a path (pinned to SERVER_CPU), killed by stop() or world.cleanup(). */
export class Servers {
  private readonly children: ChildProcess[] = [];
  constructor(private readonly world: World, private readonly path: Path) {}

  async start(sockperf: boolean): Promise<void> {
    const ns = this.path.server;
    const iperf = this.world.spawnIn(ns, 'taskset', ['-c', SERVER_CPU, 'iperf3', '-s']);
    this.children.push(iperf);
    if (!(await listening(ns, IPERF_PORT, 5000))) throw new Error(`iperf3 -s did not start listening in ${ns.name}`);
    if (sockperf) {
      const sp = this.world.spawnIn(ns, 'taskset', ['-c', SERVER_CPU, 'sockperf', 'server', '--tcp', '-i', this.path.serverIp, '-p', SOCKPERF_PORT]);
      this.children.push(sp);
      if (!(await listening(ns, SOCKPERF_PORT, 5000))) throw new Error(`sockperf server did not start listening in ${ns.name}`);
    }
  }

  stop(): void {
    for (const c of this.children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

export interface TcpResult {
  readonly gbps: number;
  readonly retransmits: number;
  /** Whole-machine busy vCPUs during the test. */
  readonly busyCpus: number;
  readonly load1: number;
}

/** `iperf3 -c` from the client netns (pinned), `streams` parallel streams for `seconds`; receiver-side Gbit/s. */
export async function iperf(path: Path, streams: number, seconds: number): Promise<TcpResult> {
  const l = load1();
  const c0 = cpuSnapshot();
  const r = await exec('taskset', ['-c', CLIENT_CPU, 'iperf3', '-c', path.serverIp, '-t', String(seconds), '-P', String(streams), '-J'], { netns: path.client.name, timeoutMs: (seconds + 30) * 1000 });
  const c1 = cpuSnapshot();
  let j: { error?: string; end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } } };
  try { j = JSON.parse(r.stdout) as typeof j; } catch { throw new Error(`iperf3 to ${path.serverIp} printed no JSON (exit ${r.code}): ${r.stdout.slice(0, 300)}${r.stderr}`); }
  if (j.error || !j.end?.sum_received) throw new Error(`iperf3 to ${path.serverIp}: ${j.error ?? 'no result'}`);
  return { gbps: round(j.end.sum_received.bits_per_second / 1e9, 2), retransmits: j.end.sum_sent?.retransmits ?? 0, busyCpus: busyCpus(c0, c1), load1: l };
}

export interface PingResult {
  readonly n: number;
  readonly lost: number;
  readonly p50Us: number;
  readonly avgUs: number;
  readonly p99Us: number;
  readonly load1: number;
}

/** Parses the `time=X ms` of each reply of ping's output, in µs. */
export function parsePingTimes(out: string): number[] {
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
}

/** `ping -i 0.01`: `warm` unpinned warm-up pings, then `count` pinned pings; p50/avg/p99 RTT in µs. */
export async function pingRtt(path: Path, count: number, warm: number): Promise<PingResult> {
  if (warm > 0) await exec('ping', ['-c', String(warm), '-i', '0.01', '-q', '-W', '1', path.serverIp], { netns: path.client.name, timeoutMs: warm * 50 + 10_000 });
  const l = load1();
  const r = await exec('taskset', ['-c', CLIENT_CPU, 'ping', '-c', String(count), '-i', '0.01', '-W', '1', path.serverIp], { netns: path.client.name, timeoutMs: count * 50 + 10_000 });
  const t = parsePingTimes(r.stdout).sort((a, b) => a - b);
  if (t.length === 0) throw new Error(`ping ${path.serverIp} from ${path.client.name}: no replies\n${r.stdout}${r.stderr}`);
  return { n: t.length, lost: count - t.length, p50Us: round(quantile(t, 0.5), 1), avgUs: round(t.reduce((a, b) => a + b, 0) / t.length, 1), p99Us: round(quantile(t, 0.99), 1), load1: l };
}

export interface SockperfResult {
  readonly p50Us: number;
  readonly p99Us: number;
  readonly avgUs: number;
  /** Round trips per second. */
  readonly tps: number;
  readonly load1: number;
}

/** Parses `sockperf ping-pong --full-rtt` output (sockperf 3.7). */
export function parseSockperf(out: string): Omit<SockperfResult, 'load1'> | undefined {
  const pct = (p: string): number | undefined => {
    const m = new RegExp(`percentile ${p.replace('.', '\\.')}\\s*=\\s*([\\d.]+)`).exec(out);
    return m ? Number(m[1]) : undefined;
  };
  const avg = /avg-r?tt=([\d.]+)/.exec(out) ?? /(?:Round trip|Latency) is ([\d.]+) usec/.exec(out);
  const dur = /RunTime=([\d.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)/.exec(out);
  const p50 = pct('50.000');
  const p99 = pct('99.000');
  if (p50 === undefined || p99 === undefined || !avg) return undefined;
  return { p50Us: p50, p99Us: p99, avgUs: Number(avg[1]), tps: dur ? Math.round(Number(dur[3]) / Number(dur[1])) : Number.NaN };
}

/** `sockperf ping-pong --tcp --full-rtt` for `seconds` (pinned), against the server Servers started. */
export async function sockperfRtt(path: Path, seconds: number): Promise<SockperfResult> {
  const l = load1();
  const r = await exec('taskset', ['-c', CLIENT_CPU, 'sockperf', 'ping-pong', '--tcp', '-i', path.serverIp, '-p', SOCKPERF_PORT, '-t', String(seconds), '--full-rtt'], { netns: path.client.name, timeoutMs: (seconds + 30) * 1000 });
  const p = parseSockperf(`${r.stdout}\n${r.stderr}`);
  if (!p) throw new Error(`sockperf ping-pong to ${path.serverIp}: could not parse (exit ${r.code}):\n${r.stdout.slice(-800)}${r.stderr.slice(-400)}`);
  return { ...p, load1: l };
}

/** First reply within `ms`: true when the path carries a ping (setup check). */
export async function reachable(from: Netns, to: string, ms = 10_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if ((await exec('ping', ['-c', '1', '-W', '1', to], { netns: from.name })).code === 0) return true;
    await sleep(100);
  }
  return false;
}
