/**
 * weft's whole nftables state is one table, `inet weft`, rendered from a
 * NatSpec and replaced in a single nft transaction:
 *
 *   table inet weft {}        -- make sure it exists so the delete cannot fail
 *   delete table inet weft    -- drop the old contents
 *   table inet weft { ... }   -- the new contents
 *
 * nft applies a file atomically, so packets see either the old or the new
 * table, never a half-built one, and no other table is touched.
 *
 * The rendering is deterministic (sorted, de-duplicated) so the adapter can
 * skip an apply when the text equals the last one applied.
 */
import { InvalidConfigError } from '../errors.js';
import type { Family } from '../ip/addr.js';
import type { Cidr } from '../ip/cidr.js';
import { canonicalCidr, canonicalIp, cidrText, ipText } from './spec-checks.js';
import type { NatSpec, PortMappingSpec, TunnelSpec, UntrackedSubnet } from './types.js';

export const NAT_TABLE_FAMILY = 'inet';
export const NAT_TABLE_NAME = 'weft';
const TABLE = `${NAT_TABLE_FAMILY} ${NAT_TABLE_NAME}`;

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

interface Mapping {
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  readonly hostPort: number;
  readonly containerPort: number;
  readonly family: Family;
  readonly hostIP?: string;
  readonly containerIp: string;
}

function ipKw(family: Family): 'ip' | 'ip6' {
  return family === 4 ? 'ip' : 'ip6';
}

function checkPort(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidConfigError(`${what} ${String(n)} is not a port number (1-65535)`);
}

function normalizeMapping(m: PortMappingSpec): Mapping {
  if (!PROTOCOLS.has(m.protocol)) throw new InvalidConfigError(`port mapping protocol "${String(m.protocol)}" is not tcp, udp or sctp`);
  checkPort(m.hostPort, 'hostPort');
  checkPort(m.containerPort, 'containerPort');
  const c = canonicalIp(m.containerIp, 'port mapping container IP');
  // CNI's portMappings use "" (and sometimes 0.0.0.0 / ::) for "every host address".
  const hostIpText = m.hostIP === undefined || m.hostIP === '' ? undefined : m.hostIP;
  const h = hostIpText === undefined ? undefined : canonicalIp(hostIpText, 'port mapping hostIP');
  const unspecified = h !== undefined && h.value === 0n;
  if (h !== undefined && !unspecified && h.family !== c.family) {
    throw new InvalidConfigError(`port mapping ${m.hostIP}:${m.hostPort} -> ${m.containerIp}:${m.containerPort} mixes IPv4 and IPv6`);
  }
  return {
    protocol: m.protocol,
    hostPort: m.hostPort,
    containerPort: m.containerPort,
    family: c.family,
    containerIp: ipText(c),
    ...(h !== undefined && !unspecified ? { hostIP: ipText(h) } : {}),
  };
}

function mappingKey(m: Mapping): string {
  return `${m.family}|${m.protocol}|${String(m.hostPort).padStart(5, '0')}|${m.hostIP ?? ''}|${m.containerIp}|${m.containerPort}`;
}

function mappingRule(m: Mapping): string {
  const k = ipKw(m.family);
  // An inet-table dnat needs the network protocol pinned; `meta nfproto` does that when no address is matched.
  const match = m.hostIP !== undefined ? `${k} daddr ${m.hostIP}` : `meta nfproto ipv${m.family}`;
  const to = m.family === 4 ? `${m.containerIp}:${m.containerPort}` : `[${m.containerIp}]:${m.containerPort}`;
  return `${match} ${m.protocol} dport ${m.hostPort} dnat ${k} to ${to}`;
}

/** Canonical, sorted, de-duplicated masquerade sources. */
function masqueradeSources(spec: NatSpec): Cidr[] {
  const byText = new Map<string, Cidr>();
  for (const s of spec.masquerade) {
    const c = canonicalCidr(s, 'masquerade source');
    byText.set(cidrText(c), c);
  }
  return [...byText.values()].sort((a, b) => a.family - b.family || (a.base < b.base ? -1 : a.base > b.base ? 1 : a.prefix - b.prefix));
}

interface Untracked {
  readonly cidr: Cidr;
  readonly gateway?: string;
}

function untrackedSubnets(list: readonly UntrackedSubnet[]): Untracked[] {
  const byText = new Map<string, Untracked>();
  for (const u of list) {
    const c = canonicalCidr(u.cidr, 'untracked subnet');
    const g = u.gateway !== undefined ? canonicalIp(u.gateway, 'untracked subnet gateway') : undefined;
    if (g !== undefined && g.family !== c.family) throw new InvalidConfigError(`gateway ${u.gateway} of ${u.cidr} is not of the subnet's family`);
    byText.set(cidrText(c), { cidr: c, ...(g !== undefined ? { gateway: ipText(g) } : {}) });
  }
  return [...byText.values()].sort((a, b) => a.cidr.family - b.cidr.family || (a.cidr.base < b.cidr.base ? -1 : a.cidr.base > b.cidr.base ? 1 : a.cidr.prefix - b.cidr.prefix));
}

