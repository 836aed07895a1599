/**
 * Managed IPAM: operator operations on subnets, pools and reservations, and
 * the allocate/release primitives the CNI service runs inside its own store
 * transactions. Counters are never stored: they are derived from the
 * allocation table, so they cannot drift from it.
 */
import type { Store, StoreTx } from '../adapters/store/store.js';
import { decide, type AllocationDecision } from '../core/ipam/allocator.js';
import type { Allocation, Identity, Pool, Reservation, Subnet } from '../core/ipam/model.js';
import { identityKey } from '../core/ipam/model.js';
import { buildPool, buildSubnet, generalSpace, parseReservation, poolSpace, rangesToIntervals, updateSubnet } from '../core/ipam/spec.js';
import { formatIp, parseIp } from '../core/ip/addr.js';
import { cidrContains, parseCidr } from '../core/ip/cidr.js';
import { type Interval, intervalsContain, totalSize } from '../core/ip/ranges.js';
import { type ObjectKind, poolInput, reservationInput, subnetInput } from '../core/cluster/objects.js';
import { AddressUnavailableError, BadRequestError, ConflictError, NotFoundError } from '../core/errors.js';

export interface SubnetUsage {
  readonly subnet: Subnet;
  readonly inUse: number;
  readonly bound: number;
  readonly held: number;
  readonly reserved: number;
  /** Addresses dynamic allocation could still hand out in the general space (capped for huge v6 prefixes). */
  readonly capacity: string;
}

export interface AllocateArgs {
  readonly subnet: string;
  readonly identity: Identity;
  readonly containerId: string;
  readonly ifname: string;
  readonly netns?: string;
  readonly network: string;
  readonly requestedIp?: string;
  readonly poolName?: string;
}

export interface Allocated {
  readonly subnet: Subnet;
  readonly allocation: Allocation;
  readonly decision: AllocationDecision;
  /** What the record was before (a held sticky allocation being reused), to restore on rollback. */
  readonly previous?: Allocation;
}

export interface OwnedSpace {
  readonly owned: readonly Interval[];
  /** Of `owned`, what to allocate from only when the rest is full (AllocationRequest.lastResortSpace). */
  readonly lastResort: readonly Interval[];
}

export class IpamService {
  /** Which part of a subnet this host may allocate from (the IPAM ring's share, inherited space last); undefined = all of it. */
  private ownedSpace: (subnet: Subnet) => OwnedSpace | undefined = () => undefined;

  constructor(private readonly store: Store, private readonly now: () => Date) {}

  setOwnedSpace(fn: (subnet: Subnet) => OwnedSpace | undefined): void {
    this.ownedSpace = fn;
  }

  private readonly mutationListeners: ((kind: ObjectKind, id: string, value: unknown) => void)[] = [];

  /** Called after an operator changed a subnet, pool or reservation (value null: deleted); the cluster replicates it. */
  onMutation(fn: (kind: ObjectKind, id: string, value: unknown) => void): void {
    this.mutationListeners.push(fn);
  }

  private mutated(kind: ObjectKind, id: string, value: unknown): void {
    for (const fn of this.mutationListeners) fn(kind, id, value);
  }

  private stamp(): string {
    return this.now().toISOString();
  }

  // ---- subnets ----
  createSubnet(input: unknown): Subnet {
    const created = this.store.write((tx) => {
      const s = buildSubnet(input, tx.listSubnets(), this.stamp());
      tx.putSubnet(s);
      return s;
    });
    this.mutated('subnet', created.name, subnetInput(created));
    return created;
  }

  ensureDefaultSubnet(name: string, cidr: string): { subnet: Subnet; created: boolean } {
    return this.store.write((tx) => {
      const cur = tx.getSubnet(name);
      if (cur) return { subnet: cur, created: false };
      const s = buildSubnet({ name, cidr }, tx.listSubnets(), this.stamp());
      tx.putSubnet(s);
      return { subnet: s, created: true };
    });
  }

  getSubnet(name: string): Subnet {
    const s = this.store.read((tx) => tx.getSubnet(name));
    if (!s) throw new NotFoundError(`subnet "${name}" does not exist`, { hint: 'list subnets with `weft subnet list`' });
    return s;
  }

