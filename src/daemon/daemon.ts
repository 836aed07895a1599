/**
 * The composition root of the router: opens the store, probes the kernel,
 * reconciles, serves the API. Everything is injected here and only here.
 */
import { chmodSync, mkdirSync, unlinkSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { LmdbStore } from '../adapters/store/lmdb-store.js';
import type { Store } from '../adapters/store/store.js';
import { KernelDataPlane } from '../adapters/kernel/kernel-dataplane.js';
import type { DataPlane, KernelFeatures } from '../core/dataplane/types.js';
import { ConflictError, toWeftError } from '../core/errors.js';
import { formatCidr, parseCidr } from '../core/ip/cidr.js';
import { WEFT_VERSION } from '../version.js';
import { buildRouter, type ClusterApi } from './api.js';
import { Attachments } from './attachments.js';
import { CniService } from './cni-service.js';
import { acquireDataDirLock } from './data-dir-lock.js';
import { HostNetwork } from './host-network.js';
import { IpamService } from './ipam-service.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { type ReconcileReport, Reconciler, summarize } from './reconciler.js';
import type { ClusterSummary, RouterStatus } from './status.js';
import { ClusterService } from './cluster-service.js';
import { type MeshOptions, MeshService } from './mesh-service.js';
import { RingService } from './ring-service.js';
import { nicknameCandidates } from '../core/ipam-ring/index.js';
import { ObjectsSync } from './objects-sync.js';
import { OverlayService } from './overlay-service.js';
import { KernelOverlay } from '../adapters/kernel/overlay-kernel.js';
import { type OverlayNetworkInput, VXLAN_PORT } from '../core/dataplane/overlay-types.js';
import { bridgeNameFor } from '../core/dataplane/names.js';
import type { Attachment } from '../core/ipam/attachment.js';
import { parseIp, tryParseIp } from '../core/ip/addr.js';
import { containerMtuFor } from '../core/dataplane/overlay-plan.js';
import { chooseUnderlay, type Underlay } from '../core/cluster/underlay.js';
import { readUnderlayLinks } from '../adapters/kernel/underlay-links.js';

export const DEFAULT_SUBNET = 'default';
/** Container MTU when there is no underlay to derive it from: a 1500-byte network minus VXLAN. */
export const DEFAULT_CONTAINER_MTU = 1450;

export interface DaemonOptions {
  readonly dataDir: string;
  readonly socket: string;
  readonly name: string;
  readonly ipallocRange: string;
  /** Container MTU; absent: the underlay's MTU minus the VXLAN overhead (1450 without an underlay). */
  readonly mtu?: number;
  readonly logger: Logger;
  readonly now?: () => Date;
  /** Period of the background reconcile; 0 disables it. */
  readonly reconcileIntervalMs?: number;
  readonly dataPlane?: DataPlane;
  /** HOST:PORT for a plain-TCP /metrics endpoint (Prometheus cannot scrape a unix socket); off when absent. */
  readonly metricsAddr?: string;
  /** Router-to-router mesh; absent: this router serves its host alone (embedded tests). */
  readonly mesh?: MeshOptions;
  /** false: conntrack also tracks bridged container traffic and VXLAN packets (`--no-conntrack-bypass`). Default on. */
  readonly conntrackBypass?: boolean;
}

async function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export class Daemon {
  private server?: Server;
  private metricsServer?: Server;
  private timer?: NodeJS.Timeout;
  private features?: KernelFeatures;
  private lastReconcile?: ReconcileReport;
  private readonly warnings: string[] = [];
  private readonly startedAt: Date;
  private stopping?: Promise<void>;
  private underlay?: Underlay;
  private publishTimer?: NodeJS.Timeout;
  readonly mesh?: MeshService;
  readonly cluster?: ClusterService;
  readonly ring?: RingService;
  readonly overlay?: OverlayService;
  readonly objects?: ObjectsSync;
  readonly store: Store;
  readonly ipam: IpamService;
  readonly attachments: Attachments;
  readonly reconciler: Reconciler;
  readonly metrics: Metrics;
  private readonly dp: DataPlane;
  private readonly host: HostNetwork;
  private readonly cni: CniService;
  private readonly now: () => Date;

  private constructor(private readonly opts: DaemonOptions & { readonly mtu: number }, private readonly unlock: () => void, underlay: Underlay | undefined) {
    this.underlay = underlay;
    this.now = opts.now ?? (() => new Date());
    this.startedAt = this.now();
    const log = opts.logger;
    this.store = new LmdbStore(opts.dataDir);
    this.dp = opts.dataPlane ?? new KernelDataPlane(log.child({ component: 'dataplane' }));
    this.ipam = new IpamService(this.store, this.now);
    this.host = new HostNetwork(this.store, this.dp, log.child({ component: 'host' }), opts.mtu, () => {
      if (opts.conntrackBypass === false) return undefined;
      const u = opts.mesh ? this.underlay : undefined;
      return u ? { tunnel: { local: u.ip, port: VXLAN_PORT } } : {};
    }, () => this.overlay?.status().enabled === true);
    this.attachments = new Attachments(this.store, this.ipam, this.dp, this.host, log.child({ component: 'attach' }), this.now, { subnet: DEFAULT_SUBNET, mtu: opts.mtu });
    this.reconciler = new Reconciler(this.attachments, this.host, log.child({ component: 'reconcile' }), this.now);
    this.metrics = new Metrics({
      subnets: () => this.ipam.listSubnets().map((u) => ({ name: u.subnet.name, bound: u.bound, held: u.held, reserved: u.reserved, capacity: u.capacity })),
      attachments: () => this.attachments.list().length,
      cluster: () => {
        if (!this.mesh?.started) return undefined;
        const m = this.mesh.status();
        const o = this.overlay?.status();
        const r = this.ring?.status();
        return {
          peersKnown: m.peers.length, peersReachable: m.peers.filter((p) => p.reachable).length, connections: m.connections.filter((c) => c.state === 'established').length,
          protocolErrors: m.stats.protocolErrors, relayed: o?.routes.filter((x) => x.via !== undefined).length ?? 0, remoteEndpoints: o?.endpoints ?? 0,
          pathMtuFailures: o?.pathMtu.filter((p) => !p.ok).length ?? 0, ringOwned: Number(r?.ownedSize ?? 0), ringFree: Number(r?.free ?? 0),
          objectConflicts: this.objects?.status().conflicts.length ?? 0,
        };
      },
    });
    if (opts.mesh) {
      this.mesh = new MeshService(this.store, opts.name, opts.ipallocRange, opts.mesh, log);
      this.cluster = new ClusterService(this.mesh, () => this.underlay?.ip ?? null, () => this.attachments.list(), log.child({ component: 'cluster' }));
      this.attachments.onChange((a, removed) => { this.cluster?.attachmentChanged(a, removed); this.schedulePublish(); });
      const range = parseCidr(opts.ipallocRange);
      this.ring = new RingService(this.store, this.mesh, {
        // Only this host's allocations: reservations are cluster-wide intents that move with the space
        // (whoever owns the address hands it to the reserved identity, claiming it first if needed).
        used: () => this.store.read((tx) => tx.listAllocations(DEFAULT_SUBNET).map((a) => parseIp(a.ip).value)),
      }, {
        range, subnet: DEFAULT_SUBNET, launchPeers: opts.mesh.peers.length,
        ...(opts.mesh.ipallocInit !== undefined ? { init: opts.mesh.ipallocInit } : {}),
        ...(opts.mesh.leaseTimeoutMs !== undefined ? { leaseTimeoutMs: opts.mesh.leaseTimeoutMs } : {}),
        ...(opts.mesh.config?.heartbeatIntervalMs !== undefined ? { heartbeatMs: opts.mesh.config.heartbeatIntervalMs } : {}),
        // A host whose address space was taken over is gone: drop its containers from the overlay and `ps --cluster`.
        onReclaimed: (ids) => { for (const id of ids) for (const nick of nicknameCandidates(id)) if (this.cluster?.forgetHost(nick)) break; },
      }, log.child({ component: 'ring' }));
      const ring = this.ring;
      this.ipam.setOwnedSpace((s) => ring.ownedSpace(s));
      this.objects = new ObjectsSync(this.store, this.ipam, this.mesh, log.child({ component: 'objects' }));
      const olog = log.child({ component: 'overlay' });
      this.overlay = new OverlayService(new KernelOverlay(olog), this.cluster, () => this.localNetworks(), () => this.underlay, olog, {
        repairMs: opts.mesh.overlayRepairMs ?? 10_000, probeMs: opts.mesh.pathMtuProbeMs ?? 5_000, startupGraceMs: opts.mesh.overlayGraceMs ?? Math.min(15_000, Math.max(5_000, 2 * (opts.mesh.config?.deadAfterMs ?? 60_000))),
      }, {
        network: (name) => ({ name, bridge: bridgeNameFor(name), mtu: opts.mtu }),
        hold: (nets) => this.host.holdRelayBridges(nets.map((n) => ({ network: n.name, bridge: n.bridge }))),
      });
      // A new local network (first container on it) needs its VXLAN device at once, not at the next gossip.
      this.attachments.onChange((a, removed) => { if (this.noteLocalNetwork(a, removed)) this.overlay?.schedule(); });
    }
    this.cni = new CniService(this.attachments, this.ipam, log.child({ component: 'cni' }), this.metrics, () => this.features,
      async (name) => (await this.dp.hostLink(name)) !== undefined, DEFAULT_SUBNET,
      this.ring ? (e) => this.ring!.resolve(e) : undefined, this.ring ? () => this.ring!.problem() : undefined);
  }

  static async start(opts: DaemonOptions): Promise<Daemon> {
    parseCidr(opts.ipallocRange);
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    const unlock = acquireDataDirLock(opts.dataDir);
    let d: Daemon | undefined;
    try {
      // The underlay is found first: the container MTU derives from it.
      const underlay = opts.mesh ? chooseUnderlay(await readUnderlayLinks(), opts.mesh.advertiseAddr) : undefined;
      const mtu = opts.mtu ?? (underlay ? containerMtuFor(underlay.mtu, tryParseIp(underlay.ip)?.family ?? 4) : DEFAULT_CONTAINER_MTU);
      d = new Daemon({ ...opts, mtu }, unlock, underlay);
      await d.boot();
      return d;
    } catch (e) {
      if (d) await d.stop().catch(() => undefined);
      else unlock();
      throw e;
    }
  }

  private async boot(): Promise<void> {
    const log = this.opts.logger;
    this.features = await this.dp.probe();
    for (const [k, v] of Object.entries(this.features)) if (!v) this.warnings.push(`kernel feature ${k} is unavailable on this host; weft features that need it will refuse with a clear error`);
    const vp = this.dp.vethProgramming?.();
    if (vp?.mode === 'ip') this.warnings.push(`veths are programmed by spawning ip(8), not in process (slower ADD and CHECK): ${vp.reason ?? 'in-process netlink is unavailable'}`);
    const { subnet, created } = this.ipam.ensureDefaultSubnet(DEFAULT_SUBNET, this.opts.ipallocRange);
    if (!created && subnet.cidr !== formatCidr(parseCidr(this.opts.ipallocRange))) {
      this.warnings.push(`--ipalloc-range ${this.opts.ipallocRange} differs from the existing default subnet ${subnet.cidr}; the stored subnet is kept`);
    }
    const families = new Set(this.ipam.listSubnets().map((u) => parseCidr(u.subnet.cidr).family));
    await this.host.enableForwarding([...families]);
    this.host.assumeNatApplied();
    this.lastReconcile = await this.reconciler.run();
    this.metrics.reconciles.inc({ outcome: this.lastReconcile.errors.length ? 'error' : 'ok' });
    if (this.mesh && this.opts.mesh) {
      if (!this.underlay && this.opts.mesh.peers.length > 0) this.warnings.push('no underlay address found (no up interface with a global address): containers of other hosts are unreachable; pass --advertise-addr');
      await this.mesh.start();
      this.ring?.start();
      this.objects?.start(30_000);
      this.cluster!.publishLocal();
      await this.overlay?.start();
    }
    await this.listen();
    if (this.opts.metricsAddr) await this.listenMetrics(this.opts.metricsAddr);
    const every = this.opts.reconcileIntervalMs ?? 60_000;
    if (every > 0) {
      this.timer = setInterval(() => { void this.reconcileNow(); }, every);
      this.timer.unref();
    }
    log.info('weft router ready', { name: this.opts.name, socket: this.opts.socket, dataDir: this.opts.dataDir, version: WEFT_VERSION, reconcile: summarize(this.lastReconcile) });
  }

  /** Coalesces endpoint announcements: a burst of ADDs is announced once. */
  private schedulePublish(): void {
    if (this.publishTimer || !this.cluster) return;
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined;
      try { this.cluster?.publishLocal(); } catch (e) { this.opts.logger.warn('announcing endpoints failed', { err: toWeftError(e).message }); }
    }, 20);
  }

  private clusterApi(mesh: MeshService, cluster: ClusterService): ClusterApi {
    return {
      mesh: () => ({ ...mesh.status(), incarnation: mesh.incarnation, underlay: this.underlay ?? null, transport: mesh.counters() }),
      connect: (a) => ({ address: mesh.connect(a) }),
      forget: (a) => mesh.forget(a),
      hosts: () => cluster.hosts(),
      ring: () => this.ring!.status(),
      overlay: () => this.overlay!.status(),
      rmpeer: (name, force) => this.ring!.rmpeer(name, force),
      reset: () => this.ring!.reset(),
      acceptRing: () => this.ring!.acceptForeign(),
    };
  }

  private clusterSummary(): ClusterSummary | undefined {
    if (!this.mesh || !this.opts.mesh) return undefined;
    const st = this.mesh.status();
    return {
      peer: this.mesh.peer, nickname: this.mesh.nickname, listen: `${this.opts.mesh.bindAddr ?? '0.0.0.0'}:${this.opts.mesh.port}`,
      underlay: this.underlay ?? null,
      peers: { known: st.peers.length, reachable: st.peers.filter((p) => p.reachable).length, connected: st.connections.filter((c) => c.state === 'established').length },
      targets: st.targets.length,
      ...(this.overlay ? { overlay: (() => {
        const o = this.overlay.status();
        return { enabled: o.enabled, ...(o.reason ? { reason: o.reason } : {}), peers: o.routes.length, relayed: o.routes.filter((r) => r.via !== undefined).length, endpoints: o.endpoints, ...(o.lastSync ? { lastSync: o.lastSync.at } : {}), pathMtuFailures: o.pathMtu.filter((p) => !p.ok).length, relayOnly: o.relayOnly };
      })() } : {}),
      ...(this.ring ? { ipam: (() => { const r = this.ring.status(); return { state: r.state, owned: r.ownedSize, free: r.free }; })() } : {}),
      ...(this.objects ? { objects: this.objects.status() } : {}),
    };
  }

  /**
   * The weft networks with a bridge on this host, with the attachments that
   * use them: the overlay extends these networks to the other hosts. Built
   * once from the store, then kept in step with attachment changes, so an
   * ADD on a network that is already here neither rereads every attachment
   * nor makes the overlay read and rewrite the kernel.
   */
  private netUsers?: Map<string, { readonly net: OverlayNetworkInput; readonly users: Set<string> }>;

  private localNetworks(): OverlayNetworkInput[] {
    if (!this.netUsers) {
      this.netUsers = new Map();
      for (const a of this.attachments.list()) this.noteLocalNetwork(a, false);
    }
    return [...this.netUsers.values()].map((v) => v.net);
  }

  /** True when the set of local networks changed. */
  private noteLocalNetwork(a: Attachment, removed: boolean): boolean {
    if (!this.netUsers) return true; // not built yet: the first overlay run builds it
    const key = `${a.containerId}/${a.ifname}`;
    const cur = this.netUsers.get(a.network);
    if (removed) {
      if (!cur?.users.delete(key)) return false;
      if (cur.users.size > 0) return false;
      this.netUsers.delete(a.network);
      return true;
    }
    if (a.state !== 'ready' || a.mode !== 'bridge' || !a.bridge) return false;
    if (cur) { cur.users.add(key); return false; }
    this.netUsers.set(a.network, { net: { name: a.network, bridge: a.bridge, mtu: a.mtu ?? this.opts.mtu }, users: new Set([key]) });
    return true;
  }

  async reconcileNow(): Promise<ReconcileReport> {
    await this.overlay?.syncNow();
    try {
      this.lastReconcile = await this.reconciler.run();
      this.metrics.reconciles.inc({ outcome: this.lastReconcile.errors.length ? 'error' : 'ok' });
    } catch (e) {
      this.metrics.reconciles.inc({ outcome: 'error' });
      this.opts.logger.error('reconcile failed', { err: toWeftError(e).message });
    }
    return this.lastReconcile!;
  }

  private async listen(): Promise<void> {
    const path = this.opts.socket;
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    if (existsSync(path)) {
      if (await socketInUse(path)) throw new ConflictError(`another process is serving ${path}`, { hint: 'stop the other weft router, or use --socket' });
      unlinkSync(path);
    }
    const router = buildRouter({ ipam: this.ipam, cni: this.cni, metrics: this.metrics, status: { status: async () => this.status(), attachments: () => this.attachments.list() }, reconcile: () => this.reconcileNow(), ...(this.mesh ? { cluster: this.clusterApi(this.mesh, this.cluster!) } : {}) });
    const log = this.opts.logger.child({ component: 'api' });
    const server = createServer((req, res) => { void router.handle(req, res, log); });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The API can attach containers to any network: only root may talk to it.
      const old = process.umask(0o177);
      server.listen(path, () => { process.umask(old); server.off('error', reject); resolve(); });
    });
    chmodSync(path, 0o600);
    this.server = server;
  }

  private async listenMetrics(addr: string): Promise<void> {
    const m = /^(.*):(\d+)$/.exec(addr);
    if (!m) throw new ConflictError(`--metrics-addr "${addr}" must be HOST:PORT, e.g. 127.0.0.1:6782`);
    const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url !== '/metrics') { res.writeHead(404).end('only GET /metrics is served here\n'); return; }
      void this.metrics.registry.metrics().then((text) => { res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text); });
    });
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(Number(m[2]), host, () => { server.off('error', reject); resolve(); }); });
    this.metricsServer = server;
  }

  status(): RouterStatus {
    const atts = this.attachments.list();
    const subnets = this.ipam.listSubnets();
    const last = this.lastReconcile;
    return {
      name: this.opts.name,
      version: WEFT_VERSION,
      pid: process.pid,
      ready: this.server !== undefined && this.features !== undefined,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: (this.now().getTime() - this.startedAt.getTime()) / 1000,
      dataDir: this.opts.dataDir,
      socket: this.opts.socket,
      ipallocRange: this.opts.ipallocRange,
      mtu: this.opts.mtu,
      features: this.features ?? {},
      ...(this.dp.vethProgramming ? { vethProgramming: this.dp.vethProgramming() } : {}),
      conntrackBypass: this.opts.conntrackBypass !== false,
      attachments: { ready: atts.filter((a) => a.state === 'ready').length, creating: atts.filter((a) => a.state === 'creating').length },
      subnets: subnets.map((u) => ({ name: u.subnet.name, cidr: u.subnet.cidr, inUse: u.inUse, free: u.capacity })),
      ...(this.mesh?.started ? { cluster: this.clusterSummary()! } : {}),
      ...(last ? { lastReconcile: { at: last.at, summary: summarize(last), ok: last.errors.length === 0 } } : {}),
      warnings: [...this.warnings, ...(this.overlay?.warnings() ?? []), ...(this.objects?.status().conflicts.map((c) => `replicated ${c.key} is not applied here: ${c.reason}`) ?? []), ...(this.ring?.duplicateAddresses().map((d) => `address ${d.address} is in use here and on another host (found when the foreign IPAM ring was accepted: ${d.why}); restart the container that holds it here`) ?? []), ...(last?.errors.length ? [`last reconcile had errors: ${last.errors.join('; ')}`] : [])],
    };
  }

  /** Stops serving and closes the store. Kernel state stays: containers keep their connectivity. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.timer) clearInterval(this.timer);
      if (this.publishTimer) clearTimeout(this.publishTimer);
      this.ring?.stop();
      this.objects?.stop();
      await this.overlay?.stop();
      await this.mesh?.stop().catch((e: unknown) => this.opts.logger.warn('mesh shutdown failed', { err: toWeftError(e).message }));
      if (this.metricsServer) { const m = this.metricsServer; await new Promise<void>((r) => { m.close(() => r()); m.closeIdleConnections(); }); }
      if (this.server) {
        const s = this.server;
        await new Promise<void>((r) => { s.close(() => r()); s.closeIdleConnections(); });
        try { unlinkSync(this.opts.socket); } catch { /* gone */ }
      }
      // A reconcile pass in flight must not find the store closed under it.
      await this.reconciler.idle();
      await this.store.close();
      this.unlock();
      this.opts.logger.info('weft router stopped');
    })();
    return this.stopping;
  }
}
