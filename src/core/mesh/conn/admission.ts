import { sameClusterId } from '../cluster-id.js';
import type { PeerId } from '../peer-id.js';
import { CloseCode } from '../wire/constants.js';
import type { Hello } from '../wire/messages.js';

/** What identifies one of possibly several connections between the same two peers. */
export interface ConnKey {
  /** The peer that dialed. */
  readonly initiator: PeerId;
  /** The dialer's connection sequence number (from its hello). */
  readonly connSeq: number;
}

/**
 * Of two connections between the same pair of peers, the one both ends keep.
 * Both ends evaluate this on the same two (initiator, connSeq) pairs, so they
 * agree without talking: the connection dialed by the lower peer ID wins
 * (so a simultaneous dial in both directions settles on one), and of two
 * dialed by the same peer the newer wins (the dialer only dials again when
 * it believes the old one is dead, which the other end may not know yet).
 */
export function preferredConnection<T extends ConnKey>(a: T, b: T): T {
  if (a.initiator !== b.initiator) return a.initiator < b.initiator ? a : b;
  return b.connSeq > a.connSeq ? b : a;
}

export interface AdmissionInput {
  readonly self: { readonly peer: PeerId; readonly nickname: string; readonly cluster: Uint8Array };
  readonly remote: Hello;
  /** This connection: who dialed it and its sequence number. */
  readonly candidate: ConnKey;
  /** Established connections to the same remote peer (normally none or one). */
  readonly existing: readonly ConnKey[];
  /** The live (reachable) peer that currently uses a nickname, if any. */
  readonly nicknameOwner: (nickname: string) => PeerId | undefined;
  /** Established connections to peers other than the remote one. */
  readonly otherConnections: number;
  readonly connLimit: number;
  /** We dialed this connection (ConnectionMaker applied the limit when it decided to). */
  readonly candidateIsOurs: boolean;
}

export type AdmissionDecision =
  | { readonly accept: true; readonly replaces: readonly ConnKey[] }
  | { readonly accept: false; readonly code: number; readonly reason: string };

/**
 * Whether a connection whose hello has just arrived may become established.
 * Checked in this order: cluster, self, name collision, limit, duplicate.
 * The limit counts established connections; operator-requested dials from
 * the other side may use up to twice it (see Hello.explicit).
 *
 * Name collisions: the nickname is what operators type (`weft rmpeer NAME`,
 * `--ipalloc-init seed=NAME`), so a second peer with my nickname, or with the
 * nickname of a peer I can currently reach, is refused. A nickname held only
 * by an unreachable peer is not a collision: that is how a host reinstalled
 * with a fresh data directory (new ID, same hostname) rejoins; the stale
 * entry ages out (docs/mesh.md).
 */
export function admit(i: AdmissionInput): AdmissionDecision {
  const r = i.remote;
  if (!sameClusterId(r.cluster, i.self.cluster)) {
    return { accept: false, code: CloseCode.ClusterMismatch, reason: 'peer belongs to a different cluster (ipalloc range or cluster name differ)' };
  }
  if (r.peer === i.self.peer) return { accept: false, code: CloseCode.Self, reason: 'connection to self' };
  if (r.nickname === i.self.nickname) {
    return { accept: false, code: CloseCode.NameCollision, reason: `peer ${r.peer} uses our nickname ${r.nickname}` };
  }
  const owner = i.nicknameOwner(r.nickname);
  if (owner !== undefined && owner !== r.peer) {
    return { accept: false, code: CloseCode.NameCollision, reason: `nickname ${r.nickname} is already used by live peer ${owner}` };
  }
  // Replacing a connection does not add one. An operator-requested dial is
  // let in up to twice the limit: otherwise a router launched with peers
  // that are all full could never join. Our own dials were checked against
  // the limit when we decided to dial; twice the limit is the hard cap.
  const limit = r.explicit || i.candidateIsOurs ? 2 * i.connLimit : i.connLimit;
  if (i.existing.length === 0 && i.otherConnections >= limit) {
    return { accept: false, code: CloseCode.ConnectionLimit, reason: `connection limit ${i.connLimit} reached` };
  }
  let winner: ConnKey = i.candidate;
  for (const e of i.existing) winner = preferredConnection(e, winner);
  if (winner !== i.candidate) return { accept: false, code: CloseCode.Duplicate, reason: 'duplicate connection; keeping the other one' };
  return { accept: true, replaces: i.existing };
}
