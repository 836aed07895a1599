import { MeshMalformedError, MeshTruncatedError, MeshVersionError } from '../../errors.js';
import { comparePeerIds, isNickname } from '../peer-id.js';
import { CHANNEL_RE, Kind, MAX_REASON_BYTES } from './constants.js';
import { isTopologyDelta, type BroadcastEnvelope, type DigestItem, type Message, type TopologyDelta, type TopologyEntry, type TopologyItem } from './messages.js';
import { asProtocolError } from './protocol-error.js';
import { WireReader } from './reader.js';
import { WireWriter } from './writer.js';

/**
 * Protocol version 1: every message after the hello. One kind byte, then
 * fixed-order binary fields (docs/mesh.md has the table). Binary rather than
 * JSON because gossip payloads are opaque bytes (JSON would base64 them),
 * 64-bit IDs and versions do not survive JSON numbers, and a fixed layout
 * leaves nothing to interpret: no duplicate keys, no unknown fields, no
 * escapes; a reader in any language is a page of code.
 */

/** Nicknames are checked with isNickname after decoding, so the reader accepts any UTF-8 here. */
const NICK_ANY = /^[\s\S]*$/;

// ---- encoding ----

function writeEnvelope(w: WireWriter, e: BroadcastEnvelope): void {
  w.peerId(e.origin).peerId(e.dst).peerId(e.spanFirst).peerId(e.spanLast).u8(e.ttl);
}

/** Encoded size of one topology item, to split big updates across frames without trial encoding. */
export function topologyItemSize(e: TopologyItem): number {
  if (isTopologyDelta(e)) return 8 + 8 + 1 + 8 + 2 + 8 * e.added.length + 2 + 8 * e.removed.length;
  const addr = e.address ? 1 + (e.address.ip.family === 4 ? 4 : 16) + 2 : 1;
  return 8 + 8 + 1 + 1 + Buffer.byteLength(e.nickname, 'utf8') + addr + 2 + 8 * e.connections.length;
}

const FORM_FULL = 0;
const FORM_DELTA = 1;

function writeItem(w: WireWriter, e: TopologyItem): void {
  w.peerId(e.peer).u64(e.version);
  if (isTopologyDelta(e)) {
    w.u8(FORM_DELTA).u64(e.baseVersion).u16(e.added.length);
    for (const c of e.added) w.peerId(c);
    w.u16(e.removed.length);
    for (const c of e.removed) w.peerId(c);
    return;
  }
  w.u8(FORM_FULL).str8(e.nickname).address(e.address).u16(e.connections.length);
  for (const c of e.connections) w.peerId(c);
}

/** Encodes one message as one frame (header included). Throws MeshFrameTooLargeError if it does not fit. */
export function encodeMessage(m: Message, maxFrameBytes: number): Buffer {
  switch (m.kind) {
    case 'accept':
      return new WireWriter(1).u8(Kind.Accept).finish(maxFrameBytes);
    case 'heartbeat':
      return new WireWriter(1).u8(Kind.Heartbeat).finish(maxFrameBytes);
    case 'close': {
      let reason = m.reason;
      while (Buffer.byteLength(reason, 'utf8') > MAX_REASON_BYTES) reason = reason.slice(0, Math.floor(reason.length * 0.9));
      return new WireWriter(8 + reason.length).u8(Kind.Close).u16(m.code).str16(reason).finish(maxFrameBytes);
    }
    case 'topology': {
      const w = new WireWriter(64 + m.entries.reduce((n, e) => n + topologyItemSize(e), 0));
      w.u8(Kind.Topology).u8(m.broadcast ? 1 : 0);
      if (m.broadcast) writeEnvelope(w, m.broadcast);
      w.u16(m.entries.length);
      for (const e of m.entries) writeItem(w, e);
      return w.finish(maxFrameBytes);
    }
    case 'topology-request': {
      const w = new WireWriter(8 + 16 * m.digest.length);
      w.u8(Kind.TopologyRequest).u8((m.wantReverse ? REQUEST_WANT_REVERSE : 0) | (m.partial ? REQUEST_PARTIAL : 0)).u32(m.digest.length);
      for (const d of m.digest) w.peerId(d.peer).u64(d.version);
      return w.finish(maxFrameBytes);
    }
    case 'gossip':
      return new WireWriter(2 + m.channel.length + m.payload.length).u8(Kind.Gossip).str8(m.channel).bytes(m.payload).finish(maxFrameBytes);
    case 'gossip-broadcast': {
      const w = new WireWriter(40 + m.channel.length + m.payload.length).u8(Kind.GossipBroadcast);
      writeEnvelope(w, m.envelope);
      return w.str8(m.channel).bytes(m.payload).finish(maxFrameBytes);
    }
    case 'gossip-unicast':
      return new WireWriter(20 + m.channel.length + m.payload.length)
        .u8(Kind.GossipUnicast).peerId(m.src).peerId(m.dst).u8(m.ttl).str8(m.channel).bytes(m.payload)
        .finish(maxFrameBytes);
  }
}

