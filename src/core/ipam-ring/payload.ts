/**
 * What the IPAM ring engine puts on the mesh (docs/ring.md, "Gossip
 * payloads"): UTF-8 JSON envelopes, version 1, on two channels.
 *
 * Channel `ipam.ring` (broadcast, neighbour gossip, unicast):
 *
 *   {"v":1,"t":"ring","from":ID,"ring":RingWire}          the whole ring (anti-entropy, new genesis)
 *   {"v":1,"t":"delta","from":ID,"ring":RingWire}         a sub-ring: only what changed (delta.ts)
 *   {"v":1,"t":"ask","from":ID,"to":ID,"id":N,"g":GEN}     request for a block of space (unicast)
 *   {"v":1,"t":"claim","from":ID,"to":ID,"id":N,"g":GEN,"addr":HEX}   fixed-IP claim (unicast)
 *   {"v":1,"t":"grant","from":ID,"to":ID,"id":N,"first":HEX,"last":HEX,"ring":RingWire}   answer: granted, with the delta
 *   {"v":1,"t":"refuse","from":ID,"to":ID,"id":N,"reason":R}   answer: refused
 *   {"v":1,"t":"reset","from":ID,"to":ID,"id":N,"ring":RingWire}   "I retired; you are my heir" (unicast, with the delta)
 *   {"v":1,"t":"reset-ack","from":ID,"to":ID,"id":N}       the heir has it
 *
 * Channel `ipam.consensus`: {"v":1,"c":ConsensusWire}.
 *
 * ID is a ring peer id, N a request number (0..2^32-1), GEN the genesis id
 * of the sender's ring, HEX an offset from the start of the range (lower
 * case, no leading zeros, as in RingWire). Unknown keys, a missing key, a
 * bad type, or an invalid ring are MeshMalformedError: the router drops
 * the message and counts it. A payload must fit one mesh frame; encoding a
 * larger one throws RingTooLargeError (the caller reports it and does not
 * send).
 */
import { MeshMalformedError, RingInvalidError, RingTooLargeError } from '../errors.js';
import { exactKeys, isPlainObject, jsonPayload, parseJsonPayload } from '../mesh/gossip/json-payload.js';
import type { GossipData } from '../mesh/gossip/interfaces.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../mesh/wire/constants.js';
import {
  type ConsensusTable, type ConsensusWire, type PeerId, type Ring, type RingWire, compareGenesis, decodeConsensus, decodeRing, encodeConsensus, encodeRing, isValidPeerId,
  merge, mergeTables, sameRange,
} from '../ring/index.js';

export const RING_CHANNEL = 'ipam.ring';
export const CONSENSUS_CHANNEL = 'ipam.consensus';
export const PAYLOAD_VERSION = 1;
/** Default payload budget: one default mesh frame minus room for the message header. */
export const DEFAULT_MAX_PAYLOAD_BYTES = DEFAULT_MAX_FRAME_BYTES - 1024;

export type RefuseReason =
  /** The request named another ring id (the sender mapped it to the wrong router, or we rejoined). */
  | 'not-me'
  /** No ring yet, left, or in a genesis conflict. */
  | 'not-ready'
  /** The donor cannot be sure of its own space (it hears too little of the cluster). */
  | 'at-risk'
  /** The requester holds a ring of another genesis. */
  | 'genesis-mismatch'
  /** The requester's id is retired in the donor's ring. */
  | 'retired'
  /** Nothing the donor can spare. */
  | 'no-space'
  /** A claim for an address the receiver does not own (any more). */
  | 'not-owner'
  /** A claim for an address the owner has allocated. */
  | 'in-use';

const REASONS: readonly RefuseReason[] = ['not-me', 'not-ready', 'at-risk', 'genesis-mismatch', 'retired', 'no-space', 'not-owner', 'in-use'];

export type RingMessage =
  | { readonly t: 'ring' | 'delta'; readonly from: PeerId; readonly ring: Ring }
  | { readonly t: 'ask'; readonly from: PeerId; readonly to: PeerId; readonly id: number; readonly genesis: string }
  | { readonly t: 'claim'; readonly from: PeerId; readonly to: PeerId; readonly id: number; readonly genesis: string; readonly addr: bigint }
  | { readonly t: 'grant'; readonly from: PeerId; readonly to: PeerId; readonly id: number; readonly first: bigint; readonly last: bigint; readonly ring: Ring }
  | { readonly t: 'refuse'; readonly from: PeerId; readonly to: PeerId; readonly id: number; readonly reason: RefuseReason }
  | { readonly t: 'reset'; readonly from: PeerId; readonly to: PeerId; readonly id: number; readonly ring: Ring }
  | { readonly t: 'reset-ack'; readonly from: PeerId; readonly to: PeerId; readonly id: number };

