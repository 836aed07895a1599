/**
 * The kernel state weft wants on this host, computed from stored records
 * alone. The reconciler and the CNI service both apply it, so "what should
 * exist" has exactly one definition.
 */
import type { Attachment } from '../ipam/attachment.js';
import type { Subnet } from '../ipam/model.js';
import type { BridgeSpec, NatSpec, PortMappingSpec, TunnelSpec, UntrackedSubnet } from '../dataplane/types.js';
import { parseCidr } from '../ip/cidr.js';
import { tryParseIp } from '../ip/addr.js';

export interface SubnetBinding {
  readonly subnet: string;
  readonly bridge: string;
  readonly network: string;
}

export function gatewayAddress(s: Subnet): string | undefined {
  return s.gateway ? `${s.gateway}/${parseCidr(s.cidr).prefix}` : undefined;
}

export function desiredBridges(bindings: readonly SubnetBinding[], subnets: ReadonlyMap<string, Subnet>, mtu: number): BridgeSpec[] {
  const byBridge = new Map<string, { network: string; addresses: string[] }>();
  for (const b of bindings) {
    const s = subnets.get(b.subnet);
    if (!s) continue;
    const entry = byBridge.get(b.bridge) ?? { network: b.network, addresses: [] };
    const gw = gatewayAddress(s);
    if (gw) entry.addresses.push(gw);
    byBridge.set(b.bridge, entry);
  }
  return [...byBridge.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, e]) => ({ name, network: e.network, mtu, addresses: e.addresses.sort() }));
}

/** The conntrack bypass (nat-ruleset.ts): on unless the operator turned it off. */
export interface BypassOptions {
  /** The overlay's VXLAN endpoint on this host, when it has one. */
  readonly tunnel?: TunnelSpec;
}

export function desiredNat(attachments: readonly Attachment[], subnets: ReadonlyMap<string, Subnet>, bypass?: BypassOptions): NatSpec {
  const masq = new Set<string>();
  const ports: PortMappingSpec[] = [];
  const used = new Set<string>();
  /** Subnets with a published port and no masquerade: a hairpin reply there is bridged and un-NATed by conntrack. */
  const needTracking = new Set<string>();
  for (const a of attachments) {
    if (a.state !== 'ready') continue;
    for (const ip of a.ips) used.add(ip.subnet);
    if (a.ipMasq) for (const ip of a.ips) { const s = subnets.get(ip.subnet); if (s) masq.add(s.cidr); }
    if (a.portMappings.length > 0) for (const ip of a.ips) needTracking.add(ip.subnet);
    for (const pm of a.portMappings) {
      // No host address means every host address: publish on each family the container has.
      const families = pm.hostIP ? [tryParseIp(pm.hostIP)?.family] : [4, 6];
      for (const wantFamily of families) {
        const target = a.ips.map((i) => i.address.split('/')[0]!).find((ip) => tryParseIp(ip)?.family === wantFamily);
        if (!target) continue;
        ports.push({ hostPort: pm.hostPort, containerPort: pm.containerPort, protocol: pm.protocol, ...(pm.hostIP ? { hostIP: pm.hostIP } : {}), containerIp: target });
      }
    }
  }
  ports.sort((x, y) => x.hostPort - y.hostPort || x.protocol.localeCompare(y.protocol) || x.containerIp.localeCompare(y.containerIp));
  const spec: NatSpec = { masquerade: [...masq].sort(), portMappings: ports };
  if (!bypass) return spec;
  const untracked: UntrackedSubnet[] = [];
  for (const name of [...used].sort()) {
    const s = subnets.get(name);
    if (!s || (needTracking.has(name) && !masq.has(s.cidr))) continue;
    untracked.push({ cidr: s.cidr, ...(s.gateway ? { gateway: s.gateway } : {}) });
  }
  return { ...spec, untracked, ...(bypass.tunnel ? { tunnel: bypass.tunnel } : {}) };
}

export function natIsEmpty(n: NatSpec): boolean {
  return n.masquerade.length === 0 && n.portMappings.length === 0;
}