const REQUEST_WANT_REVERSE = 0x01;
const REQUEST_PARTIAL = 0x02;

/** Fixed bytes of a topology frame besides the entries (kind, flags, envelope, count). */
const TOPOLOGY_OVERHEAD = 1 + 1 + 33 + 2;

/**
 * Encodes a topology update as as many frames as needed to stay under the
 * frame limit; every frame is a complete message that can be applied alone.
 */
export function encodeTopologyFrames(broadcast: BroadcastEnvelope | undefined, entries: readonly TopologyItem[], maxFrameBytes: number): Buffer[] {
  const frames: Buffer[] = [];
  let batch: TopologyItem[] = [];
  let size = TOPOLOGY_OVERHEAD;
  for (const e of entries) {
    const s = topologyItemSize(e);
    if (batch.length > 0 && (size + s > maxFrameBytes || batch.length === 0xffff)) {
      frames.push(encodeMessage({ kind: 'topology', broadcast, entries: batch }, maxFrameBytes));
      batch = [];
      size = TOPOLOGY_OVERHEAD;
    }
    batch.push(e);
    size += s;
  }
  if (batch.length > 0) frames.push(encodeMessage({ kind: 'topology', broadcast, entries: batch }, maxFrameBytes));
  return frames;
}

// ---- decoding ----

function readTtl(r: WireReader): number {
  const ttl = r.u8('ttl');
  if (ttl === 0) throw new MeshMalformedError('ttl 0: a copy with no hops left must not be sent');
  return ttl;
}

function readEnvelope(r: WireReader): BroadcastEnvelope {
  const origin = r.peerId('origin');
  const dst = r.peerId('dst');
  const spanFirst = r.peerId('spanFirst');
  const spanLast = r.peerId('spanLast');
  return { origin, dst, spanFirst, spanLast, ttl: readTtl(r) };
}

/** A strictly ascending list of peer IDs, none equal to `owner`. */
function readPeerList(r: WireReader, owner: string, what: string): string[] {
  const n = r.u16(`${what} count`);
  if (n * 8 > r.remaining) throw truncatedCount(`${what} count`, n);
  const list = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const c = r.peerId(what);
    if (c === owner) throw new MeshMalformedError(`peer ${owner} lists a connection to itself`);
    if (i > 0 && comparePeerIds(list[i - 1]!, c) >= 0) throw new MeshMalformedError(`${what} must be strictly ascending`);
    list[i] = c;
  }
  return list;
}

function readItem(r: WireReader): TopologyItem {
  const peer = r.peerId('entry peer');
  const version = r.u64('entry version');
  if (version === 0) throw new MeshMalformedError('entry version 0');
  const form = r.u8('entry form');
  if (form === FORM_DELTA) {
    const baseVersion = r.u64('delta base version');
    if (baseVersion === 0 || baseVersion >= version) throw new MeshMalformedError(`delta base version ${baseVersion} is not below ${version}`);
    const added = readPeerList(r, peer, 'added connection');
    const removed = readPeerList(r, peer, 'removed connection');
    const gone = new Set(removed);
    if (added.some((a) => gone.has(a))) throw new MeshMalformedError('a connection is both added and removed');
    const d: TopologyDelta = { peer, version, baseVersion, added, removed };
    return d;
  }
  if (form !== FORM_FULL) throw new MeshMalformedError(`unknown entry form ${form}`);
  const nickname = r.str8('entry nickname', NICK_ANY);
  if (!isNickname(nickname)) throw new MeshMalformedError(`entry nickname ${JSON.stringify(nickname)} is not allowed`);
  const address = r.address('entry address');
  const connections = readPeerList(r, peer, 'connection');
  const e: TopologyEntry = { peer, version, nickname, address, connections };
  return e;
}

