/**
 * ClusterState over gossip: the mesh tells who is reachable and how, the
 * `cluster.endpoints` channel tells what each host runs. This host's record
 * is re-announced whenever an attachment becomes ready or goes away.
 */
import { type ClusterEndpoint, ENDPOINTS_CHANNEL, EndpointsChannel } from '../core/cluster/endpoints.js';
import { type ClusterHost, type ClusterState, clusterHosts } from '../core/cluster/state.js';
import type { Attachment } from '../core/ipam/attachment.js';
import type { PeerId } from '../core/mesh/index.js';
import type { Logger } from './logger.js';
import type { MeshService } from './mesh-service.js';

/** What this host announces for one attachment: bridge-mode interfaces only (macvlan and IPAM-only ones are not on the overlay). */
export function endpointOf(a: Attachment): ClusterEndpoint | undefined {
  if (a.state !== 'ready' || a.mode !== 'bridge' || !a.mac) return undefined;
  return {
    network: a.network, mac: a.mac.toLowerCase(), ips: a.ips.map((i) => i.address.split('/')[0]!), containerId: a.containerId, ifname: a.ifname,
    ...(a.identity ? { identity: a.identity } : {}),
  };
}

export class ClusterService implements ClusterState {
  readonly self: PeerId;
  readonly endpoints: EndpointsChannel;
  private readonly listeners: (() => void)[] = [];
  /** This host's endpoints by container/ifname, kept in step with attachment changes (no full scan per ADD). */
  private local?: Map<string, ClusterEndpoint>;
  private localDirty = true;

  constructor(private readonly mesh: MeshService, private readonly underlay: () => string | null, private readonly attachments: () => Attachment[], private readonly log: Logger) {
    this.self = mesh.peer;
    this.endpoints = new EndpointsChannel(mesh.peer, mesh.nickname, mesh.incarnation);
    mesh.registerChannel(ENDPOINTS_CHANNEL, this.endpoints);
    this.endpoints.onChange(() => this.changed());
    mesh.onEvent((e) => {
      if (e.type !== 'connection-up') this.log.debug('mesh event', { ...e });
      this.changed();
    });
  }

  hosts(): ClusterHost[] {
    return clusterHosts(this.self, this.mesh.nickname, this.mesh.status(), this.endpoints.records());
  }

  publishEndpoints(underlay: string | null, endpoints: readonly ClusterEndpoint[]): void {
    this.mesh.control(() => this.endpoints.publish(underlay, endpoints));
  }

  /** An attachment became ready or went away. */
  attachmentChanged(a: Attachment, removed: boolean): void {
    if (!this.local) return;
    const key = `${a.containerId}/${a.ifname}`;
    const e = removed ? undefined : endpointOf(a);
    if (e) this.local.set(key, e); else if (!this.local.delete(key)) return;
    this.localDirty = true;
  }

  /** Announces this host's endpoints when they changed since the last announcement. */
  publishLocal(): void {
    if (!this.local) {
      this.local = new Map();
      for (const a of this.attachments()) {
        const e = endpointOf(a);
        if (e) this.local.set(`${a.containerId}/${a.ifname}`, e);
      }
    }
    if (!this.localDirty) return;
    this.localDirty = false;
    this.publishEndpoints(this.underlay(), [...this.local.values()]);
  }

  /** Drops the record of a host that is gone for good (rmpeer, lease reclaim); false when there is none. */
  forgetHost(nickname: string): boolean {
    const r = this.endpoints.byNickname(nickname);
    return r ? this.mesh.control(() => this.endpoints.remove(r.peer)) : false;
  }

  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) {
      try { fn(); } catch (e) { this.log.warn('cluster change listener failed', { err: (e as Error).message }); }
    }
  }
}
