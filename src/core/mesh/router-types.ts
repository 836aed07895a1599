import type { PeerAddress } from './address.js';
import type { MeshConfigInput } from './config.js';
import type { TargetKind, TargetState } from './conn/connection-maker.js';
import type { PeerId } from './peer-id.js';

/**
 * The ports between the pure router and whatever carries its bytes: the
 * TCP adapter in the daemon, or the in-memory network of the simulator.
 */

/** One transport connection, as the router writes to it. */
export interface ConnHandle {
  /** Writes one complete frame (length header included). Must not call back into the router synchronously. */
  send(frame: Uint8Array): void;
  /** Closes the transport after pending writes. The transport then reports `closed` (or may not; the router does not wait). */
  close(): void;
}

/** What the transport calls for one connection it reported with `connectionOpened`. */
export interface ConnSink {
  /** Bytes in arrival order, in any chunking. */
  data(chunk: Uint8Array): void;
  /** End of stream, reset or error. Idempotent. */
  closed(reason?: string): void;
}

/** Everything the router needs from its environment, injected so it stays pure and replayable. */
export interface MeshHost {
  /** Milliseconds; wall-clock in the daemon, virtual in the simulator. */
  now(): number;
  /** Uniform in [0, 1): jitter and neighbour choice. */
  random(): number;
  /**
   * Start a TCP connection to `address` (canonical `ip:port`). Report the
   * outcome later with `router.connectionOpened(handle, {outbound: true,
   * address})` or `router.dialFailed(address, reason)`, never synchronously.
   */
  dial(address: string): void;
  log?(level: 'debug' | 'info' | 'warn', message: string): void;
}

export type MeshEvent =
  | { readonly type: 'connection-up'; readonly peer: PeerId; readonly nickname: string; readonly outbound: boolean; readonly address: string | undefined }
  | { readonly type: 'connection-down'; readonly peer: PeerId; readonly code: number; readonly reason: string }
  | { readonly type: 'peer-reachable'; readonly peer: PeerId }
  | { readonly type: 'peer-unreachable'; readonly peer: PeerId }
  | { readonly type: 'peer-removed'; readonly peer: PeerId };

export interface RouterOptions {
  readonly peer: PeerId;
  readonly nickname: string;
  /** clusterFingerprint(ipallocRange, clusterName). */
  readonly cluster: Uint8Array;
  /** Where peers should dial us; published in the hello and our topology entry, for discovery. */
  readonly advertise?: PeerAddress;
  readonly config?: MeshConfigInput;
  /** Addresses to stay connected to (`weft launch PEER…`, remembered peers with `--resume`). */
  readonly peers?: readonly string[];
  /** Versions to offer; only tests of version negotiation change these. */
  readonly protocolVersions?: { readonly min: number; readonly max: number };
  readonly onEvent?: (e: MeshEvent) => void;
}

export interface MeshStats {
  framesSent: number;
  bytesSent: number;
  framesReceived: number;
  bytesReceived: number;
  /** Copies dropped for want of a route or of hops (ttl). */
  dropped: number;
  /** Connections closed because the peer broke the protocol. */
  protocolErrors: number;
  /** Gossip payloads a channel could not decode. */
  badPayloads: number;
}

export interface ConnectionStatus {
  readonly peer: PeerId | undefined;
  readonly nickname: string | undefined;
  readonly address: string | undefined;
  readonly outbound: boolean;
  readonly state: 'handshake' | 'established' | 'closed';
  readonly protocolVersion: number | undefined;
  readonly establishedAt: number | undefined;
}

export interface PeerStatus {
  readonly peer: PeerId;
  readonly nickname: string;
  readonly address: string | undefined;
  readonly version: number;
  readonly connections: readonly PeerId[];
  readonly reachable: boolean;
  /** Connected to us directly, or reached through `nextHop`. */
  readonly direct: boolean;
  readonly nextHop: PeerId | undefined;
  readonly unreachableSince: number | undefined;
}

export interface TargetStatus {
  readonly address: string;
  readonly kind: TargetKind;
  readonly state: TargetState;
  readonly failures: number;
  readonly nextAttemptAt: number;
  readonly peer: PeerId | undefined;
  readonly lastError: string | undefined;
}

export interface MeshStatus {
  readonly peer: PeerId;
  readonly nickname: string;
  readonly protocol: { readonly min: number; readonly max: number };
  readonly topologyVersion: number;
  readonly connections: readonly ConnectionStatus[];
  readonly peers: readonly PeerStatus[];
  readonly targets: readonly TargetStatus[];
  readonly stats: Readonly<MeshStats>;
}
