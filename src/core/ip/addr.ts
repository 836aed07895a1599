/**
 * IP addresses as value types: a family and a bigint. One representation for
 * v4 and v6 keeps allocator code family-agnostic; bigint compares and
 * increments cheaply and never aliases.
 */
export type Family = 4 | 6;

export interface Ip {
  readonly family: Family;
  readonly value: bigint;
}

const V4_MAX = (1n << 32n) - 1n;
const V6_MAX = (1n << 128n) - 1n;

export function maxValue(family: Family): bigint {
  return family === 4 ? V4_MAX : V6_MAX;
}

export function bits(family: Family): number {
  return family === 4 ? 32 : 128;
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  if (s.length === 0 || s.length > 45) return undefined;
  let tail4: bigint | undefined;
  let text = s;
  // An embedded dotted quad (::ffff:1.2.3.4) stands for the last 32 bits.
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail4 = parseV4(text.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const groups = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (halves.length === 1 && head.length !== 8) return undefined;
  if (halves.length === 2 && groups < 1) return undefined;
  const all = [...head, ...Array<string>(groups).fill('0'), ...tail];
  if (all.length !== 8) return undefined;
  let v = 0n;
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  if (tail4 !== undefined) v = (v & ~0xffffffffn) | tail4;
  return v;
}

/** Parses an address; returns undefined when it is not a valid IPv4 or IPv6 literal. */
export function tryParseIp(s: string): Ip | undefined {
  if (typeof s !== 'string') return undefined;
  if (s.includes(':')) {
    const v = parseV6(s);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = parseV4(s);
  return v === undefined ? undefined : { family: 4, value: v };
}

export function parseIp(s: string): Ip {
  const ip = tryParseIp(s);
  if (!ip) throw new RangeError(`"${s}" is not an IP address`);
  return ip;
}

export function ipFromValue(family: Family, value: bigint): Ip {
  if (value < 0n || value > maxValue(family)) throw new RangeError(`value out of range for IPv${family}`);
  return { family, value };
}

/** Canonical text (RFC 5952 for v6: lower case, longest zero run compressed). */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

export function ipEquals(a: Ip, b: Ip): boolean {
  return a.family === b.family && a.value === b.value;
}

export function compareIp(a: Ip, b: Ip): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function addToIp(ip: Ip, n: bigint): Ip {
  return ipFromValue(ip.family, ip.value + n);
}

/** A fixed-width, order-preserving key for stores (`4:0a200001`). */
export function ipKey(ip: Ip): string {
  return `${ip.family}:${ip.value.toString(16).padStart(ip.family === 4 ? 8 : 32, '0')}`;
}

export function normalizeIp(s: string): string {
  return formatIp(parseIp(s));
}
