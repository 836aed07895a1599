/**
 * Keeps the host side in step with the store: one bridge per weft network
 * carrying the gateways of the subnets bound to it, and weft's nftables
 * table. Desired state comes from src/core/plan/desired.ts; the DataPlane
 * diffs and applies it idempotently.
 */
import type { Store, StoreTx } from '../adapters/store/store.js';
import type { BridgeSpec, DataPlane } from '../core/dataplane/types.js';
import { ConflictError, toWeftError } from '../core/errors.js';
import type { Subnet } from '../core/ipam/model.js';
import { type BypassOptions, type SubnetBinding, desiredBridges, desiredNat, natIsEmpty } from '../core/plan/desired.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { Logger } from './logger.js';

const BINDING = 'subnetBridge/';

/** A subnet binding an ADD created or moved, with what was there before (to restore on rollback). */
export interface BindingChange {
  readonly subnet: string;
  readonly bridge: string;
  readonly previous?: SubnetBinding;
}

export class HostNetwork {
  private readonly bridgeLock = new KeyedMutex();
  private natRun: Promise<void> = Promise.resolve();
  private natDirty = false;
  private natApplied = false;
  /** The last NAT sync failed: the table may be stale, so the next change must resync even if it looks unneeded. */
  natFailed = false;
  private readonly forwarding = new Set<4 | 6>();
  /**
   * Bridges ensured by this process, with the spec they were ensured to: an
   * ADD on an unchanged bridge costs no kernel read. A bridge deleted behind
   * our back shows up as a failed attach (which forgets the entry and
   * retries) or is repaired by the periodic reconcile.
   */
  private readonly ensured = new Map<string, { key: string; mac: string }>();
  /**
   * Bridges of networks this host relays for others without running a
   * container of them (bridge -> network): kept, bare while no container
   * uses them, instead of removed as unused.
   */
  private readonly relayHeld = new Map<string, string>();
  /** Ready attachments masquerading each source CIDR; built from the store on first use. */
  private masqUsers?: Map<string, number>;

  constructor(
    private readonly store: Store,
    private readonly dp: DataPlane,
    private readonly log: Logger,
    private readonly mtu: number,
    /** The conntrack bypass of the NAT table (undefined: off, `--no-conntrack-bypass`). */
    private readonly bypass: () => BypassOptions | undefined = () => ({}),
    /** Whether an overlay runs here that will remove its own VXLAN ports (else a bridge's ports do not keep it). */
    private readonly overlayActive: () => boolean = () => false,
  ) {}

  /**
   * Records (inside the caller's transaction) that `subnet` is served by
   * `bridge`. A subnet's gateway can live on one bridge only: serving it
   * from two would make two host routes for one prefix.
   */
  bindSubnet(tx: StoreTx, subnet: string, bridge: string, network: string): BindingChange | undefined {
    const cur = tx.getMeta<SubnetBinding>(`${BINDING}${subnet}`);
    if (cur && cur.bridge !== bridge) {
      const users = tx.listAttachments().filter((a) => a.bridge === cur.bridge && a.ips.some((i) => i.subnet === subnet));
      if (users.length > 0) throw new ConflictError(`subnet "${subnet}" is already served by bridge ${cur.bridge} of network "${cur.network}"`, { hint: 'use another subnet for this network, or remove the containers of the other network' });
    }
    if (cur && cur.bridge === bridge) return undefined;
    tx.putMeta(`${BINDING}${subnet}`, { subnet, bridge, network } satisfies SubnetBinding);
    return { subnet, bridge, ...(cur ? { previous: cur } : {}) };
  }

  /**
   * Undoes a bindSubnet of a failed ADD (inside the rollback's transaction,
   * after its attachment is gone): the previous binding comes back unless
   * some other attachment now uses the subnet on that bridge. Without this a
   * failed ADD would leave the subnet's gateway on the bridge.
   */
  unbindSubnet(tx: StoreTx, change: BindingChange): void {
    const cur = tx.getMeta<SubnetBinding>(`${BINDING}${change.subnet}`);
    if (!cur || cur.bridge !== change.bridge) return;
    if (tx.listAttachments().some((a) => a.bridge === change.bridge && a.ips.some((i) => i.subnet === change.subnet))) return;
    if (change.previous) tx.putMeta(`${BINDING}${change.subnet}`, change.previous);
    else tx.deleteMeta(`${BINDING}${change.subnet}`);
  }