const KEYS: Record<RingMessage['t'], readonly string[]> = {
  ring: ['v', 't', 'from', 'ring'],
  delta: ['v', 't', 'from', 'ring'],
  ask: ['v', 't', 'from', 'to', 'id', 'g'],
  claim: ['v', 't', 'from', 'to', 'id', 'g', 'addr'],
  grant: ['v', 't', 'from', 'to', 'id', 'first', 'last', 'ring'],
  refuse: ['v', 't', 'from', 'to', 'id', 'reason'],
  reset: ['v', 't', 'from', 'to', 'id', 'ring'],
  'reset-ack': ['v', 't', 'from', 'to', 'id'],
};

const hex = (v: bigint): string => v.toString(16);

function toWire(m: RingMessage): Record<string, unknown> {
  const head = { v: PAYLOAD_VERSION, t: m.t, from: m.from };
  switch (m.t) {
    case 'ring':
    case 'delta':
      return { ...head, ring: encodeRing(m.ring) };
    case 'ask':
      return { ...head, to: m.to, id: m.id, g: m.genesis };
    case 'claim':
      return { ...head, to: m.to, id: m.id, g: m.genesis, addr: hex(m.addr) };
    case 'grant':
      return { ...head, to: m.to, id: m.id, first: hex(m.first), last: hex(m.last), ring: encodeRing(m.ring) };
    case 'refuse':
      return { ...head, to: m.to, id: m.id, reason: m.reason };
    case 'reset':
      return { ...head, to: m.to, id: m.id, ring: encodeRing(m.ring) };
    case 'reset-ack':
      return { ...head, to: m.to, id: m.id };
  }
}

/** The payload bytes; RingTooLargeError when they exceed `maxBytes`. */
export function encodeRingMessage(m: RingMessage, maxBytes = DEFAULT_MAX_PAYLOAD_BYTES): Uint8Array {
  const bytes = jsonPayload(toWire(m));
  if (bytes.length > maxBytes) {
    const tokens = 'ring' in m ? ` (${m.ring.entries.length} tokens, ${m.ring.peers.size} peers)` : '';
    throw new RingTooLargeError(`ipam.ring ${m.t} payload of ${bytes.length} bytes${tokens} exceeds one mesh frame (${maxBytes} bytes)`, {
      hint: 'raise the mesh frame size on every peer, or reduce fragmentation (fewer, larger donations)',
    });
  }
  return bytes;
}

function bad(msg: string): never {
  throw new MeshMalformedError(`ipam.ring: ${msg}`);
}

function peerField(o: Record<string, unknown>, k: string): PeerId {
  const v = o[k];
  if (!isValidPeerId(v)) bad(`"${k}" is not a ring peer id`);
  return v;
}

function hexField(o: Record<string, unknown>, k: string): bigint {
  const v = o[k];
  if (typeof v !== 'string' || v.length === 0 || v.length > 32 || !/^(0|[1-9a-f][0-9a-f]*)$/.test(v)) bad(`"${k}" is not a canonical hex offset`);
  return BigInt(`0x${v}`);
}

function ringField(o: Record<string, unknown>): Ring {
  try {
    return decodeRing(o['ring']);
  } catch (e) {
    if (e instanceof RingInvalidError) bad(e.message);
    throw e;
  }
}

export function decodeRingMessage(payload: Uint8Array): RingMessage {
  const o = parseJsonPayload(payload, RING_CHANNEL);
  if (!isPlainObject(o)) bad('not an object');
  if (o['v'] !== PAYLOAD_VERSION) bad(`unsupported version ${JSON.stringify(o['v'])?.slice(0, 20)}`);
  const t = o['t'];
  if (typeof t !== 'string' || !Object.hasOwn(KEYS, t)) bad(`unknown message type ${JSON.stringify(t)?.slice(0, 40)}`);
  const type = t as RingMessage['t'];
  exactKeys(o, KEYS[type], `${RING_CHANNEL} ${type}`);
  const from = peerField(o, 'from');
  if (type === 'ring' || type === 'delta') return { t: type, from, ring: ringField(o) };
  const to = peerField(o, 'to');
  const id = o['id'];
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || id > 0xffffffff) bad('"id" is not a request number');
  const genesis = (): string => {
    const g = o['g'];
    if (typeof g !== 'string' || g.length === 0 || g.length > 65536) bad('"g" is not a genesis id');
    return g;
  };
  switch (type) {
    case 'ask':
      return { t: type, from, to, id, genesis: genesis() };
    case 'claim':
      return { t: type, from, to, id, genesis: genesis(), addr: hexField(o, 'addr') };
    case 'grant': {
      const first = hexField(o, 'first');
      const last = hexField(o, 'last');
      if (first > last) bad('"first" is above "last"');
      return { t: type, from, to, id, first, last, ring: ringField(o) };
    }
    case 'refuse': {
      const reason = o['reason'];
      if (!REASONS.includes(reason as RefuseReason)) bad(`unknown refusal reason ${JSON.stringify(reason)?.slice(0, 40)}`);
      return { t: type, from, to, id, reason: reason as RefuseReason };
    }
    case 'reset':
      return { t: type, from, to, id, ring: ringField(o) };
    default:
      return { t: 'reset-ack', from, to, id };
  }
}

