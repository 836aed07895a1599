import { MeshMalformedError, MeshVersionError, type MeshProtocolError } from '../../errors.js';
import { CLUSTER_ID_BYTES } from '../cluster-id.js';
import { isNickname, type PeerId } from '../peer-id.js';
import { HELLO_FLAG_EXPLICIT, HELLO_FLAG_FRESH, HELLO_MAGIC, Kind, MAX_HELLO_BYTES, MAX_HELLO_EXTENSIONS } from './constants.js';
import type { Hello } from './messages.js';
import { WireReader } from './reader.js';
import { WireWriter } from './writer.js';
import { asProtocolError } from './protocol-error.js';

/** Heartbeat intervals a peer may announce: 10 ms (tests) to one day. */
export const MIN_HEARTBEAT_MS = 10;
export const MAX_HEARTBEAT_MS = 86_400_000;

const NICKNAME_ANY = /^[\s\S]*$/;

/**
 * The hello frame. Its layout is frozen for every protocol version (a peer
 * must be able to read it before it knows which version it will speak);
 * new fields go into tagged extensions, which older peers skip.
 */
export function encodeHello(h: Hello): Buffer {
  const w = new WireWriter(128);
  w.u8(Kind.Hello).bytes(HELLO_MAGIC).u16(h.minVersion).u16(h.maxVersion).peerId(h.peer);
  if (h.cluster.length !== CLUSTER_ID_BYTES) throw new RangeError('cluster ID must be 16 bytes');
  w.bytes(h.cluster).u64(h.connSeq).u32(h.heartbeatMs).u8((h.explicit ? HELLO_FLAG_EXPLICIT : 0) | (h.fresh ? HELLO_FLAG_FRESH : 0)).str8(h.nickname).address(h.address);
  w.u16(h.extensions.size);
  for (const [tag, value] of h.extensions) w.u16(tag).u16(value.length).bytes(value);
  return w.finish(MAX_HELLO_BYTES);
}

function decodeHelloUnsafe(payload: Buffer): Hello {
  const r = new WireReader(payload);
  const kind = r.u8('kind');
  if (kind !== Kind.Hello) throw new MeshMalformedError(`expected a hello (kind 0x01) as first frame, got kind 0x${kind.toString(16).padStart(2, '0')}`);
  const magic = r.bytes(4, 'magic');
  if (!magic.equals(HELLO_MAGIC)) throw new MeshMalformedError('bad magic: not a weft peer');
  const minVersion = r.u16('minVersion');
  const maxVersion = r.u16('maxVersion');
  if (minVersion < 1 || maxVersion < minVersion) throw new MeshMalformedError(`bad version range ${minVersion}..${maxVersion}`);
  const peer: PeerId = r.peerId('peer');
  const cluster = new Uint8Array(r.bytes(CLUSTER_ID_BYTES, 'cluster'));
  const connSeq = r.u64('connSeq');
  const heartbeatMs = r.u32('heartbeatMs');
  if (heartbeatMs < MIN_HEARTBEAT_MS || heartbeatMs > MAX_HEARTBEAT_MS) throw new MeshMalformedError(`heartbeat interval ${heartbeatMs} ms out of range`);
  // Unknown flag bits are ignored: the hello layout is frozen, flags are how it grows cheaply.
  const flags = r.u8('flags');
  const explicit = (flags & HELLO_FLAG_EXPLICIT) !== 0;
  const fresh = (flags & HELLO_FLAG_FRESH) !== 0;
  const nickname = r.str8('nickname', NICKNAME_ANY);
  if (!isNickname(nickname)) throw new MeshMalformedError(`nickname ${JSON.stringify(nickname)} is not allowed`);
  const address = r.address('address');
  const count = r.u16('extension count');
  if (count > MAX_HELLO_EXTENSIONS) throw new MeshMalformedError(`${count} extensions exceeds ${MAX_HELLO_EXTENSIONS}`);
  const extensions = new Map<number, Uint8Array>();
  for (let i = 0; i < count; i++) {
    const tag = r.u16('extension tag');
    const len = r.u16('extension length');
    const value = new Uint8Array(r.bytes(len, 'extension value'));
    if (extensions.has(tag)) throw new MeshMalformedError(`extension tag ${tag} repeated`);
    extensions.set(tag, value);
  }
  r.end('hello');
  return { minVersion, maxVersion, peer, nickname, cluster, connSeq, heartbeatMs, explicit, fresh, address, extensions };
}

/** Decodes a hello payload; throws only MeshProtocolError subclasses. */
export function decodeHello(payload: Buffer): Hello {
  try {
    return decodeHelloUnsafe(payload);
  } catch (e) {
    throw asProtocolError(e);
  }
}

/**
 * The version both sides will speak: the highest one in both ranges. Both
 * ends compute it from the same two hellos, so no further round trip is
 * needed.
 */
export function negotiateVersion(ours: { min: number; max: number }, theirs: { min: number; max: number }): number {
  const hi = Math.min(ours.max, theirs.max);
  const lo = Math.max(ours.min, theirs.min);
  if (hi < lo) {
    const e: MeshProtocolError = new MeshVersionError(
      `no common protocol version: we speak ${ours.min}..${ours.max}, the peer speaks ${theirs.min}..${theirs.max}`,
      { hint: 'upgrade the older weft so that the version ranges overlap' },
    );
    throw e;
  }
  return hi;
}
