/**
 * The overlay planner: from what the cluster knows (networks on this host,
 * peers and how to reach them, remote container endpoints) to the kernel
 * state this host should hold (docs/overlay.md). Pure and deterministic: the
 * same input in any order gives the same OverlayState.
 *
 * Per network: a data VXLAN device (VNI from the network name) and, when
 * relaying is on, a relay device (relay VNI), both bridge ports with
 * learning and unknown-unicast flooding off. Per remote endpoint: a VXLAN
 * FDB entry (MAC -> peer's or relay's underlay address), a static bridge
 * entry on the same port, and a permanent neighbour entry per address so
 * the VXLAN `proxy` answers ARP/ND locally. Per direct peer with endpoints
 * in the network: one all-zeros FDB entry (head-end replication of BUM).
 *
 * Input that comes from other hosts (peers, endpoints) never makes the plan
 * fail: what cannot be programmed is left out and reported as a note.
 * Local configuration errors (network, bridge, MTU, VNI, underlay) throw.
 */
import { createHash } from 'node:crypto';
import { InvalidConfigError, VniConflictError } from '../errors.js';
import type { Family } from '../ip/addr.js';
import { tryParseIp } from '../ip/addr.js';
import { tryParseIpWithPrefix } from '../ip/cidr.js';
import { assertIfname, vxlanAlias, vxlanNameFor, vxlanRelayNameFor } from './names.js';
import { renderOverlayFilter } from './overlay-filter.js';
import {
  type BridgePortFlags,
  type FdbEntry,
  type MasterFdbEntry,
  type NeighEntry,
  type OverlayInput,
  type OverlayNote,
  type OverlayPeerRoute,
  type OverlayPlan,
  type OverlayPlanOptions,
  type OverlayState,
  type VxlanDevice,
  RELAY_VNI_BIT,
  VNI_MAX,
  VXLAN_OVERHEAD_V4,
  VXLAN_OVERHEAD_V6,
  VXLAN_PORT,
  ZERO_MAC,
} from './overlay-types.js';
import { assertBatchToken, assertMtu, canonicalIp, ipText } from './spec-checks.js';

// ---- VNI and MTU ----

/**
 * The VNI of a network: 1 + (first 32 bits of sha256("weft-vni/" + name)
 * mod 2^23 - 1), so every host derives the same value, it is never 0 and
 * its relay VNI (bit 23 set) never collides with another data VNI.
 */
export function vniFor(network: string): number {
  const h = createHash('sha256').update(`weft-vni/${network}`).digest();
  return 1 + (h.readUInt32BE(0) % (RELAY_VNI_BIT - 1));
}

/** The VNI of a network's relay device: its VNI with bit 23 flipped. */
export function relayVniFor(vni: number): number {
  return vni ^ RELAY_VNI_BIT;
}

export function assertVni(vni: number, what = 'vni'): void {
  if (!Number.isInteger(vni) || vni < 1 || vni > VNI_MAX || vni === RELAY_VNI_BIT) {
    throw new InvalidConfigError(`${what} ${String(vni)} is out of range (1-${VNI_MAX}, except ${RELAY_VNI_BIT} whose relay VNI would be 0)`);
  }
}

export function vxlanOverhead(family: Family): number {
  return family === 6 ? VXLAN_OVERHEAD_V6 : VXLAN_OVERHEAD_V4;
}

/** Default container MTU for an underlay MTU: what fits one VXLAN packet (underlay − 50 for IPv4, − 70 for IPv6). */
export function containerMtuFor(underlayMtu: number, family: Family = 4): number {
  assertMtu(underlayMtu, 'underlay mtu');
  const mtu = underlayMtu - vxlanOverhead(family);
  assertMtu(mtu, `container mtu for underlay mtu ${underlayMtu}`);
  return mtu;
}

/** Size of the outer IP packet that carries a full-size container packet. */
export function encapsulatedSize(containerMtu: number, family: Family = 4): number {
  return containerMtu + vxlanOverhead(family);
}

// ---- port settings ----

/** Data device: broadcast and multicast go out (head-end replicated), unknown unicast never does; nothing is learned. */
export const DATA_PORT_FLAGS: BridgePortFlags = { hairpin: false, learning: false, flood: false, mcastFlood: true, bcastFlood: true };
/** Relay device: carries only unicast to static entries. */
export const RELAY_PORT_FLAGS: BridgePortFlags = { hairpin: false, learning: false, flood: false, mcastFlood: false, bcastFlood: false };

