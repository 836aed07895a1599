import type { KernelFeatures, VethProgramming } from '../core/dataplane/types.js';

/** What `weft status` shows; GET /v1/status. */
export interface RouterStatus {
  readonly name: string;
  readonly version: string;
  readonly pid: number;
  readonly ready: boolean;
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly dataDir: string;
  readonly socket: string;
  readonly ipallocRange: string;
  readonly mtu: number;
  readonly features: KernelFeatures | Record<string, boolean>;
  /** How veths are programmed: in-process netlink, or ip(8) processes (the fallback, with its reason). */
  readonly vethProgramming?: VethProgramming;
  /** Whether the NAT table exempts traffic that is never NATed from conntrack (`--no-conntrack-bypass` turns it off). */
  readonly conntrackBypass: boolean;
  readonly attachments: { readonly ready: number; readonly creating: number };
  readonly subnets: readonly { readonly name: string; readonly cidr: string; readonly inUse: number; readonly free: string }[];
  /** The router's place in the cluster; absent when it runs without a mesh (embedded tests). */
  readonly cluster?: ClusterSummary;
  readonly lastReconcile?: { readonly at: string; readonly summary: string; readonly ok: boolean };
  readonly warnings: readonly string[];
}

export interface ClusterSummary {
  readonly peer: string;
  readonly nickname: string;
  readonly listen: string;
  readonly underlay: { readonly ip: string; readonly dev: string; readonly mtu: number } | null;
  readonly peers: { readonly known: number; readonly reachable: number; readonly connected: number };
  readonly targets: number;
  readonly overlay?: { readonly enabled: boolean; readonly reason?: string; readonly peers: number; readonly relayed: number; readonly endpoints: number; readonly lastSync?: string; readonly pathMtuFailures: number; readonly relayOnly: readonly string[] };
  readonly ipam?: { readonly state: string; readonly owned: string; readonly free: string };
  /** Replicated subnets, pools and reservations (cluster.objects), and those that could not be applied here. */
  readonly objects?: { readonly objects: number; readonly conflicts: readonly { readonly key: string; readonly reason: string; readonly since: string }[] };
}
