/**
 * The ring's wire form: a plain JSON-able object, compact and canonical
 * (equal rings encode to equal JSON). Language-neutral schema, version 1:
 *
 *   { "v": 1,
 *     "range": "10.32.0.0/12",                       // strict CIDR
 *     "genesis": ["seed:a,b", 2],                    // [id, founders]
 *     "peers": [["a", 12], ["b", 3, 0, 2, 0, "rmpeer"]],
 *              // [id, heartbeat] or [id, heartbeat, heirIndex, atHeartbeat, byIndex, reason]; sorted by id
 *     "tokens": [["0", 0, 5, "40"], ["80", 1, 2, "0"]],
 *              // [offset from range start (hex), ownerIndex, version, free (hex, advisory, ≤ range size)];
 *              // offsets strictly increasing, first "0"
 *     "votes": [[1, 0, 3]] }                         // [suspectIndex, voterIndex, heartbeat]; sorted
 *
 * Decoding treats its input as hostile: any deviation (type, range, order,
 * reference, size, unknown key) throws RingInvalidError and nothing is built.
 * Numbers must be safe integers; hex strings are lower case without leading
 * zeros. Votes that are well-formed but no longer count are dropped, as merge
 * would drop them.
 */
import { bits } from '../ip/addr.js';
import { type Cidr, cidrSize, formatCidr, tryParseCidr } from '../ip/cidr.js';
import { RingInvalidError } from '../errors.js';
import { makeRing } from './model.js';
import { MAX_FOUNDERS } from './seed.js';
import { type Entry, type PeerId, type PeerRecord, type RetireReason, type Ring, isValidPeerId } from './types.js';

export const RING_WIRE_VERSION = 1;
export const MAX_RING_PEERS = 65536;
export const MAX_RING_TOKENS = 1 << 20;
export const MAX_GENESIS_ID = 65536;

type WirePeer = [string, number] | [string, number, number, number, number, RetireReason];
export interface RingWire {
  v: number;
  range: string;
  genesis: [string, number];
  peers: WirePeer[];
  tokens: [string, number, number, string][];
  votes: [number, number, number][];
}

const REASONS: readonly RetireReason[] = ['reclaim', 'rmpeer', 'reset'];

export function encodeRing(ring: Ring): RingWire {
  const ids = [...ring.peers.keys()].sort();
  const index = new Map<PeerId, number>(ids.map((id, i) => [id, i]));
  const peers: WirePeer[] = ids.map((id) => {
    const rec = ring.peers.get(id)!;
    const r = rec.retired;
    return r ? [id, rec.heartbeat, index.get(r.heir)!, r.atHeartbeat, index.get(r.by)!, r.reason] : [id, rec.heartbeat];
  });
  const tokens = ring.entries.map((e): [string, number, number, string] => [(e.start - ring.first).toString(16), index.get(e.owner)!, e.version, e.free.toString(16)]);
  const votes: [number, number, number][] = [];
  for (const [s, m] of ring.votes) for (const [v, hb] of m) votes.push([index.get(s)!, index.get(v)!, hb]);
  votes.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return { v: RING_WIRE_VERSION, range: formatCidr(ring.range), genesis: [ring.genesis.id, ring.genesis.founders], peers, tokens, votes };
}

function bad(msg: string): never {
  throw new RingInvalidError(`invalid ring: ${msg}`);
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function hex(s: unknown, maxDigits: number, what: string): bigint {
  if (typeof s !== 'string' || s.length === 0 || s.length > maxDigits || !/^(0|[1-9a-f][0-9a-f]*)$/.test(s)) bad(`${what} is not a canonical hex string`);
  return BigInt(`0x${s}`);
}

function exactKeys(o: unknown, keys: readonly string[], what: string): Record<string, unknown> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) bad(`${what} is not an object`);
  const own = Object.keys(o);
  for (const k of own) if (!keys.includes(k)) bad(`${what} has unknown key "${k}"`);
  for (const k of keys) if (!Object.prototype.hasOwnProperty.call(o, k)) bad(`${what} lacks "${k}"`);
  return o as Record<string, unknown>;
}

function list(a: unknown, max: number, what: string): unknown[] {
  if (!Array.isArray(a)) bad(`${what} is not an array`);
  if (a.length > max) bad(`${what} has more than ${max} items`);
  return a;
}

