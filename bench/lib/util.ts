/** Small helpers for the benchmark driver: env config, progress, pools, /proc reads, unix-socket GET. */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

export function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${v}"`);
  return n;
}

export function envBool(name: string, dflt: boolean): boolean {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (['0', 'false', 'no', 'off'].includes(v.toLowerCase())) return false;
  if (['1', 'true', 'yes', 'on'].includes(v.toLowerCase())) return true;
  throw new Error(`${name} must be 0/1 or true/false, got "${v}"`);
}

const started = Date.now();

/** Progress goes to stderr so stdout carries only the report. */
export function progress(msg: string): void {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${s}s] ${msg}\n`);
}

export function elapsedS(): number {
  return (Date.now() - started) / 1000;
}

export function load1(): number {
  return Math.round(loadavg()[0]! * 100) / 100;
}

/** Runs fn over items with at most `conc` in flight; results in item order. */
export async function pool<T, R>(items: readonly T[], conc: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(conc, items.length) }, worker));
  return out;
}

/** VmRSS (and its anonymous / file-backed parts) and VmHWM of a process, in MiB. */
export function memoryOf(pid: number): { rssMiB: number; hwmMiB: number; anonMiB: number; fileMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${key}`);
    return Number(m[1]) / 1024;
  };
  return { rssMiB: kb('VmRSS'), hwmMiB: kb('VmHWM'), anonMiB: kb('RssAnon'), fileMiB: kb('RssFile') + kb('RssShmem') };
}

/** GET over a unix socket, returning the body as text (for /metrics, which is not JSON). */
export function getText(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method: 'GET', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ((res.statusCode ?? 0) === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`GET ${path}: HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${path}: timeout`)));
    req.end();
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** USER_HZ; 100 on every Linux architecture weft runs on. */
const CLK_TCK = 100;

/**
 * CPU time of a process from /proc/PID/stat, in ms: its own (utime+stime)
 * and that of its waited-for children (cutime+cstime, which include their
 * own waited-for children: a plugin's IPAM plugin, the router's ip/nsenter).
 */
export function cpuOf(pid: number): { selfMs: number; childrenMs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // After "(comm) ", field 3 (state) is index 0: utime=14 → 11, stime → 12, cutime → 13, cstime → 14.
  const tick = 1000 / CLK_TCK;
  return { selfMs: (f[11]! + f[12]!) * tick, childrenMs: (f[13]! + f[14]!) * tick };
}

/** `ms` fields of the router's JSON log records with this msg, from line `from` on. */
export function logMs(lines: readonly string[], msg: string, from: number): number[] {
  const out: number[] = [];
  for (const l of lines.slice(from)) {
    if (!l.includes(msg)) continue;
    try {
      const rec = JSON.parse(l) as { msg?: string; ms?: number };
      if (rec.msg === msg && typeof rec.ms === 'number') out.push(rec.ms);
    } catch { /* not JSON */ }
  }
  return out;
}