  listSubnets(): SubnetUsage[] {
    return this.store.read((tx) => tx.listSubnets().map((s) => this.usage(tx, s)));
  }

  subnetUsage(name: string): SubnetUsage {
    return this.store.read((tx) => {
      const s = tx.getSubnet(name);
      if (!s) throw new NotFoundError(`subnet "${name}" does not exist`, { hint: 'list subnets with `weft subnet list`' });
      return this.usage(tx, s);
    });
  }

  private usage(tx: StoreTx, s: Subnet): SubnetUsage {
    const allocs = tx.listAllocations(s.name);
    const pools = tx.listPools(s.name);
    const space = totalSize(generalSpace(s, pools)) + pools.reduce((n, p) => n + totalSize(poolSpace(s, p)), 0n);
    const free = space - BigInt(allocs.length);
    return {
      subnet: s,
      inUse: allocs.length,
      bound: allocs.filter((a) => a.state === 'bound').length,
      held: allocs.filter((a) => a.state === 'held').length,
      reserved: tx.listReservations(s.name).length,
      capacity: (free < 0n ? 0n : free).toString(),
    };
  }

  updateSubnet(name: string, input: unknown): Subnet {
    const updated = this.store.write((tx) => {
      const cur = tx.getSubnet(name);
      if (!cur) throw new NotFoundError(`subnet "${name}" does not exist`);
      const next = updateSubnet(cur, input);
      // Changing the gateway or exclusions must not strand an address in use.
      const excluded = rangesToIntervals(next.exclude);
      for (const a of tx.listAllocations(name)) {
        const v = parseIp(a.ip).value;
        if (intervalsContain(excluded, v)) throw new ConflictError(`cannot exclude ${a.ip}: it is ${a.state === 'bound' ? `in use by container ${a.containerId}` : `held for ${a.identity}`}`);
        if (next.gateway === a.ip) throw new ConflictError(`cannot make ${a.ip} the gateway: it is allocated`);
      }
      for (const r of tx.listReservations(name)) {
        if (intervalsContain(excluded, parseIp(r.ip).value)) throw new ConflictError(`cannot exclude ${r.ip}: it is reserved for ${r.owner}`, { hint: 'release the reservation first with `weft ip release`' });
        if (next.gateway === r.ip) throw new ConflictError(`cannot make ${r.ip} the gateway: it is reserved for ${r.owner}`, { hint: 'release the reservation first with `weft ip release`' });
      }
      if (cur.gateway !== next.gateway && tx.listAttachments().some((a) => a.ips.some((i) => i.subnet === name) && a.mode === 'bridge')) {
        throw new ConflictError(`cannot change the gateway of subnet "${name}" while containers are attached to it`, { hint: 'remove the containers first' });
      }
      tx.putSubnet(next);
      return next;
    });
    this.mutated('subnet', name, subnetInput(updated));
    return updated;
  }

  deleteSubnet(name: string): void {
    this.store.write((tx) => {
      if (!tx.getSubnet(name)) throw new NotFoundError(`subnet "${name}" does not exist`);
      const n = tx.countInUse(name);
      if (n > 0) throw new ConflictError(`subnet "${name}" still has ${n} address(es) in use`, { hint: '`weft ip list --subnet NAME` shows them; remove the containers or `weft ip release` held addresses first' });
      if (tx.listPools(name).length) throw new ConflictError(`subnet "${name}" still has pools`, { hint: 'delete them with `weft pool delete`' });
      for (const r of tx.listReservations(name)) tx.deleteReservation(name, r.ip);
      tx.clearCursors(name);
      tx.deleteMeta(`subnetBridge/${name}`);
      tx.deleteSubnet(name);
    });
    this.mutated('subnet', name, null);
  }

  // ---- pools ----
  createPool(input: unknown): Pool {
    const created = this.store.write((tx) => {
      const raw = input as { subnet?: unknown };
      const subnet = typeof raw?.subnet === 'string' ? tx.getSubnet(raw.subnet) : undefined;
      const pool = buildPool(input, subnet, tx.listPools(), this.stamp());
      // Addresses already handed out dynamically inside the new pool stay where they are; say so.
      tx.putPool(pool);
      return pool;
    });
    this.mutated('pool', created.name, poolInput(created));
    return created;
  }

