/**
 * The narrow interface between the replicated cluster state and its users
 * (the overlay data plane, `weft status`, cluster-wide `weft ps`, the IPAM
 * ring). Gossip over the mesh implements it today (src/daemon/cluster-service.ts);
 * a datastore on an existing distributed engine (etcd) can implement the
 * same interface later without the data plane or IPAM noticing.
 */
import type { MeshStatus, PeerId } from '../mesh/index.js';
import type { ClusterEndpoint, HostRecord } from './endpoints.js';

export interface ClusterHost {
  readonly peer: PeerId;
  readonly nickname: string;
  /** Underlay (VTEP) address the host announced; null when it announced none yet. */
  readonly underlay: string | null;
  readonly self: boolean;
  /** Reachable through the mesh, directly or relayed. */
  readonly reachable: boolean;
  /** We hold a control connection to it. */
  readonly direct: boolean;
  /** For a relayed host: the neighbour our traffic to it goes through. */
  readonly via?: PeerId;
  /** The hosts it holds control connections to (topology), for relay decisions. */
  readonly connections: readonly PeerId[];
  readonly endpoints: readonly ClusterEndpoint[];
}

export interface ClusterState {
  readonly self: PeerId;
  /** Every host known (this one first), with its endpoints. */
  hosts(): ClusterHost[];
  /** Announces this host's underlay address and containers to the cluster. */
  publishEndpoints(underlay: string | null, endpoints: readonly ClusterEndpoint[]): void;
  /** Called (coalesced by the caller) whenever hosts() may have changed. */
  onChange(fn: () => void): void;
}

/**
 * Joins the mesh's view (who is reachable, how) with the endpoint records
 * (what each host has). A host with a record but unknown to the topology
 * (removed, or not yet learnt) is listed unreachable so `weft ps` still shows
 * it; the overlay programs only reachable hosts.
 */
export function clusterHosts(self: PeerId, selfNickname: string, mesh: Pick<MeshStatus, 'peers'>, records: readonly HostRecord[]): ClusterHost[] {
  const byPeer = new Map(records.map((r) => [r.peer, r]));
  const mine = byPeer.get(self);
  const out: ClusterHost[] = [{ peer: self, nickname: selfNickname, underlay: mine?.underlay ?? null, self: true, reachable: true, direct: true, connections: mesh.peers.filter((p) => p.direct).map((p) => p.peer), endpoints: mine?.endpoints ?? [] }];
  const seen = new Set<PeerId>([self]);
  for (const p of [...mesh.peers].sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))) {
    seen.add(p.peer);
    const r = byPeer.get(p.peer);
    out.push({
      peer: p.peer, nickname: p.nickname, underlay: r?.underlay ?? null, self: false, reachable: p.reachable, direct: p.direct,
      ...(p.reachable && !p.direct && p.nextHop !== undefined ? { via: p.nextHop } : {}), connections: p.connections, endpoints: r?.endpoints ?? [],
    });
  }
  for (const r of records) {
    if (seen.has(r.peer)) continue;
    out.push({ peer: r.peer, nickname: r.nickname, underlay: r.underlay, self: false, reachable: false, direct: false, connections: [], endpoints: r.endpoints });
  }
  return out;
}

/**
 * Whether this host needs the overlay's relay machinery (a relay VXLAN
 * device per network and the loop-guard table, docs/overlay.md): when it
 * reaches a host only through another, or when two hosts it is directly
 * connected to are not connected to each other (they may relay through
 * it). Without either, the relay devices and the per-packet filter chain
 * are left out: they cost ~15 % of bulk throughput (docs/benchmarks.md).
 */
export function relayNeeded(hosts: readonly ClusterHost[]): boolean {
  const direct = hosts.filter((h) => !h.self && h.reachable && h.direct);
  if (hosts.some((h) => !h.self && h.reachable && h.via !== undefined)) return true;
  for (let i = 0; i < direct.length; i++) {
    for (let j = i + 1; j < direct.length; j++) {
      const a = direct[i]!;
      const b = direct[j]!;
      if (!a.connections.includes(b.peer) && !b.connections.includes(a.peer)) return true;
    }
  }
  return false;
}

/**
 * Networks this host must carry as a relay although it may run no container
 * of them: those with containers on two of its direct neighbours that are not
 * connected to each other (either may send the other's traffic through this
 * host). When several hosts could relay, each carries the network: a superset
 * of what routing picks, at the cost of an idle bridge and devices.
 */
export function relayNetworks(hosts: readonly ClusterHost[]): string[] {
  const direct = hosts.filter((h) => !h.self && h.reachable && h.direct);
  const nets = direct.map((h) => new Set(h.endpoints.map((e) => e.network)));
  const out = new Set<string>();
  for (let i = 0; i < direct.length; i++) {
    for (let j = i + 1; j < direct.length; j++) {
      const a = direct[i]!;
      const b = direct[j]!;
      if (a.connections.includes(b.peer) || b.connections.includes(a.peer)) continue;
      for (const n of nets[i]!) if (nets[j]!.has(n)) out.add(n);
    }
  }
  return [...out].sort();
}

/**
 * Whether every underlay address in `awaited` belongs to a host we are
 * directly connected to again and whose endpoint record has arrived (its
 * record carries the underlay): the overlay's start-up grace ends then
 * (src/daemon/overlay-service.ts). Every address the kernel forwards to is
 * a direct neighbour's (a peer on the data device, a relay on the relay
 * device); one known only through another host is still converging, and
 * planning then would move its containers to a relay for a moment.
 */
export function heardFromAll(awaited: ReadonlySet<string>, hosts: readonly ClusterHost[]): boolean {
  const heard = new Set(hosts.filter((h) => !h.self && h.reachable && h.direct && h.underlay !== null).map((h) => h.underlay!));
  for (const ip of awaited) if (!heard.has(ip)) return false;
  return true;
}
