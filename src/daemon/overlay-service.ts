/**
 * Keeps the kernel overlay (docs/overlay.md) in step with the cluster: on
 * every change of peers, routes or endpoints it builds the planner input
 * from ClusterState and the local bridges, and the adapter diffs and applies
 * it. Runs are coalesced and never overlap; a periodic run repairs what
 * someone deleted by hand. A path-MTU probe per peer finds black holes.
 */
import type { OverlayDataPlane } from '../adapters/kernel/overlay-kernel.js';
import { type ClusterState, heardFromAll, relayNeeded, relayNetworks } from '../core/cluster/state.js';
import type { Underlay } from '../core/cluster/underlay.js';
import type { OverlayInput, OverlayNetworkInput, OverlayNote, OverlayPeerRoute, PathMtuResult } from '../core/dataplane/overlay-types.js';
import { duePathMtuProbes, mergePathMtuResults, pathMtuTargets } from '../core/dataplane/overlay-mtu.js';
import { toWeftError } from '../core/errors.js';
import { performance } from 'node:perf_hooks';
import type { Logger } from './logger.js';

export interface OverlayStatus {
  readonly enabled: boolean;
  readonly reason?: string;
  readonly lastSync?: { readonly at: string; readonly ms: number; readonly changes: Record<string, number>; readonly ok: boolean; readonly error?: string };
  readonly networks: readonly string[];
  /** Of `networks`, those carried only for others (no container here): a bare bridge relays them. */
  readonly relayOnly: readonly string[];
  readonly routes: readonly OverlayPeerRoute[];
  readonly endpoints: number;
  readonly notes: readonly OverlayNote[];
  readonly pathMtu: readonly PathMtuResult[];
  readonly syncs: number;
}

export class OverlayService {
  private timer?: NodeJS.Timeout;
  private repairTimer?: NodeJS.Timeout;
  private probeTimer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  private disabled?: string;
  private last?: OverlayStatus['lastSync'];
  private routes: readonly OverlayPeerRoute[] = [];
  private networks: readonly string[] = [];
  private relayOnly: readonly string[] = [];
  private endpoints = 0;
  private notes: readonly OverlayNote[] = [];
  private pathMtu: PathMtuResult[] = [];
  private syncs = 0;
  private containerMtu = 0;
  /** Start-up grace: the underlay addresses the kernel forwarded to before this start, and until when to wait for them. */
  private awaiting?: { readonly peers: ReadonlySet<string>; readonly until: number };
  private started = false;

  constructor(
    private readonly kernel: OverlayDataPlane,
    private readonly cluster: ClusterState,
    private readonly localNetworks: () => OverlayNetworkInput[],
    private readonly underlay: () => Underlay | undefined,
    private readonly log: Logger,
    private readonly opts: {
      repairMs: number;
      probeMs: number;
      /**
       * After a restart the kernel still forwards to the peers of before; the
       * mesh needs a moment to hear from them again. Until it has (or this
       * long has passed), nothing is applied, so no entry of a live peer is
       * removed and traffic never stops. 0: no grace.
       */
      startupGraceMs?: number;
    },
    /** Networks relayed without a local container: how one looks here, and keeping their bridges. */
    private readonly relayOnlyNets?: {
      readonly network: (name: string) => OverlayNetworkInput;
      readonly hold: (nets: readonly OverlayNetworkInput[]) => Promise<void>;
    },
  ) {
    cluster.onChange(() => this.schedule());
  }

  async start(): Promise<void> {
    const f = await this.kernel.probe();
    if (!f.vxlan) this.disabled = `this kernel cannot create VXLAN devices (${f.reasons.vxlan ?? 'unknown reason'}): containers on other hosts are unreachable`;
    else if (!this.underlay()) this.disabled = 'no underlay address: pass --advertise-addr';
    if (!f.bridgeNft) this.log.warn('nftables bridge filtering is unavailable: traffic to peers reachable only through a relay is not carried', { reason: f.reasons.bridgeNft });
    if (this.disabled) {
      // A router with no underlay serves its own host only; that is a choice, not a fault.
      if (f.vxlan) this.log.info('cross-host overlay off', { reason: this.disabled }); else this.log.warn('cross-host overlay disabled', { reason: this.disabled });
      return;
    }
    await this.beginGrace();
    // Only now: a cluster change before this point must not apply a plan made without the grace.
    this.started = true;
    this.schedule(0);
    if (this.opts.repairMs > 0) {
      this.repairTimer = setInterval(() => this.schedule(0), this.opts.repairMs);
      this.repairTimer.unref();
    }
    if (this.opts.probeMs > 0) {
      this.probeTimer = setInterval(() => { void this.probe(); }, this.opts.probeMs);
      this.probeTimer.unref();
    }
  }

