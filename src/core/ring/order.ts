/**
 * The total orders that make merge deterministic. Each "wins" function picks
 * one of two values by a rule that depends only on the two values, so the
 * choice is the same on every replica and in every merge order.
 */
import { type Entry, type Genesis, type PeerRecord, type Retirement, comparePeerIds } from './types.js';

/** > 0 when `a` wins over `b` for the same token: higher version, then lower owner id, then more free. */
export function compareEntries(a: Entry, b: Entry): number {
  if (a.version !== b.version) return a.version > b.version ? 1 : -1;
  if (a.owner !== b.owner) return -comparePeerIds(a.owner, b.owner);
  if (a.free !== b.free) return a.free > b.free ? 1 : -1;
  return 0;
}

export function entryWinner(a: Entry, b: Entry): Entry {
  return compareEntries(a, b) >= 0 ? a : b;
}

/** < 0 when `a` precedes: the lower heir id (the "lowest id takes it" rule), then lower heartbeat, executor, reason. */
export function compareRetirements(a: Retirement, b: Retirement): number {
  return comparePeerIds(a.heir, b.heir)
    || (a.atHeartbeat - b.atHeartbeat)
    || comparePeerIds(a.by, b.by)
    || comparePeerIds(a.reason, b.reason);
}

/** Join of two records of one peer: highest heartbeat; a tombstone is permanent; racing tombstones keep the preceding one. */
export function joinPeerRecords(a: PeerRecord, b: PeerRecord): PeerRecord {
  const heartbeat = Math.max(a.heartbeat, b.heartbeat);
  let retired = a.retired ?? b.retired;
  if (a.retired && b.retired) retired = compareRetirements(a.retired, b.retired) <= 0 ? a.retired : b.retired;
  if (heartbeat === a.heartbeat && retired === a.retired) return a;
  if (heartbeat === b.heartbeat && retired === b.retired) return b;
  return retired ? { heartbeat, retired } : { heartbeat };
}

export function samePeerRecord(a: PeerRecord, b: PeerRecord): boolean {
  if (a.heartbeat !== b.heartbeat) return false;
  if (!a.retired || !b.retired) return a.retired === b.retired;
  return compareRetirements(a.retired, b.retired) === 0;
}

/**
 * < 0 when ring genesis `a` takes precedence over `b`: more founders first
 * (a wider start-up agreement), then the lower id. The losing ring is
 * replaced wholesale; its peers learn which addresses they lost (diff.ts).
 */
export function compareGenesis(a: Genesis, b: Genesis): number {
  if (a.founders !== b.founders) return b.founders - a.founders;
  return comparePeerIds(a.id, b.id);
}