// ---- ordering helpers (exported for the diff and tests) ----

export function byKey<T>(key: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
}

export const fdbKey = (e: { dev: string; mac: string; dst: string }): string => (e.mac === ZERO_MAC ? `${e.dev}|${e.mac}|${e.dst}` : `${e.dev}|${e.mac}`);
export const masterKey = (e: { dev: string; mac: string }): string => `${e.dev}|${e.mac}`;
export const neighKey = (e: { dev: string; ip: string }): string => `${e.dev}|${e.ip}`;

/** Sorted copy, each key computed once (decorate, sort, undecorate). */
export function sortedBy<T>(xs: readonly T[], key: (t: T) => string): T[] {
  return xs
    .map((x) => ({ k: key(x), x }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((d) => d.x);
}

/** Sorted copy of a state (stable canonical form: equal states compare equal as JSON). */
export function sortState(s: OverlayState): OverlayState {
  return {
    devices: sortedBy(s.devices, (d) => d.name),
    fdb: sortedBy(s.fdb, (e) => `${e.dev}|${e.mac}|${e.dst}`),
    masterFdb: sortedBy(s.masterFdb, masterKey),
    neigh: sortedBy(s.neigh, neighKey),
    filter: s.filter,
  };
}

// ---- the planner ----

interface Peer {
  readonly peer: string;
  readonly ip: string;
  readonly via?: string;
}

interface Endpoint {
  readonly network: string;
  readonly peer: string;
  readonly mac: string;
  readonly ips: string[];
}

function canonicalMacOrUndefined(mac: string): string | undefined {
  const m = typeof mac === 'string' ? mac.trim().toLowerCase() : '';
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m)) return undefined;
  if ((parseInt(m.slice(0, 2), 16) & 1) === 1 || m === ZERO_MAC) return undefined;
  return m;
}

