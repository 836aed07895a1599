/**
 * Attachment plans as `ip -batch` lines: one list for the daemon's (host)
 * netns and one for the container's netns, so an attach costs one `ip`
 * process per side. The container end is created directly inside the target
 * netns (`peer ... netns PATH`): moving a link between namespaces afterwards
 * costs ~20 ms of RCU wait per link, creating it there costs ~0.1 ms.
 */
import { InvalidConfigError } from '../errors.js';
import type { Family } from '../ip/addr.js';
import { assertIfname, OWNER_ALIAS_PREFIX, portAlias } from './names.js';
import { type CanonicalAddress, assertBatchToken, assertMtu, assertNetnsPathToken, canonicalAddress, canonicalCidr, canonicalIp, canonicalMac, cidrText, ipText } from './spec-checks.js';
import type { MacvlanAttachSpec, RouteSpec, VethAttachSpec } from './types.js';

export interface AttachPlan {
  /** Lines for `ip -batch -` in the daemon's netns. */
  readonly host: string[];
  /** Lines for `nsenter --net=NETNS ip -batch -`. */
  readonly container: string[];
}

/** A route with everything resolved: canonical prefix and the next hop, if any. */
export interface ResolvedRoute {
  readonly dst: string;
  readonly family: Family;
  readonly via?: string;
}

/**
 * Alias put on the container end so a later DEL can prove the interface is
 * weft's before deleting it (a DEL that follows a failed ADD must not delete
 * the runtime's or another plugin's interface of the same name).
 */
export function containerAliasFor(hostEnd: string): string {
  return `${OWNER_ALIAS_PREFIX}${hostEnd}`;
}
export const MACVLAN_ALIAS = `${OWNER_ALIAS_PREFIX}macvlan`;

/**
 * Routes as CNI describes them, resolved against the gateways: a route without
 * `gw` goes via the gateway of its family when there is one, else it is a
 * device route. Identical duplicates are dropped; two routes to the same
 * prefix with different next hops are a config error (the kernel would fail
 * the second with EEXIST halfway through the attach).
 */
export function resolveRoutes(routes: readonly RouteSpec[], gateways: readonly string[]): ResolvedRoute[] {
  const gwByFamily = new Map<Family, string>();
  for (const g of gateways) {
    const ip = canonicalIp(g, 'gateway');
    if (!gwByFamily.has(ip.family)) gwByFamily.set(ip.family, ipText(ip));
  }
  const out: ResolvedRoute[] = [];
  for (const r of routes) {
    const dst = canonicalCidr(r.dst, 'route destination');
    let via: string | undefined;
    if (r.gw !== undefined && r.gw !== '') {
      const gw = canonicalIp(r.gw, `gateway of route ${r.dst}`);
      if (gw.family !== dst.family) throw new InvalidConfigError(`route ${r.dst} has gateway ${r.gw} of another address family`);
      via = ipText(gw);
    } else {
      via = gwByFamily.get(dst.family);
    }
    const resolved: ResolvedRoute = { dst: cidrText(dst), family: dst.family, ...(via !== undefined ? { via } : {}) };
    const same = out.find((o) => o.dst === resolved.dst);
    if (same === undefined) out.push(resolved);
    else if (same.via !== resolved.via) {
      throw new InvalidConfigError(`two routes to ${resolved.dst} with different gateways (${same.via ?? 'none'} and ${resolved.via ?? 'none'})`);
    }
  }
  return out;
}

/**
 * The container's addresses, validated and without repeats, each with
 * whether to skip DAD: the container must be reachable the moment ADD
 * returns, and with DAD a v6 address stays tentative (unusable as a
 * source) for ~1 s.
 */
export function containerAddresses(addresses: readonly string[]): (CanonicalAddress & { readonly nodad: boolean })[] {
  const out: (CanonicalAddress & { nodad: boolean })[] = [];
  const seen = new Set<string>();
  for (const a of addresses) {
    const addr = canonicalAddress(a, 'container address');
    if (seen.has(addr.text)) continue;
    seen.add(addr.text);
    out.push({ ...addr, nodad: addr.ip.family === 6 });
  }
  return out;
}

