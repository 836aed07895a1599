/**
 * The `cluster.endpoints` gossip channel: which containers each host has,
 * with the MAC and addresses the overlay needs to reach them (FDB and
 * neighbour entries) and what a cluster-wide `weft ps` shows.
 *
 * Each host is the only writer of its own record, so no wall clock is
 * needed: a record carries (incarnation, seq) where the incarnation is a
 * counter the host persists and bumps at every start, and seq counts changes
 * within one run. The larger pair wins. A host that was removed by an
 * operator (`weft rmpeer`) gets a tombstone written one step past the last
 * record seen; if the host is in fact alive, its next start (new
 * incarnation) or next change (seq + 1, and a live record wins a tie) puts
 * it back.
 *
 * Payload (UTF-8 JSON, docs/mesh.md "cluster.endpoints"):
 * `{"v":1,"h":[{"p":PEER,"n":NICKNAME,"i":INC,"s":SEQ,"u":UNDERLAY|null,"x":REMOVED,"e":[[network,mac,[ip…],containerId,ifname,identity|null]…]}…]}`.
 */
import { MeshMalformedError } from '../errors.js';
import { exactKeys, isPlainObject, jsonPayload, parseJsonPayload } from '../mesh/gossip/json-payload.js';
import type { GossipChannelState, GossipData, GossipSender } from '../mesh/gossip/interfaces.js';
import { isNickname, isPeerId, type PeerId } from '../mesh/peer-id.js';
import { tryParseIp } from '../ip/addr.js';

export const ENDPOINTS_CHANNEL = 'cluster.endpoints';
export const ENDPOINTS_WIRE_VERSION = 1;
/** One host's record must fit one frame with room to spare (≈150 bytes an endpoint). */
export const MAX_ENDPOINTS_PER_HOST = 4096;
const CHUNK_BYTES = 256 * 1024;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,252}$/;

export interface ClusterEndpoint {
  readonly network: string;
  readonly mac: string;
  /** Addresses without prefix. */
  readonly ips: readonly string[];
  readonly containerId: string;
  readonly ifname: string;
  readonly identity?: string;
}

export interface HostRecord {
  readonly peer: PeerId;
  /** The host's nickname (so `weft rmpeer NAME` and `weft ps --cluster` can name a host the topology has forgotten). */
  readonly nickname: string;
  readonly incarnation: number;
  readonly seq: number;
  /** The host's underlay (VTEP) address; null when it has none (an observer-only router). */
  readonly underlay: string | null;
  readonly removed: boolean;
  readonly endpoints: readonly ClusterEndpoint[];
}

/** Total order of one host's records: (incarnation, seq), and a live record beats a tombstone of the same step. */
export function recordNewer(a: HostRecord, b: HostRecord | undefined): boolean {
  if (b === undefined) return true;
  if (a.incarnation !== b.incarnation) return a.incarnation > b.incarnation;
  if (a.seq !== b.seq) return a.seq > b.seq;
  return !a.removed && b.removed;
}

export class EndpointsData implements GossipData<EndpointsData> {
  constructor(readonly hosts: ReadonlyMap<PeerId, HostRecord>) {}

  encode(): Uint8Array[] {
    const out: Uint8Array[] = [];
    let batch: unknown[] = [];
    let size = 0;
    for (const r of this.hosts.values()) {
      const item = { p: r.peer, n: r.nickname, i: r.incarnation, s: r.seq, u: r.underlay, x: r.removed, e: r.endpoints.map((e) => [e.network, e.mac, e.ips, e.containerId, e.ifname, e.identity ?? null]) };
      const s = 96 + r.endpoints.length * 160;
      if (batch.length > 0 && size + s > CHUNK_BYTES) {
        out.push(jsonPayload({ v: ENDPOINTS_WIRE_VERSION, h: batch }));
        batch = [];
        size = 0;
      }
      batch.push(item);
      size += s;
    }
    if (batch.length > 0) out.push(jsonPayload({ v: ENDPOINTS_WIRE_VERSION, h: batch }));
    return out;
  }

  merge(other: EndpointsData): EndpointsData {
    const m = new Map(this.hosts);
    for (const [p, r] of other.hosts) if (recordNewer(r, m.get(p))) m.set(p, r);
    return new EndpointsData(m);
  }

