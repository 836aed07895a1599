/**
 * The allocation decision, free of I/O. The service runs it inside one store
 * write transaction, handing it a synchronous view of that transaction, so
 * the decision and the write that records it are atomic: two ADDs can never
 * pick the same address, and a crash leaves either both or neither.
 */
import { type Ip, formatIp, tryParseIp } from '../ip/addr.js';
import { cidrContains, parseCidr, usableRange } from '../ip/cidr.js';
import { type Interval, intersect, intervalsContain, subtract, walkFrom } from '../ip/ranges.js';
import { AddressElsewhereError, AddressUnavailableError, InvalidConfigError, ShareExhaustedError, PermissionDeniedError, QuotaExceededError, SubnetExhaustedError } from '../errors.js';
import type { Allocation, Identity, Pool, Reservation, Subnet } from './model.js';
import { identityKey } from './model.js';
import { generalSpace, poolSpace, rangesToIntervals } from './spec.js';

/** Synchronous reads of the current transaction. */
export interface AllocationView {
  allocationAt(subnet: string, ip: string): Allocation | undefined;
  reservationAt(subnet: string, ip: string): Reservation | undefined;
  reservationsOf(subnet: string, owner: string): Reservation[];
  allocationsOf(subnet: string, identity: string): Allocation[];
  countInUse(subnet: string): number;
  countInPool(subnet: string, pool: string): number;
  /** Where the last dynamic allocation in this scope ended (round robin: freed addresses are not reused at once). */
  cursor(subnet: string, scope: string): bigint | undefined;
}

export interface AllocationRequest {
  readonly subnet: Subnet;
  /** Every pool of this subnet. */
  readonly pools: readonly Pool[];
  readonly identity: Identity;
  /** An explicit address (ips capability, IP= arg, args.cni.ips). */
  readonly requestedIp?: string;
  /** A pool named in the CNI config. */
  readonly poolName?: string;
  readonly containerId: string;
  /**
   * In a cluster: the part of the subnet this host owns in the IPAM ring
   * (docs/ring.md). Dynamic allocation picks only from it; an explicit or
   * reserved address outside it must be claimed from its owner first.
   * Absent: the whole subnet (a subnet the ring does not manage).
   */
  readonly ownedSpace?: readonly Interval[];
  /**
   * The part of ownedSpace used only when the rest has no free address:
   * space inherited from a peer that was reclaimed. If that peer was only
   * cut off, not dead, its containers may still hold these addresses.
   */
  readonly lastResortSpace?: readonly Interval[];
}

export type AllocationReason = 'requested' | 'reserved' | 'sticky' | 'dynamic';

export interface AllocationDecision {
  readonly ip: Ip;
  readonly pool?: Pool;
  readonly reason: AllocationReason;
  /** True when an existing held allocation of this identity is taken back (already counted in quotas). */
  readonly reuse: boolean;
  /** New cursor to store for the scope, for dynamic decisions. */
  readonly cursor?: { scope: string; value: bigint };
}

export function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(s);
}

export function poolMatches(pool: Pool, id: Identity): boolean {
  if (!pool.match) return false;
  if (pool.match.namespace !== undefined && pool.match.namespace !== id.namespace) return false;
  if (pool.match.name !== undefined && (!id.name || !globMatch(pool.match.name, id.name))) return false;
  return true;
}

function tenantAllowed(tenants: readonly string[], id: Identity): boolean {
  return tenants.length === 0 || tenants.includes(id.namespace);
}

/** Picks the pool a request draws from: the named one, else the first (by name) whose match fits the identity. */
export function selectPool(req: AllocationRequest): Pool | undefined {
  if (req.poolName !== undefined) {
    const p = req.pools.find((x) => x.name === req.poolName);
    if (!p) throw new InvalidConfigError(`pool "${req.poolName}" does not exist in subnet "${req.subnet.name}"`, { hint: 'list pools with `weft pool list`' });
    return p;
  }
  return [...req.pools].sort((a, b) => a.name.localeCompare(b.name)).find((p) => poolMatches(p, req.identity));
}

function who(a: Allocation): string {
  if (a.state === 'held') return `held for ${a.identity ?? 'unknown'} (sticky)`;
  return `in use by container ${a.containerId ?? '?'}${a.identity ? ` (${a.identity})` : ''}`;
}