  /**
   * Under the bridge's lock: when no attachment uses the bridge, drops its
   * bindings (in the same transaction as the check, so an ADD that commits
   * later binds again and recreates the bridge) and returns true.
   */
  private unbindIfUnused(name: string): boolean {
    return this.store.write((tx) => {
      if (tx.listAttachments().some((a) => a.bridge === name)) return false;
      for (const x of this.bindings(tx)) if (x.bridge === name) tx.deleteMeta(`${BINDING}${x.subnet}`);
      return true;
    });
  }

  /**
   * After a failed ADD: removes the bridge when nothing uses it any more,
   * else brings its addresses back to what the store says (a gateway the
   * failed ADD added goes away).
   */
  async settleBridge(name: string): Promise<void> {
    await this.bridgeLock.run(name, async () => {
      if (this.unbindIfUnused(name)) {
        const network = this.relayHeld.get(name);
        if (network !== undefined) { await this.ensureSpec(this.relaySpec(name, network)); return; }
        this.ensured.delete(name);
        await this.dp.removeBridge(name);
        return;
      }
      const spec = this.store.read((tx) => this.bridgeSpec(tx, name));
      if (spec) await this.ensureSpec(spec);
    });
  }

  /** A relayed network's bridge: what the store wants while containers use it, else a bare bridge (no gateway: it only carries frames). */
  private relaySpec(bridge: string, network: string): BridgeSpec {
    const bound = this.store.read((tx) => {
      if (!tx.listAttachments().some((a) => a.bridge === bridge)) return undefined;
      return this.bridgeSpec(tx, bridge);
    });
    return bound ?? { name: bridge, network, mtu: this.mtu, addresses: [] };
  }

  /**
   * Makes the relay-held bridges exactly `nets` (the overlay's relay-only
   * networks): each is ensured against the kernel (this repairs one deleted
   * by hand), and one no longer relayed is removed unless a container uses it.
   */
  async holdRelayBridges(nets: readonly { readonly network: string; readonly bridge: string }[]): Promise<void> {
    const want = new Map(nets.map((n) => [n.bridge, n.network]));
    for (const [bridge, network] of want) {
      this.relayHeld.set(bridge, network);
      await this.bridgeLock.run(bridge, async () => {
        const spec = this.relaySpec(bridge, network);
        // As for ADDs: the kernel is read only when the spec changed; the periodic reconcile repairs.
        if (this.ensured.get(bridge)?.key === JSON.stringify(spec)) return;
        // One bridge that cannot be made must not hold up the others: the overlay skips its network.
        await this.ensureSpec(spec).catch((e: unknown) => this.log.warn('relay bridge could not be ensured', { bridge, network, err: toWeftError(e).message }));
      });
    }
    for (const bridge of [...this.relayHeld.keys()]) {
      if (want.has(bridge)) continue;
      this.relayHeld.delete(bridge);
      await this.bridgeLock.run(bridge, async () => {
        // Held again meanwhile, or used by a container: keep it.
        if (this.relayHeld.has(bridge) || !this.unbindIfUnused(bridge)) return;
        this.ensured.delete(bridge);
        await this.dp.removeBridge(bridge);
        this.log.info('relay bridge removed: no longer relaying its network', { bridge });
      });
    }
  }

  /** One bridge's desired state, reading only the subnets bound to it (an ADD asks for it every time). */
  private bridgeSpec(tx: StoreTx, name: string): BridgeSpec | undefined {
    const mine = this.bindings(tx).filter((b) => b.bridge === name);
    const subnets = new Map<string, Subnet>();
    for (const b of mine) { const s = tx.getSubnet(b.subnet); if (s) subnets.set(s.name, s); }
    return desiredBridges(mine, subnets, this.mtu)[0];
  }

  bindings(tx: StoreTx): SubnetBinding[] {
    return tx.listMeta<SubnetBinding>(BINDING).map((m) => m.value);
  }