  private async beginGrace(): Promise<void> {
    const ms = this.opts.startupGraceMs ?? 0;
    if (ms <= 0) return;
    try {
      const { state } = await this.kernel.read();
      const peers = new Set(state.fdb.map((e) => e.dst));
      if (peers.size === 0) return;
      this.awaiting = { peers, until: performance.now() + ms };
      // The timer ends the grace itself: it may fire a hair before `until` by performance.now().
      const t = setTimeout(() => {
        if (this.awaiting) this.awaiting = { ...this.awaiting, until: 0 };
        this.schedule(0);
      }, ms);
      t.unref();
      this.log.info('overlay: keeping the entries of before the restart until their peers are heard from again', { peers: [...peers].sort(), graceMs: ms });
    } catch (e) {
      this.log.warn('overlay: reading the kernel state at start failed; no start-up grace', { err: toWeftError(e).message });
    }
  }

  /** Coalesces bursts of cluster changes into one run. */
  schedule(delayMs = 30): void {
    if (!this.started || this.stopped || this.disabled || this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.syncNow(); }, delayMs);
  }

  /** One run now (after the one in flight, if any). */
  async syncNow(): Promise<void> {
    if (!this.started || this.stopped || this.disabled) return;
    if (this.running) { this.again = true; return this.running; }
    this.running = (async () => {
      do {
        this.again = false;
        await this.runOnce();
      } while (this.again && !this.stopped);
    })().finally(() => { this.running = undefined; });
    return this.running;
  }

  private input(u: Underlay): { input: OverlayInput; relay: boolean; relayOnly: OverlayNetworkInput[] } {
    const hosts = this.cluster.hosts();
    const localNets = this.localNetworks();
    const here = new Set(localNets.map((n) => n.name));
    // A relay carries a network whether or not it runs a container of it (Weave relays everything).
    const relayOnly = this.relayOnlyNets ? relayNetworks(hosts).filter((n) => !here.has(n)).map((n) => this.relayOnlyNets!.network(n)) : [];
    const nets = [...localNets, ...relayOnly];
    const local = new Set(nets.map((n) => n.name));
    const peers: { peer: string; ip: string; via?: string }[] = [];
    const endpoints: { network: string; peer: string; mac: string; ips: readonly string[] }[] = [];
    for (const h of hosts) {
      if (h.self || !h.reachable || h.underlay === null) continue;
      peers.push({ peer: h.peer, ip: h.underlay, ...(h.via !== undefined ? { via: h.via } : {}) });
      for (const e of h.endpoints) if (local.has(e.network)) endpoints.push({ network: e.network, peer: h.peer, mac: e.mac, ips: e.ips });
    }
    return { input: { localPeer: this.cluster.self, underlay: { ip: u.ip, dev: u.dev }, networks: nets, peers, endpoints }, relay: relayNeeded(hosts), relayOnly };
  }

  private async runOnce(): Promise<void> {
    const u = this.underlay();
    if (!u) return;
    if (this.awaiting) {
      const heard = heardFromAll(this.awaiting.peers, this.cluster.hosts());
      if (!heard && performance.now() < this.awaiting.until) return;
      this.log.info(heard ? 'overlay: every peer of before the restart heard from; applying' : 'overlay: start-up grace over; applying (peers not heard from lose their entries)', {});
      this.awaiting = undefined;
    }
    const t0 = Date.now();
    try {
      const { input, relay, relayOnly } = this.input(u);
      // Bridges first: the VXLAN devices are enslaved to them. Dropped ones go after the sync, with their devices.
      if (relayOnly.length > 0 || this.relayOnly.length > 0) await this.relayOnlyNets?.hold([...relayOnly, ...this.relayOnly.filter((n) => !relayOnly.some((r) => r.name === n)).map((n) => this.relayOnlyNets!.network(n))]);
      const { plan, report } = await this.kernel.sync(input, { relay });
      if (this.relayOnly.some((n) => !relayOnly.some((r) => r.name === n))) await this.relayOnlyNets?.hold(relayOnly);
      this.relayOnly = relayOnly.map((n) => n.name);
      this.syncs++;
      this.routes = plan.routes;
      this.networks = input.networks.map((n) => n.name);
      this.endpoints = plan.endpoints;
      this.containerMtu = input.networks[0]?.mtu ?? this.containerMtu;
      const fresh = plan.notes.filter((n) => !this.notes.some((o) => o.code === n.code && o.message === n.message));
      for (const n of fresh) this.log.warn('overlay: not programmed', { ...n });
      this.notes = plan.notes;
      const changed = Object.values(report.changes).reduce((a, b) => a + (b ?? 0), 0);
      if (changed > 0) this.log.info('overlay applied', { changes: report.changes, peers: plan.routes.length, endpoints: plan.endpoints, ms: report.ms, passes: report.passes });
      this.last = { at: new Date().toISOString(), ms: Date.now() - t0, changes: report.changes as Record<string, number>, ok: report.failures.length === 0, ...(report.failures.length ? { error: report.failures.map((f) => `${f.line}: ${f.error}`).join('; ') } : {}) };
      if (changed > 0 && this.opts.probeMs > 0) void this.probe();
    } catch (e) {
      const err = toWeftError(e);
      this.log.error('overlay sync failed', { err: err.message });
      this.last = { at: new Date().toISOString(), ms: Date.now() - t0, changes: {}, ok: false, error: err.message };
    }
  }

  private probing = false;

  /**
   * Epoch milliseconds that never step: the wall clock at start plus
   * monotonic time since. Probe results are stamped and scheduled with it,
   * so a wall-clock jump neither delays the probes nor repeats them.
   */
  private static monoEpoch(): number {
    return performance.timeOrigin + performance.now();
  }

  /** Full-size DF pings to the peers that are due (policy in overlay-mtu.ts). */
  private async probe(): Promise<void> {
    if (this.probing || this.stopped || this.disabled || this.containerMtu === 0) return;
    this.probing = true;
    try {
      const targets = pathMtuTargets(this.routes, this.containerMtu);
      const due = duePathMtuProbes(targets, this.pathMtu, OverlayService.monoEpoch());
      if (due.length === 0) return;
      const stamp = OverlayService.monoEpoch();
      const fresh = (await this.kernel.checkPathMtu(due)).map((r) => ({ ...r, checkedAt: stamp }));
      for (const r of fresh) {
        const before = this.pathMtu.find((p) => p.peer === r.peer);
        if (!r.ok && (!before || before.ok)) this.log.warn('path MTU black hole: full-size packets to this peer are lost', { peer: r.peer, address: r.address, size: r.size, error: r.error });
        if (r.ok && before && !before.ok) this.log.info('path MTU to peer is fine again', { peer: r.peer, size: r.size });
      }
      this.pathMtu = mergePathMtuResults(this.pathMtu, fresh, targets);
    } catch (e) {
      this.log.warn('path MTU probe failed', { err: toWeftError(e).message });
    } finally {
      this.probing = false;
    }
  }

  status(): OverlayStatus {
    return {
      enabled: this.disabled === undefined, ...(this.disabled ? { reason: this.disabled } : {}), ...(this.last ? { lastSync: this.last } : {}),
      networks: this.networks, relayOnly: this.relayOnly, routes: this.routes, endpoints: this.endpoints, notes: this.notes, pathMtu: this.pathMtu, syncs: this.syncs,
    };
  }

  /** Warnings for `weft status`. */
  warnings(): string[] {
    const out: string[] = [];
    if (this.disabled && this.underlay()) out.push(`cross-host overlay disabled: ${this.disabled}`);
    for (const r of this.pathMtu) if (!r.ok) out.push(`path MTU black hole towards peer ${r.peer} (${r.address}): ${r.size}-byte packets with DF do not arrive; lower --mtu or fix the underlay${r.error ? ` (${r.error})` : ''}`);
    if (this.last && !this.last.ok) out.push(`last overlay sync failed: ${this.last.error ?? 'unknown error'}`);
    return out;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.repairTimer) clearInterval(this.repairTimer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    await this.running;
  }
}
