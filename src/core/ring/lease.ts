/**
 * Local judgement of other peers' leases. Not part of the replicated state:
 * each peer measures, on its own monotonic clock, how long ago it saw each
 * peer's heartbeat counter advance. Only durations on one host's clock are
 * compared, so skew between hosts and wall-clock jumps (NTP steps, manual
 * date changes) cannot expire anyone. Feed it a monotonic `now`
 * (performance.now(), process.hrtime) — never Date.now().
 *
 * Two timestamps per peer:
 *  - `advancedAt`, for expiry: when the counter last moved, or when this
 *    tracker (re)started judging. After a gap in our own observations (the
 *    process was stopped, the host suspended, the event loop stalled) it is
 *    reset to now: we cannot tell who stopped while we were away, so nobody
 *    is considered expired until a full lease has passed again.
 *  - `confirmedAt`, for freshness and fencing: when we last actually saw the
 *    counter move. Unknown at start and after a gap, so that a peer resumed
 *    from a suspend does not count others as reachable (or as quorum voters)
 *    until it has heard from them again.
 */
import { InvalidConfigError } from '../errors.js';
import { totalSize } from './model.js';
import { ownedSize } from './resolve.js';
import type { PeerId, Ring } from './types.js';

export interface LeaseConfig {
  /** A peer whose heartbeat has not advanced for this long is expired (default in the daemon: 5 min). */
  readonly leaseTimeoutMs: number;
  /** Voters count towards a reclaim quorum only if confirmed within this window (default lease/2). */
  readonly freshMs?: number;
  /** A peer is at risk of being reclaimed when the peers it confirmed within this window own at most half of the range (default lease/2). */
  readonly fenceMs?: number;
  /** A jump of our own clock larger than this between two observations resets judgement (default lease/4). */
  readonly maxGapMs?: number;
}

interface Seen {
  heartbeat: number;
  advancedAt: number;
  confirmedAt: number | undefined;
}

export interface Reachability {
  /** Address space owned by me and by the peers confirmed within fenceMs. */
  readonly reachable: bigint;
  readonly total: bigint;
  /** reachable ≤ total/2: the other side may hold a quorum and reclaim my space. */
  readonly atRisk: boolean;
}

export class LeaseTracker {
  readonly leaseTimeoutMs: number;
  readonly freshMs: number;
  readonly fenceMs: number;
  readonly maxGapMs: number;
  private readonly seen = new Map<PeerId, Seen>();
  private lastNow: number;
  /** The ring last taken in: the same (immutable) ring again holds no new heartbeat. */
  private lastRing: Ring | undefined;

  constructor(cfg: LeaseConfig, now: number) {
    const ok = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0;
    if (!ok(cfg.leaseTimeoutMs)) throw new InvalidConfigError('leaseTimeoutMs must be a positive number');
    this.leaseTimeoutMs = cfg.leaseTimeoutMs;
    this.freshMs = cfg.freshMs ?? cfg.leaseTimeoutMs / 2;
    this.fenceMs = cfg.fenceMs ?? cfg.leaseTimeoutMs / 2;
    this.maxGapMs = cfg.maxGapMs ?? cfg.leaseTimeoutMs / 4;
    for (const [k, v] of [['freshMs', this.freshMs], ['fenceMs', this.fenceMs], ['maxGapMs', this.maxGapMs]] as const) {
      if (!ok(v)) throw new InvalidConfigError(`${k} must be a positive number`);
    }
    if (this.freshMs >= this.leaseTimeoutMs || this.fenceMs >= this.leaseTimeoutMs) {
      throw new InvalidConfigError('freshMs and fenceMs must be shorter than leaseTimeoutMs', { hint: 'a peer must fence itself, and stale votes must stop counting, before a lease can expire' });
    }
    this.lastNow = now;
  }

  /** Takes in the heartbeats of a ring (call on every tick and after every merge). */
  observe(ring: Ring, now: number): void {
    this.clock(now);
    if (ring === this.lastRing) return;
    this.lastRing = ring;
    for (const [id, rec] of ring.peers) {
      if (rec.retired) { this.seen.delete(id); continue; }
      const s = this.seen.get(id);
      if (!s) { this.seen.set(id, { heartbeat: rec.heartbeat, advancedAt: now, confirmedAt: undefined }); continue; }
      if (rec.heartbeat > s.heartbeat) { s.heartbeat = rec.heartbeat; s.advancedAt = now; s.confirmedAt = now; }
    }
  }

  private clock(now: number): void {
    if (!Number.isFinite(now)) throw new InvalidConfigError('now must be a finite monotonic time in ms');
    if (now < this.lastNow || now - this.lastNow > this.maxGapMs) {
      for (const s of this.seen.values()) { s.advancedAt = now; s.confirmedAt = undefined; }
    }
    this.lastNow = now;
  }

  /** Live peers (other than me) whose lease expired by my clock: the ones to vote against. */
  expired(ring: Ring, me: PeerId, now: number): PeerId[] {
    this.observe(ring, now);
    const out: PeerId[] = [];
    for (const [id, s] of this.seen) if (id !== me && now - s.advancedAt >= this.leaseTimeoutMs && ring.peers.get(id)?.retired === undefined && ring.peers.has(id)) out.push(id);
    return out.sort();
  }

  /** Did I see this peer's heartbeat advance within freshMs? I am always fresh to myself. */
  isFresh(id: PeerId, me: PeerId, now: number): boolean {
    if (id === me) return true;
    const s = this.seen.get(id);
    return s?.confirmedAt !== undefined && now - s.confirmedAt < this.freshMs;
  }

  /** A predicate for reclaimCandidates/reclaimExpired. */
  freshness(me: PeerId, now: number): (id: PeerId) => boolean {
    return (id) => this.isFresh(id, me, now);
  }

  reachability(ring: Ring, me: PeerId, now: number): Reachability {
    this.observe(ring, now);
    let reachable = ownedSize(ring, me);
    for (const [id, s] of this.seen) {
      if (id !== me && s.confirmedAt !== undefined && now - s.confirmedAt < this.fenceMs) reachable += ownedSize(ring, id);
    }
    const total = totalSize(ring);
    return { reachable, total, atRisk: 2n * reachable <= total };
  }

  /** Milliseconds since the peer's heartbeat last advanced (or since judgement restarted); undefined when unknown. */
  silentFor(id: PeerId, now: number): number | undefined {
    const s = this.seen.get(id);
    return s ? now - s.advancedAt : undefined;
  }
}