function tunnelMatch(t: TunnelSpec, dir: 'saddr' | 'daddr'): string {
  const local = canonicalIp(t.local, 'tunnel local address');
  checkPort(t.port, 'tunnel port');
  return `${ipKw(local.family)} ${dir} ${ipText(local)} udp dport ${t.port}`;
}

/**
 * The conntrack bypass (raw priority, before conntrack sees the packet).
 * The NAT table makes the kernel track every connection in this netns, and
 * with `bridge-nf-call-iptables=1` (the default wherever br_netfilter is
 * loaded, and weft must not change it) that includes every bridged frame
 * between containers and every VXLAN packet: about 20 % of the overlay's
 * throughput. That traffic is never NATed, so tracking it buys nothing.
 * What must stay tracked: anything to or from the gateway (a hairpin
 * connection to a published port is masqueraded to the gateway, and its
 * replies are un-NATed by conntrack), anything leaving the subnet
 * (masquerade), and locally generated traffic (no prerouting).
 */
function bypassChains(untracked: readonly Untracked[], tunnel: TunnelSpec | undefined): string[] {
  if (untracked.length === 0 && tunnel === undefined) return [];
  const out: string[] = [];
  out.push('  chain bypass_prerouting {');
  out.push('    type filter hook prerouting priority raw; policy accept;');
  for (const u of untracked) {
    const k = ipKw(u.cidr.family);
    const t = cidrText(u.cidr);
    const gw = u.gateway !== undefined ? ` ${k} saddr != ${u.gateway} ${k} daddr != ${u.gateway}` : '';
    out.push(`    ${k} saddr ${t} ${k} daddr ${t}${gw} notrack`);
  }
  if (tunnel !== undefined) out.push(`    ${tunnelMatch(tunnel, 'daddr')} notrack`);
  out.push('  }');
  if (tunnel !== undefined) {
    // The VXLAN driver sends its packets through the output hook.
    out.push('  chain bypass_output {');
    out.push('    type filter hook output priority raw; policy accept;');
    out.push(`    ${tunnelMatch(tunnel, 'saddr')} notrack`);
    out.push('  }');
  }
  return out;
}

/** The full nft script (the three-statement atomic replace); feed it to `nft -f -`. */
export function renderNatRuleset(spec: NatSpec): string {
  const sources = masqueradeSources(spec);
  const mappings = spec.portMappings.map(normalizeMapping);
  const unique = new Map<string, Mapping>();
  for (const m of mappings) unique.set(mappingKey(m), m);
  // Stable sort keeps the caller's order among mappings for the same host port (first match wins).
  const sorted = [...unique.values()].sort((a, b) => a.family - b.family || a.protocol.localeCompare(b.protocol) || a.hostPort - b.hostPort);

  const out: string[] = [];
  out.push(`table ${TABLE} {}`);
  out.push(`delete table ${TABLE}`);
  out.push(`table ${TABLE} {`);
  out.push(...bypassChains(untrackedSubnets(spec.untracked ?? []), spec.tunnel));

  out.push('  chain postrouting {');
  out.push('    type nat hook postrouting priority srcnat; policy accept;');
  for (const c of sources) {
    const k = ipKw(c.family);
    const t = cidrText(c);
    out.push(`    ${k} saddr ${t} ${k} daddr != ${t} masquerade`);
  }
  for (const c of sources) {
    // Hairpin: a container reaching a port mapping that lands on a container of
    // the same subnet would get the reply straight over the bridge from an
    // address it never talked to; masquerading routes the reply back through us.
    const k = ipKw(c.family);
    const t = cidrText(c);
    out.push(`    ct status dnat ${k} saddr ${t} ${k} daddr ${t} masquerade`);
  }
  out.push('  }');

  // Port mappings only apply to traffic addressed to this host: `fib daddr
  // type local` keeps forwarded traffic to other hosts on the same port, and
  // (in output) the host's own connections to remote services, untouched.
  // Without mappings there are no DNAT chains at all: every base chain is a
  // hook every packet (and, under br_netfilter, every bridged frame) visits.
  if (sorted.length > 0) {
    out.push('  chain prerouting {');
    out.push('    type nat hook prerouting priority dstnat; policy accept;');
    out.push('    fib daddr type local jump portmaps');
    out.push('  }');
    out.push('  chain output {');
    out.push('    type nat hook output priority -100; policy accept;');
    out.push('    fib daddr type local jump portmaps');
    out.push('  }');
    out.push('  chain portmaps {');
    for (const m of sorted) out.push(`    ${mappingRule(m)}`);
    out.push('  }');
  }
  // No filter chain: an accept in weft's table would not override a drop in
  // another table (nftables evaluates every base chain of a hook), so it
  // would only cost a hook per forwarded packet. A host whose forward policy
  // drops must allow the container subnets itself (docs/operations.md).
  out.push('}');
  return out.join('\n') + '\n';
}

/** Removes weft's table (and nothing else); succeeds when it does not exist. */
export function renderNatRemoval(): string {
  return `table ${TABLE} {}\ndelete table ${TABLE}\n`;
}