/** Count fields are checked against the bytes really present before anything is allocated for them. */
function truncatedCount(what: string, n: number): MeshTruncatedError {
  return new MeshTruncatedError(`${what} ${n} promises more items than the frame holds`);
}

function readChannel(r: WireReader): string {
  return r.str8('channel', CHANNEL_RE);
}

function decodeV1(payload: Buffer): Message {
  const r = new WireReader(payload);
  const kind = r.u8('kind');
  let m: Message;
  switch (kind) {
    case Kind.Accept:
      m = { kind: 'accept' };
      break;
    case Kind.Heartbeat:
      m = { kind: 'heartbeat' };
      break;
    case Kind.Close: {
      const code = r.u16('close code');
      m = { kind: 'close', code, reason: r.str16('close reason', MAX_REASON_BYTES) };
      break;
    }
    case Kind.Topology: {
      const flags = r.u8('topology flags');
      if (flags > 1) throw new MeshMalformedError(`unknown topology flags 0x${flags.toString(16)}`);
      const broadcast = flags === 1 ? readEnvelope(r) : undefined;
      const n = r.u16('entry count');
      // 21 bytes is the smallest possible item.
      if (n * 21 > r.remaining) throw truncatedCount('entry count', n);
      const entries: TopologyItem[] = [];
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        const e = readItem(r);
        if (seen.has(e.peer)) throw new MeshMalformedError(`peer ${e.peer} appears twice in one update`);
        seen.add(e.peer);
        entries.push(e);
      }
      m = { kind: 'topology', broadcast, entries };
      break;
    }
    case Kind.TopologyRequest: {
      const flags = r.u8('request flags');
      if ((flags & ~(REQUEST_WANT_REVERSE | REQUEST_PARTIAL)) !== 0) throw new MeshMalformedError(`unknown request flags 0x${flags.toString(16)}`);
      const n = r.u32('digest count');
      if (n * 16 > r.remaining) throw truncatedCount('digest count', n);
      const digest: DigestItem[] = [];
      for (let i = 0; i < n; i++) {
        const peer = r.peerId('digest peer');
        digest.push({ peer, version: r.u64('digest version') });
      }
      m = { kind: 'topology-request', wantReverse: (flags & REQUEST_WANT_REVERSE) !== 0, partial: (flags & REQUEST_PARTIAL) !== 0, digest };
      break;
    }
    case Kind.Gossip: {
      const channel = readChannel(r);
      m = { kind: 'gossip', channel, payload: r.rest() };
      break;
    }
    case Kind.GossipBroadcast: {
      const envelope = readEnvelope(r);
      const channel = readChannel(r);
      m = { kind: 'gossip-broadcast', envelope, channel, payload: r.rest() };
      break;
    }
    case Kind.GossipUnicast: {
      const src = r.peerId('src');
      const dst = r.peerId('dst');
      const ttl = readTtl(r);
      const channel = readChannel(r);
      m = { kind: 'gossip-unicast', src, dst, ttl, channel, payload: r.rest() };
      break;
    }
    case Kind.Hello:
      throw new MeshMalformedError('second hello on an established connection');
    default:
      throw new MeshMalformedError(`unknown message kind 0x${kind.toString(16).padStart(2, '0')}`);
  }
  r.end(m.kind);
  return m;
}

/**
 * Decodes one frame payload in the negotiated protocol version. Throws only
 * MeshProtocolError subclasses (MeshTruncatedError, MeshMalformedError,
 * MeshVersionError).
 */
export function decodeMessage(payload: Buffer, version: number): Message {
  if (version !== 1) throw new MeshVersionError(`protocol version ${version} is not implemented`);
  try {
    return decodeV1(payload);
  } catch (e) {
    throw asProtocolError(e);
  }
}