  private subnetsMap(tx: StoreTx): Map<string, Subnet> {
    return new Map(tx.listSubnets().map((s) => [s.name, s]));
  }

  /** Ensures one bridge exists as the store says it should; returns its MAC. */
  async ensureBridge(name: string): Promise<{ mac: string }> {
    return this.bridgeLock.run(name, async () => {
      const spec = this.store.read((tx) => this.bridgeSpec(tx, name));
      if (!spec) throw new ConflictError(`internal: no subnet is bound to bridge ${name}`);
      const key = JSON.stringify(spec);
      const known = this.ensured.get(name);
      if (known?.key === key) return { mac: known.mac };
      return this.ensureSpec(spec);
    });
  }

  /** Applies a bridge spec (a kernel read and, when needed, a write) and remembers it. Call under the bridge's lock. */
  private async ensureSpec(spec: BridgeSpec): Promise<{ mac: string }> {
    this.ensured.delete(spec.name);
    const r = await this.dp.ensureBridge(spec);
    this.ensured.set(spec.name, { key: JSON.stringify(spec), mac: r.mac });
    return r;
  }

  /** The bridge is not what we remembered (an attach found it missing): the next ensureBridge reads the kernel. */
  forgetBridge(name: string): void {
    this.ensured.delete(name);
  }

  /**
   * Counts ready attachments that masquerade `cidrs` up (+1, an ADD became
   * ready) or down (-1, one was released). True when a CIDR started or stopped
   * being masqueraded, i.e. when weft's nftables table must change.
   */
  masqueradeChanged(cidrs: readonly string[], delta: 1 | -1): boolean {
    if (!this.masqUsers) {
      const m = this.countMasqueradeUsers();
      // The store already holds this attachment's new state; undo its share so the delta below applies once.
      for (const c of cidrs) m.set(c, (m.get(c) ?? 0) - delta);
      this.masqUsers = m;
    }
    let changed = false;
    for (const c of cidrs) {
      const before = this.masqUsers.get(c) ?? 0;
      const after = Math.max(0, before + delta);
      if ((before === 0) !== (after === 0)) changed = true;
      if (after === 0) this.masqUsers.delete(c); else this.masqUsers.set(c, after);
    }
    return changed;
  }

  /** True when every one of `cidrs` is masqueraded already (an ADD of one more such container leaves the NAT table as it is). */
  masquerading(cidrs: readonly string[]): boolean {
    this.masqUsers ??= this.countMasqueradeUsers();
    const users = this.masqUsers;
    return cidrs.every((c) => (users.get(c) ?? 0) > 0);
  }

  private countMasqueradeUsers(): Map<string, number> {
    const m = new Map<string, number>();
    this.store.read((tx) => {
      const subnets = this.subnetsMap(tx);
      for (const a of tx.listAttachments()) {
        if (a.state !== 'ready' || !a.ipMasq) continue;
        for (const ip of a.ips) { const c = subnets.get(ip.subnet)?.cidr; if (c) m.set(c, (m.get(c) ?? 0) + 1); }
      }
    });
    return m;
  }

  /**
   * Removes host ends of veths that carry weft's port alias but belong to no
   * attachment (a data dir restored from an older copy or wiped while
   * containers ran): their containers would keep addresses the store may
   * hand out again. The kernel is listed before the store is read, and a
   * DEL removes the veth before the record; an ADD may create its veth
   * before its record (Attachments prepares the pair ahead), which
   * `inFlight` names, so a listed veth without a record that is not in
   * flight belongs to no operation.
   */
  async removeOrphanPorts(inFlight: (name: string) => boolean = () => false): Promise<string[]> {
    const ports = await this.dp.listOwnedPorts();
    if (ports.length === 0) return [];
    const owned = new Set(this.store.read((tx) => tx.listAttachments()).map((a) => a.hostIfname).filter((n): n is string => n !== undefined));
    const removed: string[] = [];
    for (const p of ports) {
      if (owned.has(p.name) || inFlight(p.name)) continue;
      // By name and MAC: a DEL and a re-ADD of the same container since the listing made a veth of
      // the same name (names derive from the container ID) with a new random MAC; that one stays.
      if (await this.dp.removeOwnedPort(p.name, p.mac)) removed.push(p.name);
    }
    if (removed.length > 0) this.log.warn('removed veths that no attachment owns', { veths: removed });
    return removed;
  }

