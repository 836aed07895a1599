import { inCyclicSpan, nextPeerId, prevPeerId, type PeerId } from '../peer-id.js';

export interface BroadcastCopy {
  /** The peer this copy is for: the first member of its span. */
  readonly head: PeerId;
  readonly spanFirst: PeerId;
  readonly spanLast: PeerId;
}

/** About 2·log2(n) children per node, as in Weave's neighbour fan-out; at least 2. */
export function broadcastFanout(members: number): number {
  return Math.max(2, Math.ceil(2 * Math.log2(Math.max(2, members))));
}

/** The span an origin starts with: the whole ID circle except itself. */
export function originSpan(origin: PeerId): { first: PeerId; last: PeerId } {
  return { first: nextPeerId(origin), last: prevPeerId(origin) };
}

/**
 * Who a node forwards a broadcast copy to. The copy covers a cyclic span of
 * the peer-ID circle; the node takes the members it knows in the span
 * (except itself), cuts them into at most `fanout` consecutive groups of
 * near-equal size, and sends one copy to the first member of each group,
 * responsible for the span from that member to just before the next group.
 *
 * Spans only ever shrink and siblings' spans never overlap, so whatever the
 * nodes believe about membership, a broadcast cannot loop and no node gets
 * two copies of it; a node that a forwarder did not know about is skipped
 * and catches up through anti-entropy. With consistent views every member
 * gets exactly one copy, the tree has depth about log_fanout(n), and no node
 * sends more than `fanout` copies. (Weave instead computes a spanning tree
 * per source from the topology; ours needs no per-source computation and
 * keeps fan-out bounded on a full mesh, where a source's BFS tree would be
 * a star of n−1 copies.)
 *
 * `members` must be sorted ascending; it may include `self`.
 */
export function broadcastChildren(members: readonly PeerId[], self: PeerId, spanFirst: PeerId, spanLast: PeerId, fanout: number): BroadcastCopy[] {
  const inSpan = membersInSpan(members, self, spanFirst, spanLast);
  const j = inSpan.length;
  if (j === 0) return [];
  const groups = Math.min(Math.max(1, fanout), j);
  const base = Math.floor(j / groups);
  const extra = j % groups;
  const starts: number[] = [];
  let at = 0;
  for (let g = 0; g < groups; g++) {
    starts.push(at);
    at += base + (g < extra ? 1 : 0);
  }
  const out: BroadcastCopy[] = [];
  for (let g = 0; g < groups; g++) {
    const head = inSpan[starts[g]!]!;
    const nextHead = g + 1 < groups ? inSpan[starts[g + 1]!]! : undefined;
    out.push({ head, spanFirst: head, spanLast: nextHead === undefined ? spanLast : prevPeerId(nextHead) });
  }
  return out;
}

/** Members inside [first, last] (cyclic), excluding `self`, in cyclic order starting at `first`. */
export function membersInSpan(members: readonly PeerId[], self: PeerId, first: PeerId, last: PeerId): PeerId[] {
  const n = members.length;
  if (n === 0) return [];
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (members[mid]! < first) lo = mid + 1;
    else hi = mid;
  }
  const out: PeerId[] = [];
  for (let k = 0; k < n; k++) {
    const m = members[(lo + k) % n]!;
    if (!inCyclicSpan(m, first, last)) break;
    if (m !== self) out.push(m);
  }
  return out;
}
