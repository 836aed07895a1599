/**
 * Managed IPAM objects. These are the records the store keeps; every field is
 * plain JSON so the database schema is explicit and versionable.
 */

export interface RouteRecord {
  readonly dst: string; // CIDR
  readonly gw?: string;
}

export interface DnsRecord {
  readonly nameservers: readonly string[];
  readonly search: readonly string[];
  readonly domain?: string;
  readonly options: readonly string[];
}

export interface AddressRange {
  /** Inclusive bounds, canonical text. */
  readonly start: string;
  readonly end: string;
}

export interface Subnet {
  readonly name: string;
  readonly cidr: string; // canonical, host bits zero
  readonly gateway?: string; // absent: no gateway (routes without gw become on-link)
  /** Where dynamic allocation may pick from; empty means the whole usable range. */
  readonly ranges: readonly AddressRange[];
  /** Addresses never handed out (single addresses or ranges). */
  readonly exclude: readonly AddressRange[];
  readonly routes: readonly RouteRecord[];
  readonly dns: DnsRecord;
  /** Tenants (identity namespaces) allowed to allocate here; empty = everyone. */
  readonly tenants: readonly string[];
  /** Maximum addresses in use (bound + held) on the subnet; absent = unlimited. */
  readonly quota?: number;
  /** Addresses stay bound to the identity that first received them, across DEL, until released. */
  readonly sticky: boolean;
  readonly createdAt: string;
}

export interface PoolMatch {
  /** Identity namespace the pool serves (K8S_POD_NAMESPACE; `default` when absent). */
  readonly namespace?: string;
  /** Glob on the identity name (`etcd-*`); `*` and `?` are wildcards. */
  readonly name?: string;
}

export interface Pool {
  readonly name: string;
  readonly subnet: string;
  /** Addresses of the pool; withheld from the subnet's general allocation. */
  readonly addresses: readonly AddressRange[];
  readonly match?: PoolMatch;
  readonly tenants: readonly string[];
  readonly quota?: number;
  readonly sticky: boolean;
  readonly createdAt: string;
}

export interface Reservation {
  readonly subnet: string;
  readonly ip: string;
  /** Identity `namespace/name`. */
  readonly owner: string;
  readonly createdAt: string;
}

/** `bound`: in use by a container. `held`: sticky, kept for its identity while no container uses it. */
export type AllocationState = 'bound' | 'held';

export interface Allocation {
  readonly subnet: string;
  readonly ip: string;
  readonly state: AllocationState;
  readonly identity?: string;
  readonly pool?: string;
  readonly tenant: string;
  readonly containerId?: string;
  readonly ifname?: string;
  readonly netns?: string;
  readonly network?: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A workload identity: who is asking, independent of the container ID. */
export interface Identity {
  readonly namespace: string;
  readonly name?: string;
}

export function identityKey(id: Identity): string | undefined {
  return id.name ? `${id.namespace}/${id.name}` : undefined;
}

export function parseOwner(s: string): Identity | undefined {
  const m = /^([a-z0-9]([-a-z0-9_.]*[a-z0-9])?)\/([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/.exec(s);
  if (!m || s.length > 253) return undefined;
  return { namespace: m[1]!, name: m[3]! };
}

export const NAME_RE = /^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$/;