  /** Every bridge the store wants, plus removal of weft bridges nothing uses any more. */
  async reconcileBridges(): Promise<{ ensured: string[]; removed: string[] }> {
    const { specs, used } = this.store.read((tx) => {
      const atts = tx.listAttachments();
      const usedBridges = new Set(atts.map((a) => a.bridge).filter((b): b is string => !!b));
      // Bridges no container uses are not ensured (and are removed below), so an idle network leaves no device behind.
      return { specs: desiredBridges(this.bindings(tx).filter((b) => usedBridges.has(b.bridge)), this.subnetsMap(tx), this.mtu), used: usedBridges };
    });
    const ensured: string[] = [];
    for (const s of specs) {
      // Always read the kernel here: this is what repairs a bridge someone changed. The spec is
      // recomputed under the lock: an ADD may have bound another subnet (gateway) meanwhile.
      await this.bridgeLock.run(s.name, async () => {
        const fresh = this.store.read((tx) => desiredBridges(this.bindings(tx), this.subnetsMap(tx), this.mtu)).find((b) => b.name === s.name);
        if (fresh) await this.ensureSpec(fresh);
      });
      ensured.push(s.name);
    }
    for (const [bridge, network] of [...this.relayHeld]) {
      if (used.has(bridge)) continue;
      await this.bridgeLock.run(bridge, async () => {
        if (this.relayHeld.get(bridge) === network) await this.ensureSpec(this.relaySpec(bridge, network));
      });
      ensured.push(bridge);
    }
    const removed: string[] = [];
    const overlayOn = this.overlayActive();
    for (const b of await this.dp.listOwnedBridges()) {
      // A bridge with weft VXLAN ports is the running overlay's until it removes them (after a restart
      // it may relay for others before the overlay has held it again); the next pass takes it then.
      if (used.has(b.name) || this.relayHeld.has(b.name) || (overlayOn && b.overlayPorts > 0)) continue;
      await this.bridgeLock.run(b.name, async () => {
        // Re-check under the lock: an ADD may have started using it, or the overlay held it, meanwhile.
        if (this.relayHeld.has(b.name) || !this.unbindIfUnused(b.name)) return;
        this.ensured.delete(b.name);
        await this.dp.removeBridge(b.name);
        removed.push(b.name);
      });
    }
    return { ensured, removed };
  }

  /**
   * Brings weft's nftables table in line with the store. Calls arriving
   * while an apply runs are coalesced into one more apply, so a burst of
   * ADDs costs two table replacements, not one each.
   */
  syncNat(opts: { force?: boolean } = {}): Promise<void> {
    if (opts.force) this.dp.forgetAppliedNat();
    if (this.natDirty) return this.natRun;
    this.natDirty = true;
    const run = this.natRun.catch(() => undefined).then(async () => {
      this.natDirty = false;
      this.natFailed = true;
      const spec = this.store.read((tx) => desiredNat(tx.listAttachments(), this.subnetsMap(tx), this.bypass()));
      if (natIsEmpty(spec)) {
        if (this.natApplied) { await this.dp.removeNat(); this.natApplied = false; }
        this.natFailed = false;
        return;
      }
      await this.dp.applyNat(spec);
      this.natApplied = true;
    }).then(() => { this.natFailed = false; });
    this.natRun = run;
    return run;
  }

  /** At start the table may hold rules from before a restart; treat it as applied so an empty spec removes it. */
  assumeNatApplied(): void {
    this.natApplied = true;
  }

  /** Turns on forwarding for these families in the host netns; each family is written once per run (ADDs call this too). */
  async enableForwarding(families: readonly (4 | 6)[]): Promise<void> {
    const todo = [...new Set(families)].filter((f) => !this.forwarding.has(f));
    if (todo.length === 0) return;
    await this.dp.enableForwarding(todo);
    for (const f of todo) this.forwarding.add(f);
  }

  get natIdle(): boolean {
    return !this.natDirty;
  }

  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log.warn(msg, fields);
  }
}