  listPools(subnet?: string): { pool: Pool; inUse: number; size: string }[] {
    return this.store.read((tx) => tx.listPools(subnet).map((p) => {
      const s = tx.getSubnet(p.subnet);
      return { pool: p, inUse: tx.countInPool(p.subnet, p.name), size: s ? totalSize(poolSpace(s, p)).toString() : '0' };
    }));
  }

  deletePool(name: string): void {
    this.store.write((tx) => {
      const p = tx.getPool(name);
      if (!p) throw new NotFoundError(`pool "${name}" does not exist`);
      const n = tx.countInPool(p.subnet, name);
      if (n > 0) throw new ConflictError(`pool "${name}" still has ${n} address(es) in use`);
      tx.deletePool(name);
    });
    this.mutated('pool', name, null);
  }

  // ---- reservations and addresses ----
  reserve(input: unknown): Reservation {
    const made = this.store.write((tx) => {
      const raw = input as { subnet?: unknown };
      const subnet = typeof raw?.subnet === 'string' ? tx.getSubnet(raw.subnet) : undefined;
      const r = parseReservation(input, subnet);
      const existing = tx.reservationAt(r.subnet, r.ip);
      if (existing && existing.owner !== r.owner) throw new ConflictError(`${r.ip} is already reserved for ${existing.owner}`, { hint: 'release it first with `weft ip release`' });
      const a = tx.allocationAt(r.subnet, r.ip);
      if (a && a.identity !== r.owner) throw new ConflictError(`${r.ip} is ${a.state === 'bound' ? `in use by container ${a.containerId}` : `held for ${a.identity}`}`, { hint: 'remove that container or release the address first' });
      const other = tx.reservationsOf(r.subnet, r.owner).find((x) => x.ip !== r.ip);
      if (other) throw new ConflictError(`${r.owner} already has ${other.ip} reserved in subnet "${r.subnet}"`, { hint: 'release that reservation first' });
      const rec: Reservation = { ...r, createdAt: existing?.createdAt ?? this.stamp() };
      tx.putReservation(rec);
      return rec;
    });
    this.mutated('reservation', `${made.subnet}/${made.ip}`, reservationInput(made));
    return made;
  }

  /** Releases a reservation and/or a held address. A bound address cannot be released: remove its container. */
  release(subnet: string, ip: string): { reservation: boolean; held: boolean } {
    const out = this.store.write((tx) => {
      const s = tx.getSubnet(subnet);
      if (!s) throw new NotFoundError(`subnet "${subnet}" does not exist`);
      let text: string;
      try { text = formatIp(parseIp(ip)); } catch { throw new BadRequestError(`"${ip}" is not an IP address`); }
      if (!cidrContains(parseCidr(s.cidr), parseIp(text))) throw new BadRequestError(`${text} is outside subnet "${subnet}" (${s.cidr})`);
      const r = tx.reservationAt(subnet, text);
      const a = tx.allocationAt(subnet, text);
      if (a?.state === 'bound' && !r) throw new ConflictError(`${text} is in use by container ${a.containerId}`, { hint: 'remove the container; its DEL releases the address' });
      if (!r && !a) throw new NotFoundError(`${text} is neither reserved nor allocated in subnet "${subnet}"`);
      if (r) tx.deleteReservation(subnet, text);
      const held = a?.state === 'held';
      if (held) tx.deleteAllocation(subnet, text);
      return { reservation: !!r, held, ip: text };
    });
    if (out.reservation) this.mutated('reservation', `${subnet}/${out.ip}`, null);
    return { reservation: out.reservation, held: out.held };
  }

  /** A reservation deleted elsewhere in the cluster: drop it here (a held address stays held). */
  dropReservation(subnet: string, ip: string): boolean {
    return this.store.write((tx) => {
      if (!tx.reservationAt(subnet, ip)) return false;
      tx.deleteReservation(subnet, ip);
      return true;
    });
  }

  /** Whether any address of the subnet is in use here (a replicated delete or redefinition must wait for it). */
  inUse(subnet: string): number {
    return this.store.read((tx) => tx.countInUse(subnet));
  }