function checkQuota(view: AllocationView, subnet: Subnet, pool: Pool | undefined): void {
  if (subnet.quota !== undefined && view.countInUse(subnet.name) >= subnet.quota) {
    throw new QuotaExceededError(`subnet "${subnet.name}" is at its quota of ${subnet.quota} addresses in use`, { hint: 'release addresses (`weft ip list`, `weft ip release`) or raise the quota with `weft subnet update --quota`' });
  }
  if (pool?.quota !== undefined && view.countInPool(subnet.name, pool.name) >= pool.quota) {
    throw new QuotaExceededError(`pool "${pool.name}" is at its quota of ${pool.quota} addresses in use`, { hint: 'release addresses or recreate the pool with a larger quota' });
  }
}

export function decide(view: AllocationView, req: AllocationRequest): AllocationDecision {
  const { subnet, identity } = req;
  const idKey = identityKey(identity);
  if (!tenantAllowed(subnet.tenants, identity)) {
    throw new PermissionDeniedError(`tenant "${identity.namespace}" may not allocate in subnet "${subnet.name}" (allowed: ${subnet.tenants.join(', ')})`);
  }
  const pool = selectPool(req);
  if (pool && !tenantAllowed(pool.tenants, identity)) {
    throw new PermissionDeniedError(`tenant "${identity.namespace}" may not allocate from pool "${pool.name}" (allowed: ${pool.tenants.join(', ')})`);
  }
  const cidr = parseCidr(subnet.cidr);

  if (req.requestedIp !== undefined) return decideRequested(view, req, pool, idKey);

  // A reservation for this identity wins over everything else.
  if (idKey) {
    const res = view.reservationsOf(subnet.name, idKey);
    for (const r of res) {
      const a = view.allocationAt(subnet.name, r.ip);
      if (!a) {
        const ip = tryParseIp(r.ip)!;
        // The subnet may have changed since the reservation was made.
        const u = usableRange(cidr);
        const unusable = !cidrContains(cidr, ip) || ip.value < u.first || ip.value > u.last ? 'not a usable address'
          : subnet.gateway === r.ip ? 'the gateway'
            : intervalsContain(rangesToIntervals(subnet.exclude), ip.value) ? 'excluded' : undefined;
        if (unusable) throw new AddressUnavailableError(`${r.ip} is reserved for ${idKey} but is ${unusable} in subnet "${subnet.name}"`, { hint: 'release the reservation with `weft ip release`, or change the subnet back' });
        if (req.ownedSpace && !intervalsContain(req.ownedSpace, ip.value)) throw new AddressElsewhereError(`${r.ip} is reserved for ${idKey} but belongs to another host's share of subnet "${subnet.name}"`, r.ip, { hint: 'the router claims it from its owner first; see `weft status ipam`' });
        // A reserved address inside a pool belongs to that pool (its count, quota and stickiness).
        const inPool = req.pools.find((p) => intervalsContain(rangesToIntervals(p.addresses), ip.value));
        checkQuota(view, subnet, inPool);
        return { ip, reason: 'reserved', reuse: false, ...(inPool ? { pool: inPool } : {}) };
      }
      if (a.state === 'held' && a.identity === idKey) return { ip: tryParseIp(r.ip)!, reason: 'reserved', reuse: true, ...(a.pool ? { pool: req.pools.find((p) => p.name === a.pool)! } : {}) };
    }
    if (res.length > 0) {
      const a = view.allocationAt(subnet.name, res[0]!.ip)!;
      throw new AddressUnavailableError(`${res[0]!.ip} is reserved for ${idKey} but is ${who(a)}`, { hint: 'delete the other container first' });
    }
    // Sticky: an address this identity held before comes back to it.
    const held = view.allocationsOf(subnet.name, idKey).find((a) => a.state === 'held');
    if (held) {
      const hp = held.pool ? req.pools.find((p) => p.name === held.pool) : undefined;
      return { ip: tryParseIp(held.ip)!, reason: 'sticky', reuse: true, ...(hp ? { pool: hp } : {}) };
    }
  }

  checkQuota(view, subnet, pool);
  const whole = pool ? poolSpace(subnet, pool) : generalSpace(subnet, req.pools);
  const space = req.ownedSpace ? intersect(whole, req.ownedSpace) : whole;
  const lastResort = req.lastResortSpace ? intersect(space, req.lastResortSpace) : [];
  const scope = pool ? `pool:${pool.name}` : '';
  const start = view.cursor(subnet.name, scope);
  for (const tier of lastResort.length ? [subtract(space, lastResort), lastResort] : [space]) {
    const from = start === undefined ? (tier[0]?.first ?? 0n) : start + 1n;
    for (const value of walkFrom(tier, from)) {
      const text = formatIp({ family: cidr.family, value });
      if (view.allocationAt(subnet.name, text)) continue;
      if (view.reservationAt(subnet.name, text)) continue;
      return { ip: { family: cidr.family, value }, reason: 'dynamic', reuse: false, cursor: { scope, value }, ...(pool ? { pool } : {}) };
    }
  }
  if (req.ownedSpace) {
    throw new ShareExhaustedError(`this host's share of subnet "${subnet.name}" (${subnet.cidr})${pool ? ` in pool "${pool.name}"` : ''} has no free address`, { hint: 'the router asks other peers for space; if none has any, release addresses (`weft ip list`) or see `weft status ipam`' });
  }
  throw new SubnetExhaustedError(pool ? `pool "${pool.name}" of subnet "${subnet.name}" has no free address` : `subnet "${subnet.name}" (${subnet.cidr}) has no free address`, { hint: 'release addresses (`weft ip list`), or add a subnet' });
}

