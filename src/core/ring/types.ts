/**
 * The IPAM ring: who owns which part of the cluster's --ipalloc-range.
 *
 * A ring is an immutable value. Every operation returns a new ring (or the
 * same object when nothing changed), and `merge` joins two rings. The state
 * is a join-semilattice (see docs/ring.md), so replicas that have seen the
 * same updates, in any order and any number of times, hold equal rings.
 *
 *  - `entries`: tokens sorted by `start`. A token owns the addresses from its
 *    start up to the next token's start (the last one up to the end of the
 *    range). The first token always sits at the start of the range, so every
 *    address falls in exactly one token. Tokens are never removed; each is a
 *    last-writer-wins register ordered by (version, owner, free).
 *  - `peers`: one record per peer id ever seen: a heartbeat counter (the
 *    lease) and, once retired, a tombstone naming the heir of its space.
 *  - `votes`: "I saw peer S stop at heartbeat h" observations, the quorum
 *    input for automatic reclaim.
 */
import type { Family } from '../ip/addr.js';
import type { Cidr } from '../ip/cidr.js';

/**
 * A peer's ring identity. It names one incarnation of a router: a peer that
 * was retired never comes back under the same id (the daemon derives a new
 * one, e.g. `name.2`). Compared by ordinal (UTF-16 code unit) order.
 */
export type PeerId = string;

export interface Entry {
  /** First address of the token (absolute value, within the range). */
  readonly start: bigint;
  /** Owner as stored; the effective owner follows retirements (resolve.ts). */
  readonly owner: PeerId;
  /** Bumped by every write of this token. */
  readonly version: number;
  /** Advisory: free addresses the owner reported for this token's span. */
  readonly free: bigint;
}

export type RetireReason = 'reclaim' | 'rmpeer' | 'reset';

/** Tombstone of a peer: its addresses now belong to `heir` (and on, if the heir is retired too). */
export interface Retirement {
  readonly heir: PeerId;
  /** The retired peer's heartbeat when it was retired (diagnostics: a higher heartbeat later means it was alive in another partition). */
  readonly atHeartbeat: number;
  /** The peer that executed the retirement. */
  readonly by: PeerId;
  readonly reason: RetireReason;
}

export interface PeerRecord {
  /** Lease counter, incremented only by the peer itself. Not a timestamp: clocks never cross hosts. */
  readonly heartbeat: number;
  readonly retired?: Retirement;
}

/** How the ring came to be; rings of different genesis merge by a deterministic precedence. */
export interface Genesis {
  /** e.g. `seed:a,b,c` or `consensus:3.peer-a`. */
  readonly id: string;
  /** Number of peers the range was first split among. */
  readonly founders: number;
}

export interface Ring {
  readonly range: Cidr;
  readonly family: Family;
  /** First and last address of the range (inclusive). */
  readonly first: bigint;
  readonly last: bigint;
  readonly genesis: Genesis;
  readonly entries: readonly Entry[];
  readonly peers: ReadonlyMap<PeerId, PeerRecord>;
  /** suspect → voter → the suspect's heartbeat the voter saw stall. Only current votes are kept. */
  readonly votes: ReadonlyMap<PeerId, ReadonlyMap<PeerId, number>>;
}

/** An owned span, inclusive. */
export interface Segment {
  readonly first: bigint;
  readonly last: bigint;
  readonly owner: PeerId;
  /** True when the owner is a retired peer whose heir chain loops (only after conflicting manual operations); see adoptOrphans. */
  readonly orphaned: boolean;
}

export const PEER_ID_MAX = 128;
const PEER_ID_RE = /^[\x21-\x7e]+$/;

export function isValidPeerId(id: unknown): id is PeerId {
  return typeof id === 'string' && id.length >= 1 && id.length <= PEER_ID_MAX && PEER_ID_RE.test(id);
}

export function comparePeerIds(a: PeerId, b: PeerId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
