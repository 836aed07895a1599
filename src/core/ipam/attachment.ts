import type { CniDns, CniRoute } from '../cni/result.js';
import type { CniResultLike } from './result-like.js';

/**
 * One (container, interface) attachment: what the CNI runtime asked for and
 * what weft did about it. `creating` marks an ADD in progress, or one whose
 * answer went out just before the router died (the `ready` commit follows
 * the answer): a restarted router completes it when the kernel has all of
 * it, and rolls it back otherwise (the runtime will DEL or retry).
 */
export interface AttachmentIp {
  readonly subnet: string;
  readonly address: string; // ip/prefix
  readonly gateway?: string;
}

export interface PortMappingRecord {
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  readonly hostIP?: string;
}

export interface Attachment {
  readonly containerId: string;
  readonly ifname: string;
  readonly network: string;
  readonly plugin: 'weft' | 'weft-ipam';
  readonly mode: 'bridge' | 'macvlan' | 'ipam';
  readonly state: 'creating' | 'ready';
  /** A failed ADD whose rollback failed too: kept `creating` for DEL to retry, never completed. */
  readonly abandoned?: true;
  readonly netns?: string;
  /** `dev:inode` of the netns at ADD time: a reused /proc/PID path is not mistaken for the container. */
  readonly netnsId?: string;
  readonly identity?: string;
  readonly tenant: string;
  readonly ips: readonly AttachmentIp[];
  readonly hostIfname?: string;
  readonly bridge?: string;
  readonly master?: string;
  readonly mac?: string;
  readonly mtu?: number;
  readonly ipMasq: boolean;
  readonly portMappings: readonly PortMappingRecord[];
  readonly aliases: readonly string[];
  /** The routes and DNS the result carries, recorded with `creating` so a restarted router can rebuild the result. */
  readonly routes?: readonly CniRoute[];
  readonly dns?: CniDns;
  /** The result as returned to the runtime (internal 1.1 shape). */
  readonly result?: CniResultLike;
  readonly createdAt: string;
}
