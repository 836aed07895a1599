/**
 * Which local address and device carry the overlay (the VXLAN `local` and
 * `dev`) and the control connections. Pure: the adapter feeds it the links
 * and addresses of the router's netns.
 */
import { InvalidConfigError } from '../errors.js';
import { tryParseIp } from '../ip/addr.js';

export interface UnderlayLink {
  readonly name: string;
  readonly up: boolean;
  readonly mtu: number;
  readonly kind?: string;
  readonly loopback: boolean;
  /** Global-scope addresses without prefix. */
  readonly addresses: readonly string[];
}

export interface Underlay {
  readonly ip: string;
  readonly dev: string;
  readonly mtu: number;
}

/** Links weft itself creates never carry the underlay. */
function isWeftLink(l: UnderlayLink): boolean {
  return l.name === 'weft' || /^(wb|wv|wx)[0-9a-f]/.test(l.name) || l.kind === 'vxlan' || l.kind === 'veth' && l.name.startsWith('wv');
}

/**
 * With `advertise`: the link that holds that address (an error if none does:
 * VXLAN packets would leave with a source no peer expects). Without: the
 * first up, non-loopback, non-weft link with a global IPv4 address, else
 * IPv6; undefined when there is none (a router with no underlay can still
 * serve one host).
 */
export function chooseUnderlay(links: readonly UnderlayLink[], advertise?: string): Underlay | undefined {
  if (advertise !== undefined) {
    const want = tryParseIp(advertise);
    if (!want) throw new InvalidConfigError(`--advertise-addr "${advertise}" is not an IP address`);
    for (const l of links) {
      for (const a of l.addresses) {
        const ip = tryParseIp(a);
        if (ip && ip.family === want.family && ip.value === want.value) return { ip: advertise, dev: l.name, mtu: l.mtu };
      }
    }
    throw new InvalidConfigError(`--advertise-addr ${advertise} is not an address of this host`, { hint: 'pass an address assigned to the interface that connects the hosts' });
  }
  const usable = links.filter((l) => l.up && !l.loopback && !isWeftLink(l));
  for (const family of [4, 6] as const) {
    for (const l of usable) {
      const a = l.addresses.find((x) => tryParseIp(x)?.family === family);
      if (a) return { ip: a, dev: l.name, mtu: l.mtu };
    }
  }
  return undefined;
}