export function decodeRing(input: unknown): Ring {
  const o = exactKeys(input, ['v', 'range', 'genesis', 'peers', 'tokens', 'votes'], 'ring');
  if (o.v !== RING_WIRE_VERSION) bad(`unsupported version ${JSON.stringify(o.v)?.slice(0, 20)}`);
  if (typeof o.range !== 'string' || o.range.length > 64) bad('range is not a string');
  const range: Cidr | undefined = tryParseCidr(o.range, true);
  if (!range) bad('range is not a strict CIDR prefix');
  const size = cidrSize(range);
  const digits = bits(range.family) / 4;

  const g = list(o.genesis, 2, 'genesis');
  if (g.length !== 2 || typeof g[0] !== 'string' || g[0].length === 0 || g[0].length > MAX_GENESIS_ID || !/^[\x20-\x7e]+$/.test(g[0])) bad('genesis id is malformed');
  if (!isCount(g[1]) || g[1] < 1 || g[1] > MAX_FOUNDERS) bad('genesis founders is out of range');
  const genesis = { id: g[0], founders: g[1] };

  const rawPeers = list(o.peers, MAX_RING_PEERS, 'peers');
  if (rawPeers.length === 0) bad('no peers');
  const ids: PeerId[] = [];
  for (const [i, p] of rawPeers.entries()) {
    if (!Array.isArray(p) || (p.length !== 2 && p.length !== 6)) bad(`peer ${i} is malformed`);
    if (!isValidPeerId(p[0])) bad(`peer ${i} has an invalid id`);
    if (i > 0 && !(ids[i - 1]! < p[0])) bad(`peers are not strictly sorted at ${i}`);
    ids.push(p[0]);
  }
  const peers = new Map<PeerId, PeerRecord>();
  for (const [i, p] of (rawPeers as unknown[][]).entries()) {
    if (!isCount(p[1])) bad(`peer ${i} heartbeat is not a count`);
    if (p.length === 2) { peers.set(ids[i]!, { heartbeat: p[1] }); continue; }
    const [, hb, heir, atHb, by, reason] = p;
    if (!isCount(heir) || heir >= ids.length || heir === i) bad(`peer ${i} heir index is invalid`);
    if (!isCount(atHb) || atHb > (hb as number)) bad(`peer ${i} retirement heartbeat is invalid`);
    if (!isCount(by) || by >= ids.length) bad(`peer ${i} retirement executor is invalid`);
    if (!REASONS.includes(reason as RetireReason)) bad(`peer ${i} retirement reason is invalid`);
    peers.set(ids[i]!, { heartbeat: hb as number, retired: { heir: ids[heir]!, atHeartbeat: atHb, by: ids[by]!, reason: reason as RetireReason } });
  }

  const rawTokens = list(o.tokens, MAX_RING_TOKENS, 'tokens');
  if (rawTokens.length === 0) bad('no tokens');
  const offsets: bigint[] = [];
  for (const [i, t] of rawTokens.entries()) {
    if (!Array.isArray(t) || t.length !== 4) bad(`token ${i} is malformed`);
    const off = hex(t[0], digits, `token ${i} offset`);
    if (off >= size) bad(`token ${i} is outside the range`);
    if (i === 0 ? off !== 0n : off <= offsets[i - 1]!) bad(i === 0 ? 'first token does not start the range' : `tokens are not strictly increasing at ${i}`);
    offsets.push(off);
  }
  const entries: Entry[] = [];
  for (const [i, t] of (rawTokens as unknown[][]).entries()) {
    const [, owner, version, freeHex] = t;
    if (!isCount(owner) || owner >= ids.length) bad(`token ${i} owner index is invalid`);
    if (!isCount(version)) bad(`token ${i} version is not a count`);
    const free = hex(freeHex, digits + 1, `token ${i} free`);
    // Not checked against the span: a merge may have inserted a token behind it (free is advisory, readers clamp).
    if (free > size) bad(`token ${i} free count exceeds the range`);
    entries.push({ start: range.base + offsets[i]!, owner: ids[owner]!, version, free });
  }

  const rawVotes = list(o.votes, MAX_RING_PEERS * 16, 'votes');
  const votes = new Map<PeerId, Map<PeerId, number>>();
  let prev: [number, number] | undefined;
  for (const [i, v] of rawVotes.entries()) {
    if (!Array.isArray(v) || v.length !== 3) bad(`vote ${i} is malformed`);
    const [s, w, hb] = v as unknown[];
    if (!isCount(s) || s >= ids.length || !isCount(w) || w >= ids.length || s === w) bad(`vote ${i} references invalid peers`);
    if (prev && (s < prev[0] || (s === prev[0] && w <= prev[1]))) bad(`votes are not strictly sorted at ${i}`);
    prev = [s, w];
    if (!isCount(hb) || hb > peers.get(ids[s]!)!.heartbeat) bad(`vote ${i} heartbeat is invalid`);
    let m = votes.get(ids[s]!);
    if (!m) { m = new Map(); votes.set(ids[s]!, m); }
    m.set(ids[w]!, hb);
  }
  return makeRing(range, genesis, entries, peers, votes);
}
