import type { PeerAddress } from '../address.js';
import type { PeerId } from '../peer-id.js';

/**
 * The decoded form of every frame. These are wire types, not internal
 * objects: each field maps to one entry of the schema in docs/mesh.md.
 */

/** The first frame in each direction. Its layout is the same in every protocol version. */
export interface Hello {
  readonly minVersion: number;
  readonly maxVersion: number;
  readonly peer: PeerId;
  readonly nickname: string;
  /** Cluster fingerprint (cluster-id.ts), 16 bytes. */
  readonly cluster: Uint8Array;
  /**
   * Set by the dialing side from a clock-based counter, so that of two
   * connections it opened to the same peer both ends keep the newest.
   */
  readonly connSeq: number;
  /** How often this peer promises to send something; the other side derives its dead timer from it. */
  readonly heartbeatMs: number;
  /** Where this peer accepts connections, for discovery; undefined when it does not say. */
  readonly address: PeerAddress | undefined;
  /** Tagged extension fields; version 1 defines none and ignores unknown tags. */
  readonly extensions: ReadonlyMap<number, Uint8Array>;
}

/**
 * Routing header of one copy of a broadcast. The origin's peers are split
 * into spans of the ID circle; each copy is addressed to the first peer of
 * its span (`dst`), which delivers it and splits the rest of the span among
 * its own children (topology/broadcast-tree.ts).
 */
export interface BroadcastEnvelope {
  readonly origin: PeerId;
  readonly dst: PeerId;
  /** Inclusive cyclic interval of the peer-ID circle this copy is responsible for. */
  readonly spanFirst: PeerId;
  readonly spanLast: PeerId;
  readonly ttl: number;
}

/** One peer's view of its own established connections, as gossiped. */
export interface TopologyEntry {
  readonly peer: PeerId;
  /** Only the peer itself raises it; the highest version wins everywhere. */
  readonly version: number;
  readonly nickname: string;
  readonly address: PeerAddress | undefined;
  /** Peers it has an established connection to, strictly ascending. */
  readonly connections: readonly PeerId[];
}

export interface DigestItem {
  readonly peer: PeerId;
  readonly version: number;
}

export type Message =
  | { readonly kind: 'heartbeat' }
  | { readonly kind: 'close'; readonly code: number; readonly reason: string }
  | { readonly kind: 'topology'; readonly broadcast: BroadcastEnvelope | undefined; readonly entries: readonly TopologyEntry[] }
  | { readonly kind: 'topology-request'; readonly wantReverse: boolean; readonly digest: readonly DigestItem[] }
  | { readonly kind: 'gossip'; readonly channel: string; readonly payload: Uint8Array }
  | { readonly kind: 'gossip-broadcast'; readonly envelope: BroadcastEnvelope; readonly channel: string; readonly payload: Uint8Array }
  | {
    readonly kind: 'gossip-unicast';
    readonly src: PeerId;
    readonly dst: PeerId;
    readonly ttl: number;
    readonly channel: string;
    readonly payload: Uint8Array;
  };

export type MessageKind = Message['kind'];
