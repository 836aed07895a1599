/**
 * Cluster-wide IPAM objects (subnets, pools, reservations) as replicated
 * last-writer-wins registers on the `cluster.objects` gossip channel (an
 * LwwMap, src/core/mesh/gossip/lww-map.ts). Pure: keys, values and the
 * record ⇄ input conversions. The value of a key is the object in the API's
 * own input form (docs/api.md), JSON-encoded, or a tombstone for a delete;
 * a receiving router applies it through the same validation as an API call.
 */
import type { Pool, Reservation, Subnet } from '../ipam/model.js';

export const OBJECTS_CHANNEL = 'cluster.objects';

export type ObjectKind = 'subnet' | 'pool' | 'reservation';

export interface ObjectKey {
  readonly kind: ObjectKind;
  /** subnet and pool: the name; reservation: SUBNET/IP. */
  readonly id: string;
}

export function objectKey(kind: ObjectKind, id: string): string {
  return `${kind}/${id}`;
}

export function parseObjectKey(key: string): ObjectKey | undefined {
  const i = key.indexOf('/');
  if (i < 0) return undefined;
  const kind = key.slice(0, i);
  const id = key.slice(i + 1);
  if (id === '' || (kind !== 'subnet' && kind !== 'pool' && kind !== 'reservation')) return undefined;
  if (kind === 'reservation' && !/^[^/]+\/[^/]+$/.test(id)) return undefined;
  return { kind, id };
}

export interface SubnetInputForm {
  name: string;
  cidr: string;
  gateway: string;
  ranges: string[];
  exclude: string[];
  routes: { dst: string; gw?: string }[];
  dns: { nameservers?: string[]; search?: string[]; domain?: string; options?: string[] };
  tenants: string[];
  quota: number | null;
  sticky: boolean;
}

const range = (r: { start: string; end: string }): string => (r.start === r.end ? r.start : `${r.start}-${r.end}`);

/** The input that, given to `weft subnet create`, builds this subnet again. */
export function subnetInput(s: Subnet): SubnetInputForm {
  return {
    name: s.name, cidr: s.cidr, gateway: s.gateway ?? 'none', ranges: s.ranges.map(range), exclude: s.exclude.map(range),
    routes: s.routes.map((r) => ({ dst: r.dst, ...(r.gw !== undefined ? { gw: r.gw } : {}) })),
    dns: { ...s.dns } as SubnetInputForm['dns'], tenants: [...s.tenants], quota: s.quota ?? null, sticky: s.sticky,
  };
}

/** The same without the immutable fields: the input of `weft subnet update`. */
export function subnetUpdate(i: SubnetInputForm): Omit<SubnetInputForm, 'name' | 'cidr'> {
  const { name: _n, cidr: _c, ...rest } = i;
  return rest;
}

export interface PoolInputForm {
  name: string;
  subnet: string;
  addresses: string[];
  match?: { namespace?: string; name?: string };
  tenants: string[];
  quota: number | null;
  sticky: boolean;
}

export function poolInput(p: Pool): PoolInputForm {
  return {
    name: p.name, subnet: p.subnet, addresses: p.addresses.map(range), ...(p.match ? { match: { ...p.match } } : {}),
    tenants: [...p.tenants], quota: p.quota ?? null, sticky: p.sticky,
  };
}

export function reservationInput(r: Reservation): { subnet: string; ip: string; owner: string } {
  return { subnet: r.subnet, ip: r.ip, owner: r.owner };
}

/** Canonical JSON (sorted keys), so two routers encode the same object identically. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x)
    ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : x));
}
