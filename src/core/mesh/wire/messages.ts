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
  /**
   * The dialer is connecting because an operator named this address (not
   * discovery). Such a connection is accepted beyond the connection limit
   * (up to twice it), so a new router can always join through the peers it
   * was launched with, however full they are.
   */
  readonly explicit: boolean;
  /**
   * The sender has had no established connection since it started (so it
   * holds nothing replicated yet): the other side sends it full state even
   * if it believes the two are already in step.
   */
  readonly fresh: boolean;
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

/**
 * A new version of a peer's entry expressed against the version before it:
 * what the owner broadcasts when its connections change, so a router with
 * a hundred connections does not resend all of them for one that changed.
 * A receiver holding exactly `baseVersion` applies it; any other receiver
 * asks for the full entry.
 */
export interface TopologyDelta {
  readonly peer: PeerId;
  readonly version: number;
  readonly baseVersion: number;
  /** Strictly ascending, none also in `removed`. */
  readonly added: readonly PeerId[];
  readonly removed: readonly PeerId[];
}

export type TopologyItem = TopologyEntry | TopologyDelta;

export function isTopologyDelta(i: TopologyItem): i is TopologyDelta {
  return 'baseVersion' in i;
}

export interface DigestItem {
  readonly peer: PeerId;
  readonly version: number;
}

export type Message =
  /** "I accept this connection": the first frame after the hellos, unless CLOSE. */
  | { readonly kind: 'accept' }
  | { readonly kind: 'heartbeat' }
  | { readonly kind: 'close'; readonly code: number; readonly reason: string }
  | { readonly kind: 'topology'; readonly broadcast: BroadcastEnvelope | undefined; readonly entries: readonly TopologyItem[] }
  | {
    readonly kind: 'topology-request';
    /** Ask back if the answer shows the requester knows something newer. */
    readonly wantReverse: boolean;
    /**
     * Only the listed peers are asked about (version 0 = "I have nothing"),
     * instead of "this is everything I know, send me the rest".
     */
    readonly partial: boolean;
    readonly digest: readonly DigestItem[];
  }
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
