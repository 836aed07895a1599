import { type Family, type Ip, bits, formatIp, maxValue, tryParseIp } from './addr.js';

/** A prefix: the (masked) network address and its length. */
export interface Cidr {
  readonly family: Family;
  /** Network address (host bits zero). */
  readonly base: bigint;
  readonly prefix: number;
}

/** An address with its prefix length, as in `10.32.0.5/12` (host bits kept). */
export interface IpWithPrefix {
  readonly ip: Ip;
  readonly prefix: number;
}

function mask(family: Family, prefix: number): bigint {
  const b = BigInt(bits(family));
  return (maxValue(family) >> (b - BigInt(prefix))) << (b - BigInt(prefix));
}

export function tryParseIpWithPrefix(s: string): IpWithPrefix | undefined {
  if (typeof s !== 'string') return undefined;
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = tryParseIp(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > bits(ip.family)) return undefined;
  return { ip, prefix };
}

/** Parses `a.b.c.d/n` or `v6/n`; the host bits are masked off. Strict: rejects host bits when `strict`. */
export function tryParseCidr(s: string, strict = false): Cidr | undefined {
  const p = tryParseIpWithPrefix(s);
  if (!p) return undefined;
  const base = p.ip.value & mask(p.ip.family, p.prefix);
  if (strict && base !== p.ip.value) return undefined;
  return { family: p.ip.family, base, prefix: p.prefix };
}

export function parseCidr(s: string, strict = false): Cidr {
  const c = tryParseCidr(s, strict);
  if (!c) throw new RangeError(strict && tryParseCidr(s) ? `"${s}" has host bits set; did you mean ${formatCidr(tryParseCidr(s)!)}?` : `"${s}" is not a CIDR prefix`);
  return c;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.base })}/${c.prefix}`;
}

export function formatIpWithPrefix(ip: Ip, prefix: number): string {
  return `${formatIp(ip)}/${prefix}`;
}

export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(bits(c.family) - c.prefix);
}

export function cidrLast(c: Cidr): bigint {
  return c.base + cidrSize(c) - 1n;
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  return c.family === ip.family && ip.value >= c.base && ip.value <= cidrLast(c);
}

export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && outer.prefix <= inner.prefix && inner.base >= outer.base && cidrLast(inner) <= cidrLast(outer);
}

export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base <= cidrLast(b) && b.base <= cidrLast(a);
}

export function cidrEquals(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base === b.base && a.prefix === b.prefix;
}

/**
 * The addresses a host may use: for IPv4 prefixes shorter than /31 the
 * network and broadcast addresses are excluded; for IPv6 the subnet-router
 * anycast address (all host bits zero) is excluded unless the prefix is /127 or /128.
 */
export function usableRange(c: Cidr): { first: bigint; last: bigint } {
  const last = cidrLast(c);
  const hostBits = bits(c.family) - c.prefix;
  if (c.family === 4) {
    if (hostBits <= 1) return { first: c.base, last };
    return { first: c.base + 1n, last: last - 1n };
  }
  if (hostBits <= 1) return { first: c.base, last };
  return { first: c.base + 1n, last };
}

/** The first usable address: the conventional default gateway. */
export function defaultGateway(c: Cidr): Ip {
  return { family: c.family, value: usableRange(c).first };
}
