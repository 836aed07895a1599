import type { BackoffConfig } from '../config.js';
import type { PeerId } from '../peer-id.js';
import { CloseCode } from '../wire/constants.js';
import { backoffDelay } from './backoff.js';

/** explicit: from `weft launch PEER…`, `weft connect`, or remembered with `--resume`; discovered: learnt from topology. */
export type TargetKind = 'explicit' | 'discovered';

export type TargetState =
  /** Waiting for `nextAttemptAt`. */
  | 'waiting'
  /** A dial or handshake is in progress. */
  | 'connecting'
  /** A connection made from this target is established. */
  | 'connected'
  /** Its peer is connected through another connection; dialed again once that one ends. */
  | 'satisfied'
  /** The address turned out to be ourselves; never dialed again. */
  | 'self';

export interface Target {
  readonly address: string;
  kind: TargetKind;
  state: TargetState;
  /** Consecutive failures; drives the backoff. */
  failures: number;
  nextAttemptAt: number;
  /** The peer behind the address, once known (from topology or a handshake). */
  peer: PeerId | undefined;
  connectedAt: number | undefined;
  lastError: string | undefined;
}

/**
 * Which addresses to dial and when (Weave's "connection maker"), as pure
 * bookkeeping. The router asks `due(now)` for addresses to dial and reports
 * what happened; retries follow a capped exponential backoff with jitter.
 * A target whose peer is already connected through another connection (it
 * dialed us, or it has two addresses) is not dialed: that would only create
 * a duplicate the tie-break throws away.
 */
export class ConnectionMaker {
  private readonly targets = new Map<string, Target>();
  /** nextDeadline is asked after every input; recomputed only after something changed. */
  private cachedNext: number | undefined;
  private dirty = true;

  constructor(private readonly cfg: BackoffConfig, private readonly random: () => number) {}

  get(address: string): Target | undefined {
    return this.targets.get(address);
  }

  list(): Target[] {
    return [...this.targets.values()];
  }

  /** Adds (or promotes to explicit) a target, to be dialed at once. */
  addExplicit(address: string, now: number): void {
    this.dirty = true;
    const t = this.targets.get(address);
    if (t) {
      t.kind = 'explicit';
      if (t.state === 'waiting') t.nextAttemptAt = Math.min(t.nextAttemptAt, now);
      return;
    }
    this.targets.set(address, fresh(address, 'explicit', undefined, now));
  }

  addDiscovered(address: string, peer: PeerId, now: number): void {
    const t = this.targets.get(address);
    if (t) {
      if (t.peer === undefined) t.peer = peer;
      return;
    }
    this.dirty = true;
    this.targets.set(address, fresh(address, 'discovered', peer, now));
  }

  /** `weft forget`, or a discovered peer that left the topology. */
  remove(address: string): boolean {
    this.dirty = true;
    return this.targets.delete(address);
  }

  /** Drops discovered targets of peers no longer in the topology. */
  pruneDiscovered(known: (peer: PeerId) => boolean): void {
    this.dirty = true;
    for (const [a, t] of this.targets) if (t.kind === 'discovered' && t.peer !== undefined && !known(t.peer)) this.targets.delete(a);
  }

  /**
   * Addresses to dial now; they move to `connecting`. Discovered targets are
   * only dialed while `mayDialDiscovered` (below the connection limit).
   */
  due(now: number, isConnected: (peer: PeerId) => boolean, mayDialDiscovered: () => boolean): string[] {
    const out: string[] = [];
    if (this.nextDeadline() === undefined || this.nextDeadline()! > now) return out;
    this.dirty = true;
    for (const t of this.targets.values()) {
      if (t.state !== 'waiting' || t.nextAttemptAt > now) continue;
      if (t.peer !== undefined && isConnected(t.peer)) {
        t.state = 'satisfied';
        continue;
      }
      if (t.kind === 'discovered' && !mayDialDiscovered()) {
        // At the limit: look again later rather than spin.
        t.nextAttemptAt = now + backoffDelay(Math.max(1, t.failures), this.cfg, this.random);
        continue;
      }
      t.state = 'connecting';
      out.push(t.address);
    }
    return out;
  }

  /** The dial or the handshake failed before the connection was established. */
  failed(address: string, now: number, reason: string, code?: number): void {
    this.dirty = true;
    const t = this.targets.get(address);
    if (!t) return;
    if (code === CloseCode.Self) {
      t.state = 'self';
      t.lastError = reason;
      return;
    }
    t.failures++;
    t.lastError = reason;
    t.state = 'waiting';
    t.nextAttemptAt = now + backoffDelay(t.failures, this.cfg, this.random);
  }

  connected(address: string, peer: PeerId, now: number): void {
    this.dirty = true;
    const t = this.targets.get(address);
    if (!t) return;
    t.state = 'connected';
    t.peer = peer;
    t.connectedAt = now;
    t.lastError = undefined;
  }

  /**
   * An established connection from this target ended. A connection that
   * stayed up for `resetAfterMs` starts the schedule over; one that keeps
   * dying right after the handshake keeps backing off.
   */
  disconnected(address: string, now: number, reason: string): void {
    this.dirty = true;
    const t = this.targets.get(address);
    if (!t || t.state !== 'connected') return;
    if (t.connectedAt !== undefined && now - t.connectedAt >= this.cfg.resetAfterMs) t.failures = 0;
    t.failures++;
    t.lastError = reason;
    t.state = 'waiting';
    t.connectedAt = undefined;
    t.nextAttemptAt = now + backoffDelay(t.failures, this.cfg, this.random);
  }

  /** The last connection to `peer` ended: targets that were skipped because of it become due. */
  peerDisconnected(peer: PeerId, now: number): void {
    this.dirty = true;
    for (const t of this.targets.values()) {
      if (t.state === 'satisfied' && t.peer === peer) {
        t.state = 'waiting';
        t.nextAttemptAt = Math.max(t.nextAttemptAt, now);
      }
    }
  }

  nextDeadline(): number | undefined {
    if (!this.dirty) return this.cachedNext;
    let next: number | undefined;
    for (const t of this.targets.values()) {
      if (t.state === 'waiting' && (next === undefined || t.nextAttemptAt < next)) next = t.nextAttemptAt;
    }
    this.cachedNext = next;
    this.dirty = false;
    return next;
  }
}

function fresh(address: string, kind: TargetKind, peer: PeerId | undefined, now: number): Target {
  return { address, kind, state: 'waiting', failures: 0, nextAttemptAt: now, peer, connectedAt: undefined, lastError: undefined };
}