  static decode(payload: Uint8Array): EndpointsData {
    const v = parseJsonPayload(payload, ENDPOINTS_CHANNEL);
    if (!isPlainObject(v)) throw new MeshMalformedError(`${ENDPOINTS_CHANNEL}: not an object`);
    exactKeys(v, ['v', 'h'], ENDPOINTS_CHANNEL);
    if (v['v'] !== ENDPOINTS_WIRE_VERSION) throw new MeshMalformedError(`${ENDPOINTS_CHANNEL}: unsupported version ${String(v['v'])}`);
    const list = v['h'];
    if (!Array.isArray(list)) throw new MeshMalformedError(`${ENDPOINTS_CHANNEL}: "h" is not an array`);
    const m = new Map<PeerId, HostRecord>();
    for (const item of list) {
      const r = decodeRecord(item);
      if (recordNewer(r, m.get(r.peer))) m.set(r.peer, r);
    }
    return new EndpointsData(m);
  }
}

function bad(msg: string): never {
  throw new MeshMalformedError(`${ENDPOINTS_CHANNEL}: ${msg}`);
}

function counter(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`${what} is not a non-negative integer`);
  return v;
}

function decodeRecord(item: unknown): HostRecord {
  if (!isPlainObject(item)) bad('host record is not an object');
  exactKeys(item, ['p', 'n', 'i', 's', 'u', 'x', 'e'], `${ENDPOINTS_CHANNEL} host record`);
  const peer = item['p'];
  if (!isPeerId(peer)) bad('bad peer id');
  const nickname = item['n'];
  if (!isNickname(nickname)) bad(`bad nickname of ${peer}`);
  const underlay = item['u'];
  if (underlay !== null && (typeof underlay !== 'string' || !tryParseIp(underlay))) bad(`bad underlay address of ${peer}`);
  if (typeof item['x'] !== 'boolean') bad(`"x" of ${peer} is not a boolean`);
  const eps = item['e'];
  if (!Array.isArray(eps)) bad(`endpoints of ${peer} are not an array`);
  if (eps.length > MAX_ENDPOINTS_PER_HOST) bad(`${peer} announces ${eps.length} endpoints (max ${MAX_ENDPOINTS_PER_HOST})`);
  return {
    peer, nickname, incarnation: counter(item['i'], 'incarnation'), seq: counter(item['s'], 'seq'), underlay: underlay as string | null,
    removed: item['x'], endpoints: eps.map((e) => decodeEndpoint(e, peer)),
  };
}

function decodeEndpoint(e: unknown, peer: string): ClusterEndpoint {
  if (!Array.isArray(e) || e.length !== 6) bad(`endpoint of ${peer} is not [network, mac, ips, containerId, ifname, identity]`);
  const [network, mac, ips, containerId, ifname, identity] = e as unknown[];
  if (typeof network !== 'string' || !NAME_RE.test(network)) bad(`bad network name from ${peer}`);
  if (typeof mac !== 'string' || !MAC_RE.test(mac)) bad(`bad MAC from ${peer}`);
  if (!Array.isArray(ips) || ips.length > 16 || !ips.every((ip) => typeof ip === 'string' && tryParseIp(ip) !== undefined)) bad(`bad addresses from ${peer}`);
  if (typeof containerId !== 'string' || containerId.length === 0 || containerId.length > 256) bad(`bad container id from ${peer}`);
  if (typeof ifname !== 'string' || ifname.length === 0 || ifname.length > 15) bad(`bad ifname from ${peer}`);
  if (identity !== null && (typeof identity !== 'string' || identity.length > 512)) bad(`bad identity from ${peer}`);
  return { network, mac, ips: ips as string[], containerId, ifname, ...(identity !== null ? { identity: identity as string } : {}) };
}

/** Canonical form, so that publishing the same set twice is a no-op. */
function canonical(eps: readonly ClusterEndpoint[]): string {
  // One string per endpoint, then a plain sort: O(n log n) string compares, no re-serialising in the comparator.
  return eps.map((e) => JSON.stringify([e.network, e.mac, [...e.ips].sort(), e.containerId, e.ifname, e.identity ?? null])).sort().join('\n');
}

