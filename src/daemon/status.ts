import type { KernelFeatures } from '../core/dataplane/types.js';

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
  readonly attachments: { readonly ready: number; readonly creating: number };
  readonly subnets: readonly { readonly name: string; readonly cidr: string; readonly inUse: number; readonly free: string }[];
  readonly lastReconcile?: { readonly at: string; readonly summary: string; readonly ok: boolean };
  readonly warnings: readonly string[];
}
