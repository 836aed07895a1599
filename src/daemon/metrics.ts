/**
 * Prometheus metrics on GET /metrics. Gauges that describe stored state are
 * computed at scrape time from the store, so they can never disagree with it.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsSources {
  subnets(): { name: string; bound: number; held: number; reserved: number; capacity: string }[];
  attachments(): number;
  /** Absent when the router runs without a mesh. */
  cluster?: () => ClusterMetrics | undefined;
}

export interface ClusterMetrics {
  readonly peersKnown: number;
  readonly peersReachable: number;
  readonly connections: number;
  readonly relayed: number;
  readonly remoteEndpoints: number;
  readonly ringOwned: number;
  readonly ringFree: number;
  readonly pathMtuFailures: number;
  readonly protocolErrors: number;
  readonly objectConflicts: number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly cniRequests: Counter<'command' | 'plugin' | 'outcome'>;
  readonly cniDuration: Histogram<'command'>;
  readonly reconciles: Counter<'outcome'>;

  constructor(sources: MetricsSources) {
    collectDefaultMetrics({ register: this.registry, prefix: 'weft_' });
    this.cniRequests = new Counter({ name: 'weft_cni_requests_total', help: 'CNI requests handled by the router, by command, plugin and outcome (ok or the error code)', labelNames: ['command', 'plugin', 'outcome'], registers: [this.registry] });
    this.cniDuration = new Histogram({ name: 'weft_cni_request_duration_seconds', help: 'Time the router spent on a CNI request', labelNames: ['command'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry] });
    this.reconciles = new Counter({ name: 'weft_reconcile_total', help: 'Reconcile passes of kernel state against the store', labelNames: ['outcome'], registers: [this.registry] });
    new Gauge({
      name: 'weft_ipam_addresses', help: 'Addresses per subnet and state (bound to a container, held for a sticky identity, reserved)', labelNames: ['subnet', 'state'], registers: [this.registry],
      collect() {
        this.reset();
        for (const s of sources.subnets()) {
          this.set({ subnet: s.name, state: 'bound' }, s.bound);
          this.set({ subnet: s.name, state: 'held' }, s.held);
          this.set({ subnet: s.name, state: 'reserved' }, s.reserved);
        }
      },
    });
    new Gauge({
      name: 'weft_ipam_free_addresses', help: 'Addresses still free for allocation per subnet', labelNames: ['subnet'], registers: [this.registry],
      collect() {
        this.reset();
        for (const s of sources.subnets()) this.set({ subnet: s.name }, Number(s.capacity));
      },
    });
    const cluster = sources.cluster;
    if (cluster) {
      const gauge = (name: string, help: string, pick: (c: ClusterMetrics) => number): void => {
        new Gauge({ name, help, registers: [this.registry], collect() { const c = cluster(); if (c) this.set(pick(c)); } });
      };
      gauge('weft_mesh_peers', 'Other routers known through the mesh topology', (c) => c.peersKnown);
      gauge('weft_mesh_peers_reachable', 'Other routers reachable, directly or relayed', (c) => c.peersReachable);
      gauge('weft_mesh_connections', 'Established control connections', (c) => c.connections);
      gauge('weft_mesh_protocol_errors', 'Connections closed because a peer broke the protocol (since start)', (c) => c.protocolErrors);
      gauge('weft_overlay_relayed_peers', 'Peers whose traffic goes through a relay', (c) => c.relayed);
      gauge('weft_overlay_remote_endpoints', 'Containers of other hosts programmed into the overlay', (c) => c.remoteEndpoints);
      gauge('weft_overlay_path_mtu_failures', 'Peers towards which full-size packets are lost', (c) => c.pathMtuFailures);
      gauge('weft_ipam_ring_owned_addresses', 'Addresses of --ipalloc-range this router owns', (c) => c.ringOwned);
      gauge('weft_ipam_ring_free_addresses', 'Owned addresses not in use', (c) => c.ringFree);
      gauge('weft_cluster_object_conflicts', 'Replicated subnets/pools/reservations that could not be applied here', (c) => c.objectConflicts);
    }
    new Gauge({ name: 'weft_attachments', help: 'Container interfaces attached by weft', registers: [this.registry], collect() { this.set(sources.attachments()); } });
  }
}
