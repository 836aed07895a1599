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
