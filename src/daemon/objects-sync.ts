/**
 * Replicates the operator's IPAM objects (subnets, pools, reservations)
 * across the cluster (docs/cluster.md "Cluster-wide objects"). A local API
 * change is written to the `cluster.objects` LWW map and gossiped; a change
 * received from a peer is applied through the same IpamService calls an API
 * request would use, so it is validated the same way. What cannot be applied
 * here (a subnet deleted elsewhere while containers use it here, an overlap
 * with a local subnet) is kept as a conflict: logged, listed in status, and
 * retried at every later change and periodically.
 */
import type { Store } from '../adapters/store/store.js';
import { canonicalJson, OBJECTS_CHANNEL, objectKey, parseObjectKey, poolInput, subnetInput, subnetUpdate, type SubnetInputForm } from '../core/cluster/objects.js';
import { toWeftError } from '../core/errors.js';
import { type LwwEntry, LwwMap, LwwMapData } from '../core/mesh/gossip/lww-map.js';
import type { PeerId } from '../core/mesh/index.js';
import type { IpamService } from './ipam-service.js';
import type { Logger } from './logger.js';
import type { MeshService } from './mesh-service.js';

const PERSIST_KEY = 'cluster.objects';

export interface ObjectConflict {
  readonly key: string;
  readonly reason: string;
  readonly since: string;
}

/** The LwwMap plus a hook on every merged change (the plain map only stores them). */
class ObjectsChannel extends LwwMap {
  constructor(self: PeerId, clock: () => number, private readonly changed: (d: LwwMapData) => void) {
    super(self, clock);
  }

  override mergeData(d: LwwMapData): LwwMapData | undefined {
    const out = super.mergeData(d);
    if (out) this.changed(out);
    return out;
  }
}

export class ObjectsSync {
  readonly channel: ObjectsChannel;
  private applying = false;
  private readonly conflicts = new Map<string, ObjectConflict>();
  private retryTimer?: NodeJS.Timeout;

  constructor(private readonly store: Store, private readonly ipam: IpamService, mesh: MeshService, private readonly log: Logger, now: () => number = Date.now) {
    this.channel = new ObjectsChannel(mesh.peer, now, (d) => this.onRemote(d));
    // What we knew before a restart: our own writes must survive even if no peer has them yet.
    const saved = store.read((tx) => tx.getMeta<[string, string | null, number, string][]>(PERSIST_KEY));
    if (saved) {
      const m = new Map<string, LwwEntry>();
      for (const [k, value, ts, origin] of saved) m.set(k, { value, ts, origin });
      this.applying = true;
      try { this.channel.mergeData(new LwwMapData(m)); } finally { this.applying = false; }
    }
    mesh.registerChannel(OBJECTS_CHANNEL, this.channel);
    ipam.onMutation((kind, id, value) => {
      if (this.applying) return;
      const key = objectKey(kind, id);
      if (value === null) this.channel.delete(key); else this.channel.set(key, canonicalJson(value));
      this.conflicts.delete(key);
      this.persist();
    });
  }

  start(retryMs: number): void {
    if (retryMs > 0) {
      this.retryTimer = setInterval(() => this.retryConflicts(), retryMs);
      this.retryTimer.unref();
    }
  }

  stop(): void {
    if (this.retryTimer) clearInterval(this.retryTimer);
  }

  private persist(): void {
    const g = this.channel.gossip();
    const list = g ? [...g.entries].map(([k, e]) => [k, e.value, e.ts, e.origin]) : [];
    this.store.write((tx) => tx.putMeta(PERSIST_KEY, list));
  }

  private onRemote(d: LwwMapData): void {
    if (this.applying) return;
    for (const [key, e] of d.entries) this.applyOne(key, e.value);
    this.persist();
  }

  private retryConflicts(): void {
    const g = this.channel.gossip();
    for (const key of [...this.conflicts.keys()]) {
      const e = g?.entries.get(key);
      if (e) this.applyOne(key, e.value); else this.conflicts.delete(key);
    }
  }

  /** Makes the local store match one replicated value (null: deleted). */
  private applyOne(key: string, value: string | null): void {
    const k = parseObjectKey(key);
    if (!k) { this.log.warn('ignoring a replicated object with an unknown key', { key }); return; }
    this.applying = true;
    try {
      const input = value === null ? null : JSON.parse(value) as unknown;
      if (k.kind === 'subnet') this.applySubnet(k.id, input as SubnetInputForm | null);
      else if (k.kind === 'pool') this.applyPool(k.id, input);
      else this.applyReservation(k.id, input);
      if (this.conflicts.delete(key)) this.log.info('replicated object applied after an earlier conflict', { key });
    } catch (e) {
      const reason = toWeftError(e).message;
      if (this.conflicts.get(key)?.reason !== reason) this.log.warn('a replicated IPAM object cannot be applied here; keeping the local state', { key, reason });
      this.conflicts.set(key, { key, reason, since: this.conflicts.get(key)?.since ?? new Date().toISOString() });
    } finally {
      this.applying = false;
    }
  }

  private applySubnet(name: string, want: SubnetInputForm | null): void {
    const have = this.ipam.listSubnets().find((u) => u.subnet.name === name)?.subnet;
    if (want === null) { if (have) this.ipam.deleteSubnet(name); return; }
    if (!have) { this.ipam.createSubnet(want); return; }
    if (canonicalJson(subnetInput(have)) === canonicalJson(want)) return;
    if (have.cidr !== want.cidr) {
      // A subnet redefined with another prefix: only possible where nothing uses the old one.
      const n = this.ipam.inUse(name);
      if (n > 0) throw new Error(`subnet "${name}" is ${want.cidr} elsewhere but ${have.cidr} here, with ${n} address(es) in use`);
      this.ipam.deleteSubnet(name);
      this.ipam.createSubnet(want);
      return;
    }
    this.ipam.updateSubnet(name, subnetUpdate(want));
  }

  private applyPool(name: string, want: unknown): void {
    const have = this.ipam.listPools().find((p) => p.pool.name === name);
    if (want === null) { if (have) this.ipam.deletePool(name); return; }
    if (have && canonicalJson(poolInput(have.pool)) === canonicalJson(want)) return;
    if (have) this.ipam.deletePool(name);
    this.ipam.createPool(want);
  }

  private applyReservation(id: string, want: unknown): void {
    const [subnet, ip] = id.split('/') as [string, string];
    if (want === null) { this.ipam.dropReservation(subnet, ip); return; }
    this.ipam.reserve(want);
  }

  status(): { objects: number; conflicts: ObjectConflict[] } {
    const g = this.channel.gossip();
    return { objects: g ? [...g.entries.values()].filter((e) => e.value !== null).length : 0, conflicts: [...this.conflicts.values()] };
  }
}