function decideRequested(view: AllocationView, req: AllocationRequest, pool: Pool | undefined, idKey: string | undefined): AllocationDecision {
  const { subnet } = req;
  const cidr = parseCidr(subnet.cidr);
  const ip = tryParseIp(req.requestedIp!);
  if (!ip) throw new InvalidConfigError(`requested address "${req.requestedIp}" is not an IP address`);
  const text = formatIp(ip);
  if (!cidrContains(cidr, ip)) throw new AddressUnavailableError(`requested address ${text} is outside subnet "${subnet.name}" (${subnet.cidr})`);
  const u = usableRange(cidr);
  if (ip.value < u.first || ip.value > u.last) throw new AddressUnavailableError(`requested address ${text} is the network or broadcast address of ${subnet.cidr}`);
  if (subnet.gateway === text) throw new AddressUnavailableError(`requested address ${text} is the gateway of subnet "${subnet.name}"`);
  if (intervalsContain(rangesToIntervals(subnet.exclude), ip.value)) throw new AddressUnavailableError(`requested address ${text} is excluded in subnet "${subnet.name}"`);
  if (req.ownedSpace && !intervalsContain(req.ownedSpace, ip.value)) throw new AddressElsewhereError(`requested address ${text} belongs to another host's share of subnet "${subnet.name}"`, text, { hint: 'the router claims it from its owner first; see `weft status ipam`' });
  const inPool = req.pools.find((p) => intervalsContain(rangesToIntervals(p.addresses), ip.value));
  if (inPool && inPool !== pool && !poolMatches(inPool, req.identity)) {
    throw new PermissionDeniedError(`requested address ${text} belongs to pool "${inPool.name}", which does not serve ${idKey ?? 'this container'}`);
  }
  if (inPool && !tenantAllowed(inPool.tenants, req.identity)) throw new PermissionDeniedError(`tenant "${req.identity.namespace}" may not use pool "${inPool.name}"`);
  const r = view.reservationAt(subnet.name, text);
  if (r && r.owner !== idKey) throw new AddressUnavailableError(`requested address ${text} is reserved for ${r.owner}`, { hint: 'request another address, or release the reservation with `weft ip release`' });
  const a = view.allocationAt(subnet.name, text);
  if (a) {
    if (a.state === 'held' && a.identity !== undefined && a.identity === idKey) return { ip, reason: 'requested', reuse: true, ...(inPool ? { pool: inPool } : {}) };
    throw new AddressUnavailableError(`requested address ${text} is ${who(a)}`);
  }
  checkQuota(view, subnet, inPool);
  return { ip, reason: 'requested', reuse: false, ...(inPool ? { pool: inPool } : {}) };
}
