/**
 * Path MTU probe of the underlay (docs/overlay.md "MTU"): `ping -M do` (DF
 * set, no local fragmentation) with an IP packet of the full encapsulated
 * size to each peer's underlay address; when that fails, one small ping
 * tells "path MTU too small" from "peer not reachable". What to probe when
 * is pure policy in src/core/dataplane/overlay-mtu.ts.
 */
import { tryParseIp } from '../../core/ip/addr.js';
import { type PathMtuTarget, type PingOutcome, pathMtuVerdict, pingPayloadFor } from '../../core/dataplane/overlay-mtu.js';
import type { PathMtuResult } from '../../core/dataplane/overlay-types.js';
import { InvalidConfigError } from '../../core/errors.js';
import { inNetns, runCommand } from './exec.js';

export interface PathMtuProbeOptions {
  /** Netns path to send from; undefined = the process's own netns (the daemon, which is the host's). */
  readonly netns?: string;
  /** Echo requests per full-size probe (one reply is enough). Default 2. */
  readonly count?: number;
  /** Seconds to wait for a reply. Default 1. */
  readonly waitS?: number;
  /** Probes in flight at once. Default 4. */
  readonly concurrency?: number;
  /** Clock for checkedAt (tests). */
  readonly now?: () => number;
}

/** Without -q: ping reports a local "message too long, mtu=N" only per packet. */
async function ping(netns: string | undefined, family: 4 | 6, address: string, payload: number, count: number, waitS: number): Promise<PingOutcome> {
  const args = [`-${family}`, '-n', '-M', 'do', '-s', String(payload), '-c', String(count), '-i', '0.2', '-W', String(waitS), address];
  const w = inNetns(netns, 'ping', args);
  const r = await runCommand(w.cmd, w.args, { timeoutMs: (count * 0.2 + waitS + 5) * 1000 });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** One target: the full-size DF ping, and a small one only if that failed. */
export async function probePathMtu(target: PathMtuTarget, opts: PathMtuProbeOptions = {}): Promise<PathMtuResult> {
  const ip = tryParseIp(target.address);
  if (!ip) throw new InvalidConfigError(`path MTU target ${target.peer} has no IP address ("${target.address}")`);
  const payload = pingPayloadFor(target.size, ip.family);
  if (!Number.isInteger(payload) || payload < 0 || target.size > 65535) throw new InvalidConfigError(`path MTU probe size ${target.size} is out of range`);
  const count = opts.count ?? 2;
  const waitS = opts.waitS ?? 1;
  const full = await ping(opts.netns, ip.family, target.address, payload, count, waitS);
  const small = full.code === 0 || /message too long/i.test(full.stderr) ? undefined : await ping(opts.netns, ip.family, target.address, 56, 1, waitS);
  return pathMtuVerdict(target, full, small, (opts.now ?? Date.now)());
}

/** Every target, a few at a time; results in target order. */
export async function checkPathMtu(targets: readonly PathMtuTarget[], opts: PathMtuProbeOptions = {}): Promise<PathMtuResult[]> {
  const out: PathMtuResult[] = new Array<PathMtuResult>(targets.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < targets.length) {
      const i = next++;
      out[i] = await probePathMtu(targets[i]!, opts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, opts.concurrency ?? 4), targets.length) }, worker));
  return out;
}
