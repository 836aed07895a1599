import { formatIp, tryParseIp, type Ip } from '../ip/addr.js';

/**
 * A peer's control-plane address: an IP and a TCP port. Kept as a parsed
 * value on the wire (family + bytes + port, see wire/primitives.ts) and as a
 * canonical string (`192.0.2.1:6783`, `[2001:db8::1]:6783`) in maps, so the
 * same address written two ways is one connection target.
 */
export interface PeerAddress {
  readonly ip: Ip;
  readonly port: number;
}

export const DEFAULT_MESH_PORT = 6783;

export function formatPeerAddress(a: PeerAddress): string {
  return a.ip.family === 4 ? `${formatIp(a.ip)}:${a.port}` : `[${formatIp(a.ip)}]:${a.port}`;
}

function validPort(p: string): number | undefined {
  if (!/^[1-9][0-9]{0,4}$/.test(p)) return undefined;
  const n = Number(p);
  return n <= 65535 ? n : undefined;
}

/** Parses `IP`, `IP:PORT`, `[IPv6]` or `[IPv6]:PORT`; the port defaults to `defaultPort`. */
export function tryParsePeerAddress(s: string, defaultPort = DEFAULT_MESH_PORT): PeerAddress | undefined {
  if (typeof s !== 'string' || s.length === 0 || s.length > 64) return undefined;
  let host = s;
  let port: number | undefined = defaultPort;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) return undefined;
    host = s.slice(1, close);
    const rest = s.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      port = validPort(rest.slice(1));
    }
    const ip = tryParseIp(host);
    return ip && ip.family === 6 && port !== undefined ? { ip, port } : undefined;
  }
  const colons = s.split(':').length - 1;
  if (colons === 1) {
    host = s.slice(0, s.indexOf(':'));
    port = validPort(s.slice(s.indexOf(':') + 1));
  }
  const ip = tryParseIp(host);
  return ip && port !== undefined ? { ip, port } : undefined;
}

/** Canonical string form, or undefined when `s` is not an address. */
export function normalizePeerAddress(s: string, defaultPort = DEFAULT_MESH_PORT): string | undefined {
  const a = tryParsePeerAddress(s, defaultPort);
  return a ? formatPeerAddress(a) : undefined;
}