/**
 * Gossip data of the ring channel: a whole ring, or a sub-ring delta
 * (`partial`). Merging (the router coalesces pending sends with it) joins
 * rings of the same genesis; across geneses the preceding one is kept.
 * Encoding is cached; a payload over the budget encodes to nothing and is
 * reported through `onTooLarge` (the router must never be handed an
 * oversize frame, and must not see an exception from `encode`).
 */
export class RingGossip implements GossipData<RingGossip> {
  private bytes: Uint8Array[] | undefined;

  constructor(
    readonly ring: Ring,
    readonly partial: boolean,
    readonly from: PeerId,
    private readonly maxBytes = DEFAULT_MAX_PAYLOAD_BYTES,
    private readonly onTooLarge?: (e: RingTooLargeError) => void,
  ) {}

  encode(): Uint8Array[] {
    if (!this.bytes) {
      try {
        this.bytes = [encodeRingMessage({ t: this.partial ? 'delta' : 'ring', from: this.from, ring: this.ring }, this.maxBytes)];
      } catch (e) {
        if (!(e instanceof RingTooLargeError)) throw e;
        this.onTooLarge?.(e);
        this.bytes = [];
      }
    }
    return this.bytes;
  }

  merge(other: RingGossip): RingGossip {
    if (other === this || !sameRange(this.ring, other.ring)) return this;
    const g = compareGenesis(this.ring.genesis, other.ring.genesis);
    if (g !== 0) return g < 0 ? this : other;
    const ring = merge(this.ring, other.ring);
    const partial = this.partial && other.partial;
    if (ring === this.ring && partial === this.partial) return this;
    if (ring === other.ring && partial === other.partial) return other;
    return new RingGossip(ring, partial, this.from, this.maxBytes, this.onTooLarge);
  }
}

/** Gossip data of the consensus channel: the acceptor table (at most N rows). */
export class ConsensusGossip implements GossipData<ConsensusGossip> {
  constructor(readonly size: number, readonly table: ConsensusTable) {}

  encode(): Uint8Array[] {
    return [jsonPayload({ v: PAYLOAD_VERSION, c: encodeConsensus({ size: this.size, table: this.table }) })];
  }

  merge(other: ConsensusGossip): ConsensusGossip {
    if (other.size !== this.size) return this;
    const table = mergeTables(this.table, other.table);
    return table === this.table ? this : new ConsensusGossip(this.size, table);
  }
}

export function decodeConsensusPayload(payload: Uint8Array): { size: number; table: ConsensusTable } {
  const o = parseJsonPayload(payload, CONSENSUS_CHANNEL);
  if (!isPlainObject(o)) throw new MeshMalformedError(`${CONSENSUS_CHANNEL}: not an object`);
  exactKeys(o, ['v', 'c'], CONSENSUS_CHANNEL);
  if (o['v'] !== PAYLOAD_VERSION) throw new MeshMalformedError(`${CONSENSUS_CHANNEL}: unsupported version`);
  try {
    return decodeConsensus(o['c']);
  } catch (e) {
    if (e instanceof RingInvalidError) throw new MeshMalformedError(`${CONSENSUS_CHANNEL}: ${e.message}`);
    throw e;
  }
}

// ---- persisted state ----

/**
 * What the daemon stores (as JSON) and hands back on start:
 * `{"v":1,"me":ID,"ring"?:RingWire,"consensus"?:ConsensusWire}`. The
 * consensus table is kept only until there is a ring (a participant must
 * keep its acceptor row until the decision).
 */
export interface PersistedRingState {
  readonly v: 1;
  readonly me: PeerId;
  readonly ring?: RingWire;
  readonly consensus?: ConsensusWire;
}

export interface DecodedRingState {
  readonly me: PeerId;
  readonly ring?: Ring;
  readonly consensus?: { readonly size: number; readonly table: ConsensusTable };
}

/** Validates a stored state (hostile input: a file). RingInvalidError when it is not one. */
export function decodePersistedState(x: unknown): DecodedRingState {
  if (!isPlainObject(x)) throw new RingInvalidError('stored ring state is not an object');
  for (const k of Object.keys(x)) if (!['v', 'me', 'ring', 'consensus'].includes(k)) throw new RingInvalidError(`stored ring state has unknown key "${k}"`);
  if (x['v'] !== 1) throw new RingInvalidError('stored ring state has an unsupported version');
  if (!isValidPeerId(x['me'])) throw new RingInvalidError('stored ring state has no valid peer id');
  return {
    me: x['me'],
    ...(x['ring'] !== undefined ? { ring: decodeRing(x['ring']) } : {}),
    ...(x['consensus'] !== undefined ? { consensus: decodeConsensus(x['consensus']) } : {}),
  };
}
