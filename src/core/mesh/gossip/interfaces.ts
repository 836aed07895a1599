import type { PeerId } from '../peer-id.js';

/**
 * The contract between the router and the replicated state machines (IPAM
 * ring, subnets and reservations, endpoints, later DNS). Shaped after
 * weaveworks/mesh's GossipData / Gossip / Gossiper, with the sending and
 * receiving halves named for what they do.
 *
 * State must be a CRDT: merging is commutative, associative and
 * idempotent, because the router delivers gossip at least once, in any
 * order, over any path, and repeats it on a timer (anti-entropy).
 */
export interface GossipData<D> {
  /**
   * The data as one or more payloads, each small enough for one frame
   * (maxFrameBytes minus ~100 bytes of header). Payloads are opaque to the
   * router; the channel defines (and documents) their encoding.
   */
  encode(): Uint8Array[];
  /** Both pieces combined, without mutating either (the router uses it to coalesce pending sends). */
  merge(other: D): D;
}

/** What a state machine calls to send (mesh: `Gossip`). */
export interface GossipSender<D extends GossipData<D>> {
  /** To one peer, relayed hop by hop over the shortest path. False when no route to it is known now. */
  gossipUnicast(dst: PeerId, payload: Uint8Array): boolean;
  /** To every reachable peer, once each, along the broadcast tree. The usual way to publish a local change. */
  gossipBroadcast(update: D): void;
  /** To about 2·log2(n) random neighbours; those that learn something pass it on. */
  gossipNeighbourSubset(update: D): void;
}

/**
 * What the router calls on a state machine (mesh: `Gossiper`). Calls come
 * from the router's single thread of control, never concurrently. A payload
 * that does not decode should throw MeshMalformedError: the router drops
 * that message and logs it, and does not blame the neighbour (the payload
 * may have been relayed from elsewhere).
 */
export interface GossipReceiver<D extends GossipData<D>> {
  /**
   * The complete state, for periodic anti-entropy and for a neighbour that
   * has just connected; undefined when there is nothing to tell.
   */
  gossip(): D | undefined;
  /**
   * Merges gossip received from a neighbour and returns exactly what was
   * new to us, or undefined if nothing was. The router relays what is
   * returned to random neighbours; returning undefined for old news is what
   * makes an epidemic die out.
   */
  onGossip(payload: Uint8Array): D | undefined;
  /** Merges a broadcast from `src`. Nothing to return: the broadcast tree already reaches every peer. */
  onGossipBroadcast(src: PeerId, payload: Uint8Array): void;
  /** A unicast addressed to us. */
  onGossipUnicast(src: PeerId, payload: Uint8Array): void;
}

/** Something the router can register: a receiver that also accepts its sender later (two-step wiring). */
export interface GossipChannelState<D extends GossipData<D>> extends GossipReceiver<D> {
  setSender(sender: GossipSender<D>): void;
}