  listAddresses(subnet?: string): { allocations: Allocation[]; reservations: Reservation[] } {
    return this.store.read((tx) => ({ allocations: tx.listAllocations(subnet), reservations: tx.listReservations(subnet) }));
  }

  // ---- primitives for the CNI service, inside its transaction ----
  allocate(tx: StoreTx, args: AllocateArgs): Allocated {
    const subnet = tx.getSubnet(args.subnet);
    if (!subnet) throw new NotFoundError(`subnet "${args.subnet}" does not exist`, { hint: 'create it with `weft subnet create` or fix the `subnet` key of the network configuration' });
    const owned = this.ownedSpace(subnet);
    const decision = decide(tx, {
      subnet,
      pools: tx.listPools(subnet.name),
      identity: args.identity,
      containerId: args.containerId,
      ...(owned ? { ownedSpace: owned.owned, lastResortSpace: owned.lastResort } : {}),
      ...(args.requestedIp !== undefined ? { requestedIp: args.requestedIp } : {}),
      ...(args.poolName !== undefined ? { poolName: args.poolName } : {}),
    });
    const ip = formatIp(decision.ip);
    const previous = tx.allocationAt(subnet.name, ip);
    if (previous && !(decision.reuse && previous.state === 'held')) {
      // decide() never returns a taken address; this guards the invariant against future edits.
      throw new AddressUnavailableError(`internal: ${ip} is already allocated`);
    }
    const stamp = this.stamp();
    const idKey = identityKey(args.identity);
    const allocation: Allocation = {
      subnet: subnet.name,
      ip,
      state: 'bound',
      ...(idKey ? { identity: idKey } : {}),
      ...(decision.pool ? { pool: decision.pool.name } : {}),
      tenant: args.identity.namespace,
      containerId: args.containerId,
      ifname: args.ifname,
      ...(args.netns ? { netns: args.netns } : {}),
      network: args.network,
      createdAt: previous?.createdAt ?? stamp,
      updatedAt: stamp,
    };
    tx.putAllocation(allocation);
    if (decision.cursor) tx.setCursor(subnet.name, decision.cursor.scope, decision.cursor.value);
    return { subnet, allocation, decision, ...(previous ? { previous } : {}) };
  }

  /** Undoes allocate() exactly: a reused held record goes back to held, a new one disappears. */
  rollback(tx: StoreTx, a: Allocated): void {
    if (a.previous) tx.putAllocation(a.previous);
    else tx.deleteAllocation(a.allocation.subnet, a.allocation.ip);
  }

  /**
   * Undoes the allocation of an ADD that never completed: an address this ADD took
   * fresh (createdAt = updatedAt) is freed; a held sticky address it reused goes back
   * to held for its identity.
   */
  rollbackBound(tx: StoreTx, subnet: string, ip: string, containerId: string): 'freed' | 'held' | 'absent' {
    const a = tx.allocationAt(subnet, ip);
    if (!a || a.state !== 'bound' || a.containerId !== containerId) return 'absent';
    if (a.createdAt !== a.updatedAt && a.identity) {
      const { containerId: _c, ifname: _i, netns: _n, network: _w, ...rest } = a;
      tx.putAllocation({ ...rest, state: 'held', updatedAt: this.stamp() });
      return 'held';
    }
    tx.deleteAllocation(subnet, ip);
    return 'freed';
  }

  /**
   * Frees an address bound to a container. On a sticky subnet or pool the
   * address stays with its identity (state `held`) until `weft ip release`.
   */
  releaseBound(tx: StoreTx, subnet: string, ip: string, containerId: string): 'freed' | 'held' | 'absent' {
    const a = tx.allocationAt(subnet, ip);
    if (!a || a.state !== 'bound' || a.containerId !== containerId) return 'absent';
    const s = tx.getSubnet(subnet);
    const pool = a.pool ? tx.getPool(a.pool) : undefined;
    const sticky = pool ? pool.sticky : (s?.sticky ?? false);
    if (sticky && a.identity) {
      const { containerId: _c, ifname: _i, netns: _n, network: _w, ...rest } = a;
      tx.putAllocation({ ...rest, state: 'held', updatedAt: this.stamp() });
      return 'held';
    }
    tx.deleteAllocation(subnet, ip);
    return 'freed';
  }
}
