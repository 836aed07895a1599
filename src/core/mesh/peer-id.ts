/**
 * Peer identity. A peer ID is a stable 64-bit number chosen once per data
 * directory; it is written as 16 lowercase hex digits so that string order
 * equals numeric order (topology, tie-breaks and broadcast spans all sort by
 * it) and so it can be a Map key without a bigint. Zero is reserved.
 *
 * The nickname is the human label (`--name`, default hostname). It is not
 * the identity, but the CLI addresses peers by it, so the router refuses a
 * second live peer with the same nickname (see conn/admission.ts).
 */
export type PeerId = string;

const PEER_ID_RE = /^[0-9a-f]{16}$/;
const ZERO: PeerId = '0000000000000000';
const MAX: PeerId = 'ffffffffffffffff';
const MASK = (1n << 64n) - 1n;

/** Char codes of the two hex digits of each byte value. */
const HI = new Uint8Array(256);
const LO = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  HI[i] = '0123456789abcdef'.charCodeAt(i >> 4);
  LO[i] = '0123456789abcdef'.charCodeAt(i & 15);
}
const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) NIBBLE['0123456789abcdef'.charCodeAt(i)] = i;

/**
 * Decoded IDs are interned: the same peer ID arrives thousands of times
 * (every topology entry lists its connections), and one shared flat string
 * per ID makes the Map lookups and comparisons that follow cheap. Bounded,
 * so a peer sending random IDs cannot grow it without limit.
 */
const interned = new Map<number, Map<number, PeerId>>();
let internedCount = 0;
const INTERN_LIMIT = 1 << 16;

/** The ID in bytes[off..off+8]; undefined for the reserved zero. Caller checks the length. */
export function peerIdAt(b: Uint8Array, off: number): PeerId | undefined {
  const hi = ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
  const lo = ((b[off + 4]! << 24) | (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!) >>> 0;
  if (hi === 0 && lo === 0) return undefined;
  let m = interned.get(hi);
  const known = m?.get(lo);
  if (known !== undefined) return known;
  const id = String.fromCharCode(
    HI[b[off]!]!, LO[b[off]!]!, HI[b[off + 1]!]!, LO[b[off + 1]!]!, HI[b[off + 2]!]!, LO[b[off + 2]!]!, HI[b[off + 3]!]!, LO[b[off + 3]!]!,
    HI[b[off + 4]!]!, LO[b[off + 4]!]!, HI[b[off + 5]!]!, LO[b[off + 5]!]!, HI[b[off + 6]!]!, LO[b[off + 6]!]!, HI[b[off + 7]!]!, LO[b[off + 7]!]!,
  );
  if (internedCount >= INTERN_LIMIT) {
    interned.clear();
    internedCount = 0;
    m = undefined;
  }
  if (!m) interned.set(hi, (m = new Map()));
  m.set(lo, id);
  internedCount++;
  return id;
}

/** Writes a valid ID's 8 bytes at bytes[off]; false if `id` is not 16 lowercase hex digits. */
export function writePeerIdAt(id: PeerId, bytes: Uint8Array, off: number): boolean {
  if (id.length !== 16) return false;
  for (let i = 0; i < 8; i++) {
    const hi = NIBBLE[id.charCodeAt(2 * i)] ?? -1;
    const lo = NIBBLE[id.charCodeAt(2 * i + 1)] ?? -1;
    if (hi < 0 || lo < 0) return false;
    bytes[off + i] = (hi << 4) | lo;
  }
  return true;
}

export function isPeerId(s: unknown): s is PeerId {
  return typeof s === 'string' && PEER_ID_RE.test(s) && s !== ZERO;
}

/** Accepts 16 hex digits, with or without `:` separators every two digits, any case. */
export function tryParsePeerId(s: string): PeerId | undefined {
  if (typeof s !== 'string') return undefined;
  const t = (/^([0-9a-fA-F]{2}:){7}[0-9a-fA-F]{2}$/.test(s) ? s.replaceAll(':', '') : s).toLowerCase();
  return isPeerId(t) ? t : undefined;
}

/** The peer ID made of the first 8 bytes of `bytes` (e.g. from a CSPRNG); zero is bumped to one. */
export function peerIdFromBytes(bytes: Uint8Array): PeerId {
  if (bytes.length < 8) throw new RangeError('a peer ID needs 8 bytes');
  const hex = Buffer.from(bytes.subarray(0, 8)).toString('hex');
  return hex === ZERO ? '0000000000000001' : hex;
}

export function comparePeerIds(a: PeerId, b: PeerId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The next ID on the 64-bit circle (wraps). Used to express "just after X" in broadcast spans. */
export function nextPeerId(id: PeerId): PeerId {
  if (id === MAX) return ZERO;
  return ((BigInt('0x' + id) + 1n) & MASK).toString(16).padStart(16, '0');
}

/** The previous ID on the 64-bit circle (wraps). */
export function prevPeerId(id: PeerId): PeerId {
  if (id === ZERO) return MAX;
  return (BigInt('0x' + id) - 1n).toString(16).padStart(16, '0');
}

/** Is `x` inside the cyclic, inclusive interval [first, last]? first > last means it wraps past ffff…. */
export function inCyclicSpan(x: PeerId, first: PeerId, last: PeerId): boolean {
  return first <= last ? x >= first && x <= last : x >= first || x <= last;
}

/** Nicknames are hostname-like so they print safely and survive every shell and log format. */
const NICKNAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function isNickname(s: unknown): s is string {
  return typeof s === 'string' && NICKNAME_RE.test(s);
}