/** Addresses, link up, lo up, routes: the container side of any attachment. */
export function planContainerSide(args: { ifname: string; alias: string; addresses: readonly string[]; gateways: readonly string[]; routes: readonly RouteSpec[] }): string[] {
  const lines: string[] = [];
  for (const addr of containerAddresses(args.addresses)) lines.push(`addr add ${addr.text} dev ${args.ifname}${addr.nodad ? ' nodad' : ''}`);
  lines.push(`link set dev ${args.ifname} alias ${args.alias}`);
  lines.push(`link set dev ${args.ifname} up`);
  lines.push('link set dev lo up');
  // Routes come after the link is up: the kernel refuses a gateway route over a down link.
  // `append`, not `add`: a container on two networks gets a default route from each,
  // and the second must not fail with EEXIST (the first one stays preferred).
  for (const r of resolveRoutes(args.routes, args.gateways)) {
    lines.push(`route append ${r.dst}${r.via !== undefined ? ` via ${r.via}` : ''} dev ${args.ifname}`);
  }
  return lines;
}

export function planVethAttach(spec: VethAttachSpec): AttachPlan {
  assertNetnsPathToken(spec.netns);
  assertIfname(spec.ifname, 'CNI_IFNAME');
  assertIfname(spec.hostIfname, 'host interface name');
  assertIfname(spec.bridge, 'bridge name');
  assertMtu(spec.mtu);
  const mac = spec.mac !== undefined && spec.mac !== '' ? canonicalMac(spec.mac) : undefined;
  const host = [
    // The peer needs its own mtu: `mtu` before `type` only applies to the host end.
    `link add name ${spec.hostIfname} mtu ${spec.mtu} type veth peer name ${spec.ifname} mtu ${spec.mtu}${mac !== undefined ? ` address ${mac}` : ''} netns ${spec.netns}`,
    `link set dev ${spec.hostIfname} master ${spec.bridge}`,
    // `alias` on `link add` is silently ignored by iproute2 6.1, hence its own line.
    `link set dev ${spec.hostIfname} alias ${portAlias(spec.bridge, spec.hairpin)}`,
    // hairpin needs its own request: combined with `master` the kernel answers EOPNOTSUPP.
    ...(spec.hairpin ? [`link set dev ${spec.hostIfname} type bridge_slave hairpin on`] : []),
    `link set dev ${spec.hostIfname} up`,
  ];
  const container = planContainerSide({ ifname: spec.ifname, alias: containerAliasFor(spec.hostIfname), addresses: spec.addresses, gateways: spec.gateways, routes: spec.routes });
  return { host, container };
}

const MACVLAN_MODES = new Set(['bridge', 'private', 'vepa', 'passthru']);

export function planMacvlanAttach(spec: MacvlanAttachSpec): AttachPlan {
  assertNetnsPathToken(spec.netns);
  assertIfname(spec.ifname, 'CNI_IFNAME');
  assertIfname(spec.master, 'macvlan master');
  assertBatchToken(spec.master, 'macvlan master');
  assertMtu(spec.mtu);
  if (!MACVLAN_MODES.has(spec.mode)) throw new InvalidConfigError(`macvlan mode "${String(spec.mode)}" is not one of bridge, private, vepa, passthru`);
  const mac = spec.mac !== undefined && spec.mac !== '' ? canonicalMac(spec.mac) : undefined;
  const host = [
    `link add link ${spec.master} name ${spec.ifname} mtu ${spec.mtu}${mac !== undefined ? ` address ${mac}` : ''} netns ${spec.netns} type macvlan mode ${spec.mode}`,
  ];
  const container = planContainerSide({ ifname: spec.ifname, alias: MACVLAN_ALIAS, addresses: spec.addresses, gateways: spec.gateways, routes: spec.routes });
  return { host, container };
}
