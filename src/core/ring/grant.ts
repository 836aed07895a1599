/**
 * Donation: the owner of a span hands it to another peer. Only the effective
 * owner of every address in the span may do it. The span gets tokens at both
 * ends (a new token is a copy of the one it splits, one version up), and
 * every token inside it is rewritten to the recipient, one version up.
 * Tokens are never deleted, so no replica can resurrect the old boundary.
 */
import { NotOwnerError, BadRequestError } from '../errors.js';
import { formatInterval } from '../ip/ranges.js';
import { assertInRange, entryIndexAt, entryLast, livePeer, withParts } from './model.js';
import { ownsAll } from './resolve.js';
import type { Entry, PeerId, PeerRecord, Ring } from './types.js';
import { isValidPeerId } from './types.js';

/** Makes sure a token starts at `at` (within range), splitting the token that holds it. */
export function withTokenAt(ring: Ring, entries: Entry[], at: bigint): void {
  if (at > ring.last) return;
  const i = entryIndexAt(entries, at);
  const e = entries[i]!;
  if (e.start === at) return;
  const size = entryLast(ring, entries, i) - e.start + 1n;
  const leftSize = at - e.start;
  // Split the advisory free count in proportion; it is re-reported by the owner anyway.
  const leftFree = size === 0n ? 0n : (e.free * leftSize) / size;
  entries[i] = { ...e, version: e.version + 1, free: leftFree };
  entries.splice(i + 1, 0, { start: at, owner: e.owner, version: e.version + 1, free: e.free - leftFree });
}

export function grant(ring: Ring, from: PeerId, to: PeerId, first: bigint, last: bigint): Ring {
  livePeer(ring, from, 'granting peer');
  if (!isValidPeerId(to)) throw new BadRequestError(`"${String(to)}" is not a valid peer id`);
  if (from === to) throw new BadRequestError('a peer cannot grant space to itself');
  const toRec = ring.peers.get(to);
  if (toRec?.retired) livePeer(ring, to, 'receiving peer');
  assertInRange(ring, first, last);
  if (!ownsAll(ring, from, first, last)) {
    throw new NotOwnerError(`${from} does not own all of ${formatInterval(ring.family, { first, last })}`);
  }
  const entries = [...ring.entries];
  withTokenAt(ring, entries, first);
  withTokenAt(ring, entries, last + 1n);
  for (let i = entryIndexAt(entries, first); i < entries.length && entries[i]!.start <= last; i++) {
    const e = entries[i]!;
    const span = entryLast(ring, entries, i) - e.start + 1n;
    entries[i] = { start: e.start, owner: to, version: e.version + 1, free: span };
  }
  let peers: ReadonlyMap<PeerId, PeerRecord> = ring.peers;
  if (!toRec) peers = new Map(ring.peers).set(to, { heartbeat: 0 });
  return withParts(ring, { entries, peers });
}
