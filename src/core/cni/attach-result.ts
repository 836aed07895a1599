/**
 * The CNI result of an attachment, built from its record and the MACs the
 * kernel gave its links. One function for the two places that need it: the
 * ADD itself, and a restarted router completing an ADD whose answer may
 * already have reached the runtime (the record was still `creating`).
 */
import type { CniDns, CniResult, CniRoute, IpamResult } from './result.js';

/** What the result needs from the attachment record (structurally a subset of core/ipam Attachment). */
export interface ResultSource {
  readonly mode: 'bridge' | 'macvlan' | 'ipam';
  readonly ifname: string;
  readonly netns?: string;
  readonly ips: readonly { readonly address: string; readonly gateway?: string }[];
  readonly bridge?: string;
  readonly hostIfname?: string;
  readonly mtu?: number;
  readonly routes?: readonly CniRoute[];
  readonly dns?: CniDns;
}

export interface LinkMacs {
  readonly container: string;
  /** bridge mode: the host end of the veth and the bridge. */
  readonly host?: string;
  readonly bridge?: string;
}

/**
 * Layers DNS settings: each later layer replaces a field the earlier ones
 * set (subnet first, then the network config, then the runtime's).
 */
export function mergeDns(layers: readonly CniDns[]): CniDns {
  const out: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] } = {};
  for (const d of layers) {
    if (d.nameservers?.length) out.nameservers = [...d.nameservers];
    if (d.domain) out.domain = d.domain;
    if (d.search?.length) out.search = [...d.search];
    if (d.options?.length) out.options = [...d.options];
  }
  return out;
}

export function ipamResultOf(a: ResultSource): IpamResult {
  return { ips: a.ips.map((i) => ({ address: i.address, ...(i.gateway ? { gateway: i.gateway } : {}) })), routes: a.routes ?? [], dns: a.dns ?? {} };
}

/** bridge mode: interfaces bridge, host end, container end (ips point at index 2); macvlan: the container end only. */
export function mainResultOf(a: ResultSource, macs: LinkMacs): CniResult {
  const container = { name: a.ifname, mac: macs.container, ...(a.mtu !== undefined ? { mtu: a.mtu } : {}), ...(a.netns !== undefined ? { sandbox: a.netns } : {}) };
  const interfaces = a.mode === 'bridge'
    ? [{ name: a.bridge!, ...(macs.bridge ? { mac: macs.bridge } : {}) }, { name: a.hostIfname!, ...(macs.host ? { mac: macs.host } : {}) }, container]
    : [container];
  const idx = interfaces.length - 1;
  return {
    interfaces,
    ips: a.ips.map((i) => ({ address: i.address, ...(i.gateway ? { gateway: i.gateway } : {}), interface: idx })),
    routes: a.routes ?? [],
    dns: a.dns ?? {},
  };
}