export class EndpointsChannel implements GossipChannelState<EndpointsData> {
  private readonly hosts = new Map<PeerId, HostRecord>();
  private sender: GossipSender<EndpointsData> | undefined;
  private seq = 0;
  private lastCanonical: string | undefined;
  private listeners: (() => void)[] = [];

  /** `incarnation` must grow at every start of this router (the daemon persists it). */
  constructor(private readonly self: PeerId, private readonly nickname: string, private readonly incarnation: number) {}

  setSender(sender: GossipSender<EndpointsData>): void {
    this.sender = sender;
  }

  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  /** Replaces this host's record; broadcasts only when it changed. */
  publish(underlay: string | null, endpoints: readonly ClusterEndpoint[]): void {
    if (endpoints.length > MAX_ENDPOINTS_PER_HOST) throw new RangeError(`at most ${MAX_ENDPOINTS_PER_HOST} endpoints per host can be announced`);
    const c = `${underlay ?? ''}|${canonical(endpoints)}`;
    const mine = this.hosts.get(this.self);
    if (c === this.lastCanonical && mine && !mine.removed) return;
    this.lastCanonical = c;
    this.seq = Math.max(this.seq + 1, mine && mine.incarnation === this.incarnation ? mine.seq + 1 : 0);
    const r: HostRecord = { peer: this.self, nickname: this.nickname, incarnation: this.incarnation, seq: this.seq, underlay, removed: false, endpoints: [...endpoints] };
    this.hosts.set(this.self, r);
    this.changed();
    this.sender?.gossipBroadcast(new EndpointsData(new Map([[this.self, r]])));
  }

  /** Operator removal of a host that is gone (rmpeer): a tombstone one step past what we know. */
  remove(peer: PeerId): boolean {
    if (peer === this.self) return false;
    const old = this.hosts.get(peer);
    if (!old || old.removed) return false;
    const r: HostRecord = { ...old, seq: old.seq + 1, removed: true, endpoints: [] };
    this.hosts.set(peer, r);
    this.changed();
    this.sender?.gossipBroadcast(new EndpointsData(new Map([[peer, r]])));
    return true;
  }

  /** The live record of the host with this nickname (not this host). */
  byNickname(nickname: string): HostRecord | undefined {
    return [...this.hosts.values()].find((r) => !r.removed && r.nickname === nickname && r.peer !== this.self);
  }

  /** Live host records, this host's included. */
  records(): HostRecord[] {
    return [...this.hosts.values()].filter((r) => !r.removed);
  }

  get(peer: PeerId): HostRecord | undefined {
    const r = this.hosts.get(peer);
    return r && !r.removed ? r : undefined;
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  mergeData(d: EndpointsData): EndpointsData | undefined {
    const changed = new Map<PeerId, HostRecord>();
    for (const [p, r] of d.hosts) {
      const cur = this.hosts.get(p);
      if (!recordNewer(r, cur)) continue;
      if (p === this.self) {
        // Our own record from an earlier life, or a tombstone someone wrote for us:
        // we are alive, so re-assert the current record one step past it.
        if (r.incarnation > this.incarnation) continue; // cannot happen unless the data dir was copied; never go backwards
        this.seq = Math.max(this.seq, r.seq);
        if (cur) { this.lastCanonical = undefined; this.publish(cur.underlay, cur.endpoints); }
        continue;
      }
      this.hosts.set(p, r);
      changed.set(p, r);
    }
    if (changed.size === 0) return undefined;
    this.changed();
    return new EndpointsData(changed);
  }

  gossip(): EndpointsData | undefined {
    return this.hosts.size > 0 ? new EndpointsData(new Map(this.hosts)) : undefined;
  }

  onGossip(payload: Uint8Array): EndpointsData | undefined {
    return this.mergeData(EndpointsData.decode(payload));
  }

  onGossipBroadcast(_src: PeerId, payload: Uint8Array): void {
    this.mergeData(EndpointsData.decode(payload));
  }

  onGossipUnicast(_src: PeerId, payload: Uint8Array): void {
    this.mergeData(EndpointsData.decode(payload));
  }
}
