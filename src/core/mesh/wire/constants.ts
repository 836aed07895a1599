/**
 * Numbers fixed by the wire schema (docs/mesh.md). Changing any of them is a
 * protocol change: add a new version instead.
 */

/** Protocol versions this build speaks; the handshake picks the highest common one. */
export const PROTOCOL_MIN_VERSION = 1;
export const PROTOCOL_MAX_VERSION = 1;

/** "WEFT": the first bytes of every hello, so a stray client is refused at once. */
export const HELLO_MAGIC = Uint8Array.of(0x57, 0x45, 0x46, 0x54);

/** Hello flag: the dialer was told to connect here by an operator (launch argument, `weft connect`). */
export const HELLO_FLAG_EXPLICIT = 0x01;
/** Hello flag: the sender has not been connected to anyone since it started, so it holds no replicated state yet. */
export const HELLO_FLAG_FRESH = 0x02;

/** Bytes of the big-endian length that precedes every frame. */
export const FRAME_HEADER_BYTES = 4;
/** Default maximum payload of one frame. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
/**
 * Maximum payload of the first frame (the hello). Small, because it is read
 * before we know the other side speaks weft at all.
 */
export const MAX_HELLO_BYTES = 4096;

/** Message kinds: the first payload byte of every frame. */
export const Kind = {
  Hello: 0x01,
  Heartbeat: 0x02,
  Close: 0x03,
  Accept: 0x04,
  Topology: 0x10,
  TopologyRequest: 0x11,
  Gossip: 0x20,
  GossipBroadcast: 0x21,
  GossipUnicast: 0x22,
} as const;
export type KindByte = (typeof Kind)[keyof typeof Kind];

/**
 * Why a connection is closed; sent in CLOSE and used to decide whether and
 * when to dial again (conn/connection-maker.ts). Receivers must accept codes
 * they do not know (treat them as Normal).
 */
export const CloseCode = {
  Normal: 1,
  Duplicate: 2,
  Self: 3,
  ClusterMismatch: 4,
  VersionMismatch: 5,
  NameCollision: 6,
  ConnectionLimit: 7,
  ProtocolError: 8,
  HeartbeatTimeout: 9,
  HandshakeTimeout: 10,
  Forgotten: 11,
} as const;
export type CloseCodeNumber = (typeof CloseCode)[keyof typeof CloseCode];

export function closeCodeName(code: number): string {
  for (const [k, v] of Object.entries(CloseCode)) if (v === code) return k;
  return `Unknown(${code})`;
}

/** Hop limit for relayed unicast and broadcast copies; stops loops while routes disagree. */
export const DEFAULT_TTL = 64;

/** Gossip channel names: short, lowercase, printable. */
export const CHANNEL_RE = /^[a-z][a-z0-9._-]{0,63}$/;

/** Upper bound of a CLOSE reason, in UTF-8 bytes. */
export const MAX_REASON_BYTES = 1024;
/** Upper bound of hello extensions. */
export const MAX_HELLO_EXTENSIONS = 32;
