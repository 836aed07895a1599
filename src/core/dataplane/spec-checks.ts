/**
 * Validation and canonical forms for the values that end up in `ip -batch`
 * lines. Everything the planners emit goes through here first, so a bad spec
 * fails before any kernel object exists (nothing to roll back) and nothing
 * user-supplied can smuggle a second token or command into a batch line.
 */
import { InvalidConfigError, InvalidEnvError } from '../errors.js';
import { type Ip, formatIp, tryParseIp } from '../ip/addr.js';
import { type Cidr, formatCidr, formatIpWithPrefix, tryParseCidr, tryParseIpWithPrefix } from '../ip/cidr.js';

export const MTU_MIN = 68;
export const MTU_MAX = 65535;

export interface CanonicalAddress {
  readonly ip: Ip;
  readonly prefix: number;
  /** `10.32.0.5/12`, `fd00::5/64` (RFC 5952). */
  readonly text: string;
}

export function canonicalAddress(s: string, what = 'address'): CanonicalAddress {
  const p = tryParseIpWithPrefix(s);
  if (!p) throw new InvalidConfigError(`${what} "${s}" is not an IP address with a prefix length (like 10.32.0.5/12)`);
  return { ip: p.ip, prefix: p.prefix, text: formatIpWithPrefix(p.ip, p.prefix) };
}

export function canonicalIp(s: string, what = 'IP address'): Ip {
  const ip = tryParseIp(s);
  if (!ip) throw new InvalidConfigError(`${what} "${s}" is not an IP address`);
  return ip;
}

/** A CIDR; host bits are masked off (routes and masquerade sources are prefixes). */
export function canonicalCidr(s: string, what = 'prefix'): Cidr {
  const c = tryParseCidr(s);
  if (!c) throw new InvalidConfigError(`${what} "${s}" is not a CIDR prefix`);
  return c;
}

export function cidrText(c: Cidr): string {
  return formatCidr(c);
}

export function ipText(ip: Ip): string {
  return formatIp(ip);
}

export function assertMtu(mtu: number, what = 'mtu'): void {
  if (!Number.isInteger(mtu) || mtu < MTU_MIN || mtu > MTU_MAX) {
    throw new InvalidConfigError(`${what} ${String(mtu)} is out of range (${MTU_MIN}-${MTU_MAX})`);
  }
}

/** Unicast Ethernet address in colon form, lower-cased. The kernel refuses multicast MACs on links. */
export function canonicalMac(mac: string, what = 'mac'): string {
  const m = typeof mac === 'string' ? mac.trim().toLowerCase() : '';
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m)) throw new InvalidConfigError(`${what} "${mac}" is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  if ((parseInt(m.slice(0, 2), 16) & 1) === 1) throw new InvalidConfigError(`${what} "${mac}" is a multicast address; a link needs a unicast MAC`);
  if (m === '00:00:00:00:00:00') throw new InvalidConfigError(`${what} "${mac}" is the all-zero address`);
  return m;
}

/** A single `ip -batch` token: no whitespace, quotes, backslashes or `#` (which starts a comment). */
export function isBatchToken(s: string): boolean {
  return typeof s === 'string' && s.length > 0 && /^[^\s"'\\#]+$/.test(s);
}

export function assertBatchToken(s: string, what: string): void {
  if (!isBatchToken(s)) throw new InvalidConfigError(`${what} "${s}" contains characters weft cannot pass to ip(8) (whitespace, quotes, "\\" or "#")`);
}

/** The netns path comes from CNI_NETNS, so a bad one is an environment error, not a config error. */
export function assertNetnsPathToken(path: string): void {
  if (typeof path !== 'string' || !path.startsWith('/') || !isBatchToken(path)) {
    throw new InvalidEnvError(`CNI_NETNS "${String(path)}" is not an absolute path weft can use`, { hint: 'the runtime must pass a path like /run/netns/NAME or /proc/PID/ns/net' });
  }
}
