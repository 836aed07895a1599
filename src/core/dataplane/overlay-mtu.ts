/**
 * Path MTU checks of the underlay (docs/overlay.md "MTU"): does an outer
 * packet of full encapsulated size (container MTU + 50, or + 70 over IPv6),
 * with DF set, reach each peer? A path that drops it breaks every
 * full-size container packet to that peer while pings and small requests
 * still work, the classic overlay failure. Pure policy here (whom to probe
 * when, how to read the outcome); the adapter sends the packets.
 */
import type { Family } from '../ip/addr.js';
import { tryParseIp } from '../ip/addr.js';
import { encapsulatedSize } from './overlay-plan.js';
import type { OverlayPeerRoute, PathMtuResult } from './overlay-types.js';

export interface PathMtuTarget {
  readonly peer: string;
  readonly address: string;
  /** Outer IP packet size to probe. */
  readonly size: number;
}

export interface PathMtuPolicy {
  /** Re-check a passing peer this often. Default 10 min. */
  readonly okIntervalMs: number;
  /** Re-check a failing peer this often. Default 30 s. */
  readonly failIntervalMs: number;
  /** At most this many probes per round (oldest first). Default 8. */
  readonly maxPerRound: number;
}

export const DEFAULT_PATH_MTU_POLICY: PathMtuPolicy = { okIntervalMs: 10 * 60_000, failIntervalMs: 30_000, maxPerRound: 8 };

/**
 * What to probe: every directly reached peer, at the size of the largest
 * container MTU of this host's networks. A relayed peer is not probed (its
 * packets go to the relay, which is probed as a direct peer; the relay's own
 * leg is the relay's to check).
 */
export function pathMtuTargets(routes: readonly OverlayPeerRoute[], containerMtu: number): PathMtuTarget[] {
  const out: PathMtuTarget[] = [];
  for (const r of routes) {
    if (r.via !== undefined) continue;
    const family: Family = tryParseIp(r.ip)?.family ?? 4;
    out.push({ peer: r.peer, address: r.ip, size: encapsulatedSize(containerMtu, family) });
  }
  return out.sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
}

/**
 * The targets due now: never checked, checked at another address or size,
 * or last checked longer ago than the interval for its outcome. Oldest
 * first, at most policy.maxPerRound.
 */
export function duePathMtuProbes(targets: readonly PathMtuTarget[], results: readonly PathMtuResult[], now: number, policy: PathMtuPolicy = DEFAULT_PATH_MTU_POLICY): PathMtuTarget[] {
  const last = new Map(results.map((r) => [r.peer, r]));
  const due: { t: PathMtuTarget; at: number }[] = [];
  for (const t of targets) {
    const r = last.get(t.peer);
    if (r === undefined || r.address !== t.address || r.size !== t.size) {
      due.push({ t, at: -Infinity });
      continue;
    }
    const interval = r.ok ? policy.okIntervalMs : policy.failIntervalMs;
    if (now - r.checkedAt >= interval || r.checkedAt > now) due.push({ t, at: r.checkedAt });
  }
  due.sort((a, b) => a.at - b.at || (a.t.peer < b.t.peer ? -1 : a.t.peer > b.t.peer ? 1 : 0));
  return due.slice(0, Math.max(0, policy.maxPerRound)).map((d) => d.t);
}

/** Results after a round: fresh ones replace older ones; peers no longer targeted are dropped. Sorted by peer. */
export function mergePathMtuResults(previous: readonly PathMtuResult[], fresh: readonly PathMtuResult[], targets: readonly PathMtuTarget[]): PathMtuResult[] {
  const wanted = new Set(targets.map((t) => t.peer));
  const m = new Map<string, PathMtuResult>();
  for (const r of previous) if (wanted.has(r.peer)) m.set(r.peer, r);
  for (const r of fresh) if (wanted.has(r.peer)) m.set(r.peer, r);
  return [...m.values()].sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
}

/** ping's `-s` for an IP packet of `size` bytes (IPv4 + ICMP headers 28, IPv6 + ICMPv6 48). */
export function pingPayloadFor(size: number, family: Family): number {
  return size - (family === 6 ? 48 : 28);
}

export interface PingOutcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The verdict of a full-size probe. `small` is the outcome of a small ping
 * sent only when the full-size one failed, to tell "path MTU too small" from
 * "peer not reachable at all".
 */
export function pathMtuVerdict(target: PathMtuTarget, full: PingOutcome, small: PingOutcome | undefined, now: number): PathMtuResult {
  const base = { peer: target.peer, address: target.address, size: target.size, checkedAt: now };
  if (full.code === 0) return { ...base, ok: true };
  const text = `${full.stderr}\n${full.stdout}`;
  const local = /mtu\s*=\s*(\d+)/i.exec(text);
  if (/message too long/i.test(text)) {
    return { ...base, ok: false, error: `the local route to ${target.address} has MTU ${local?.[1] ?? '?'}, below ${target.size}: full-size container packets cannot be sent` };
  }
  if (small !== undefined && small.code === 0) {
    return { ...base, ok: false, error: `packets of ${target.size} bytes with DF set do not reach ${target.address} (small ones do): the path MTU is below ${target.size}; lower the container MTU or raise the underlay MTU` };
  }
  const last = small !== undefined ? `${small.stderr}\n${small.stdout}` : text;
  const why = last.split('\n').map((l) => l.trim()).find((l) => l !== '' && !/^PING |^---|packets transmitted|^$/.test(l));
  return { ...base, ok: false, error: `${target.address} does not answer ping on the underlay${why !== undefined ? ` (${why})` : ''}` };
}