function endpointIp(s: string): string | undefined {
  if (typeof s !== 'string') return undefined;
  const ip = s.includes('/') ? tryParseIpWithPrefix(s)?.ip : tryParseIp(s);
  return ip ? ipText(ip) : undefined;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function planOverlay(input: OverlayInput, opts: OverlayPlanOptions = {}): OverlayPlan {
  const relay = opts.relay ?? true;
  const notes: OverlayNote[] = [];
  const port = input.port ?? VXLAN_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidConfigError(`vxlan port ${String(port)} is not a port number (1-65535)`);
  assertBatchToken(input.localPeer, 'local peer');
  const local = canonicalIp(input.underlay.ip, 'underlay address');
  const localIp = ipText(local);
  assertIfname(input.underlay.dev, 'underlay device');

  // Networks: names, bridges, MTUs, VNIs (unique across data and relay VNIs).
  const networks = [...input.networks].sort((a, b) => cmp(a.name, b.name));
  const seenNet = new Set<string>();
  const vniOwner = new Map<number, string>();
  const nets = new Map<string, { name: string; bridge: string; mtu: number; vni: number; data: string; relay: string }>();
  for (const n of networks) {
    assertBatchToken(n.name, 'network name');
    if (seenNet.has(n.name)) throw new InvalidConfigError(`network "${n.name}" is listed twice`);
    seenNet.add(n.name);
    assertIfname(n.bridge, `bridge of network "${n.name}"`);
    assertMtu(n.mtu, `mtu of network "${n.name}"`);
    const vni = n.vni ?? vniFor(n.name);
    assertVni(vni, `vni of network "${n.name}"`);
    for (const [v, role] of [[vni, 'VNI'], [relayVniFor(vni), 'relay VNI']] as const) {
      const other = vniOwner.get(v);
      if (other !== undefined) {
        throw new VniConflictError(`network "${n.name}" would use ${role} ${v}, already used by ${other}`, {
          hint: 'set an explicit, distinct "vni" on one of the networks (the same value on every host)',
        });
      }
      vniOwner.set(v, `network "${n.name}"`);
    }
    nets.set(n.name, { name: n.name, bridge: n.bridge, mtu: n.mtu, vni, data: vxlanNameFor(n.name), relay: vxlanRelayNameFor(n.name) });
  }
  const bridges = new Map<string, string>();
  for (const n of nets.values()) {
    const other = bridges.get(n.bridge);
    if (other !== undefined) throw new InvalidConfigError(`networks "${other}" and "${n.name}" name the same bridge ${n.bridge}`);
    bridges.set(n.bridge, n.name);
  }

  // Peers: valid address of the underlay's family; first entry of a peer wins.
  const peers = new Map<string, Peer>();
  for (const p of [...input.peers].sort((a, b) => cmp(a.peer, b.peer) || cmp(a.ip, b.ip) || cmp(a.via ?? '', b.via ?? ''))) {
    if (p.peer === input.localPeer) continue;
    if (peers.has(p.peer)) {
      notes.push({ code: 'PEER_DUPLICATE', peer: p.peer, message: `peer ${p.peer} is listed more than once; using ${peers.get(p.peer)!.ip}` });
      continue;
    }
    const ip = typeof p.ip === 'string' ? tryParseIp(p.ip) : undefined;
    if (!ip || ip.value === 0n) {
      notes.push({ code: 'PEER_INVALID', peer: p.peer, message: `peer ${p.peer} has no usable underlay address ("${String(p.ip)}")` });
      continue;
    }
    if (ip.family !== local.family) {
      notes.push({ code: 'FAMILY_MISMATCH', peer: p.peer, message: `peer ${p.peer} underlay ${ipText(ip)} is IPv${ip.family}, this host's is IPv${local.family}` });
      continue;
    }
    if (ipText(ip) === localIp) {
      notes.push({ code: 'PEER_INVALID', peer: p.peer, message: `peer ${p.peer} claims this host's underlay address ${localIp}` });
      continue;
    }
    peers.set(p.peer, { peer: p.peer, ip: ipText(ip), ...(p.via !== undefined && p.via !== '' ? { via: p.via } : {}) });
  }

  // Routes: direct, or via a direct peer (one relay hop).
  const routes = new Map<string, OverlayPeerRoute>();
  for (const p of peers.values()) {
    if (p.via === undefined) {
      routes.set(p.peer, { peer: p.peer, ip: p.ip, nextHop: p.ip });
      continue;
    }
    const r = peers.get(p.via);
    if (!relay) {
      notes.push({ code: 'RELAY_DISABLED', peer: p.peer, message: `peer ${p.peer} is only reachable via ${p.via}, and relaying is off on this host (no nftables bridge filtering)` });
    } else if (p.via === input.localPeer || p.via === p.peer) {
      notes.push({ code: 'RELAY_INVALID', peer: p.peer, message: `peer ${p.peer} cannot be reached via ${p.via}` });
    } else if (r === undefined) {
      notes.push({ code: 'RELAY_INVALID', peer: p.peer, message: `relay ${p.via} of peer ${p.peer} is not a usable peer` });
    } else if (r.via !== undefined) {
      notes.push({ code: 'RELAY_INVALID', peer: p.peer, message: `relay ${p.via} of peer ${p.peer} is itself relayed (via ${r.via}); only one relay hop is supported` });
    } else {
      routes.set(p.peer, { peer: p.peer, ip: p.ip, nextHop: r.ip, via: r.peer });
    }
  }

  // Endpoints: local ones reserve their MACs and addresses; remote ones of
  // routed peers are programmed, de-duplicated deterministically.
  const endpoints: Endpoint[] = [];
  for (const e of input.endpoints) {
    const mac = canonicalMacOrUndefined(e.mac);
    const ips: string[] = [];
    let bad = mac === undefined || !Array.isArray(e.ips);
    for (const s of Array.isArray(e.ips) ? e.ips : []) {
      const ip = endpointIp(s);
      if (ip === undefined) bad = true;
      else if (!ips.includes(ip)) ips.push(ip);
    }
    if (bad || mac === undefined) {
      notes.push({ code: 'ENDPOINT_INVALID', peer: e.peer, network: e.network, message: `endpoint ${String(e.mac)} of ${e.peer} in ${e.network} has an invalid MAC or address` });
      continue;
    }
    endpoints.push({ network: e.network, peer: e.peer, mac, ips: ips.sort() });
  }
  // Local endpoints first, then by network, peer and MAC: who wins a duplicate is the same on every host.
  const ordered = sortedBy(endpoints, (e) => `${e.peer === input.localPeer ? 0 : 1}\u0000${e.network}\u0000${e.peer}\u0000${e.mac}`);

  const devices: VxlanDevice[] = [];
  const fdb: FdbEntry[] = [];
  const masterFdb: MasterFdbEntry[] = [];
  const neigh: NeighEntry[] = [];
  for (const n of nets.values()) {
    const base = { network: n.name, port, local: localIp, dev: input.underlay.dev, learning: false, proxy: true, mtu: n.mtu, master: n.bridge, up: true } as const;
    devices.push({ ...base, name: n.data, role: 'data', vni: n.vni, portFlags: DATA_PORT_FLAGS });
    if (relay) devices.push({ ...base, name: n.relay, role: 'relay', vni: relayVniFor(n.vni), portFlags: RELAY_PORT_FLAGS });
  }

  const macOwner = new Map<string, Endpoint>(); // network|mac
  const ipOwner = new Map<string, Endpoint>(); // network|ip
  const merged = new Map<string, Endpoint>(); // network|peer|mac -> endpoint with merged ips
  let programmed = 0;
  for (const e of ordered) {
    const n = nets.get(e.network);
    const isLocal = e.peer === input.localPeer;
    if (n === undefined) {
      if (!isLocal) notes.push({ code: 'NETWORK_UNKNOWN', peer: e.peer, network: e.network, mac: e.mac, message: `endpoint ${e.mac} of ${e.peer} is in network "${e.network}", which this host does not have` });
      continue;
    }
    const mk = `${e.network}|${e.mac}`;
    const owner = macOwner.get(mk);
    if (owner !== undefined && owner.peer !== e.peer) {
      notes.push({ code: 'DUPLICATE_MAC', peer: e.peer, network: e.network, mac: e.mac, message: `MAC ${e.mac} in ${e.network} is claimed by ${owner.peer} and ${e.peer}; keeping ${owner.peer}` });
      continue;
    }
    const route = isLocal ? undefined : routes.get(e.peer);
    if (!isLocal && route === undefined) {
      if (!peers.has(e.peer)) notes.push({ code: 'PEER_UNKNOWN', peer: e.peer, network: e.network, mac: e.mac, message: `endpoint ${e.mac} is on ${e.peer}, which is not a usable peer` });
      continue;
    }
    const ips: string[] = [];
    for (const ip of e.ips) {
      const ik = `${e.network}|${ip}`;
      const o = ipOwner.get(ik);
      if (o !== undefined && (o.peer !== e.peer || o.mac !== e.mac)) {
        notes.push({ code: 'DUPLICATE_IP', peer: e.peer, network: e.network, mac: e.mac, message: `address ${ip} in ${e.network} is claimed by ${o.mac} on ${o.peer} and ${e.mac} on ${e.peer}; keeping ${o.mac}` });
        continue;
      }
      ipOwner.set(ik, e);
      ips.push(ip);
    }
    macOwner.set(mk, e);
    if (isLocal) continue;
    const key = `${e.network}|${e.peer}|${e.mac}`;
    const prev = merged.get(key);
    if (prev) {
      for (const ip of ips) if (!prev.ips.includes(ip)) prev.ips.push(ip);
    } else {
      merged.set(key, { ...e, ips });
    }
  }

  const replicate = new Set<string>(); // dev|dst
  for (const e of merged.values()) {
    const n = nets.get(e.network)!;
    const route = routes.get(e.peer)!;
    const dev = route.via === undefined ? n.data : n.relay;
    fdb.push({ dev, mac: e.mac, dst: route.nextHop, permanent: true });
    masterFdb.push({ dev, mac: e.mac, static: true });
    for (const ip of e.ips) {
      neigh.push({ dev: n.data, ip, mac: e.mac, permanent: true });
      // Unicast ARP/ND refreshes go to the port holding the MAC: answer them there too.
      if (dev !== n.data) neigh.push({ dev, ip, mac: e.mac, permanent: true });
    }
    if (route.via === undefined) replicate.add(`${n.data}|${route.ip}`);
    programmed++;
  }
  for (const k of replicate) {
    const [dev, dst] = k.split('|') as [string, string];
    fdb.push({ dev, mac: ZERO_MAC, dst, permanent: true });
  }

  const rendered = renderOverlayFilter(devices);
  const desired = sortState({ devices, fdb, masterFdb, neigh, filter: rendered?.filter ?? null });
  return {
    desired,
    notes: notes.sort(byKey((n) => `${n.code}|${n.peer ?? ''}|${n.network ?? ''}|${n.mac ?? ''}|${n.message}`)),
    routes: [...routes.values()].sort(byKey((r) => r.peer)),
    endpoints: programmed,
  };
}

/** The ownership alias a planned device carries. */
export function aliasOf(d: Pick<VxlanDevice, 'network' | 'role'>): string {
  return vxlanAlias(d.network, d.role);
}
