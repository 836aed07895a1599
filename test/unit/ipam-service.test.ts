/** IpamService over an in-memory Store (same transaction semantics: a throwing write leaves nothing behind). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Store, StoreTx } from '../../src/adapters/store/store.js';
import { AddressUnavailableError, BadRequestError, ConflictError, NotFoundError } from '../../src/core/errors.js';
import type { Attachment } from '../../src/core/ipam/attachment.js';
import type { Allocation, Pool, Reservation, Subnet } from '../../src/core/ipam/model.js';
import { IpamService } from '../../src/daemon/ipam-service.js';
import { fails } from '../helpers/assert-error.js';

interface Tables {
  subnets: Map<string, Subnet>;
  pools: Map<string, Pool>;
  reservations: Map<string, Reservation>;
  allocations: Map<string, Allocation>;
  cursors: Map<string, bigint>;
  attachments: Map<string, Attachment>;
  meta: Map<string, unknown>;
}

class MemStore implements Store {
  readonly path = ':memory:';
  t: Tables = { subnets: new Map(), pools: new Map(), reservations: new Map(), allocations: new Map(), cursors: new Map(), attachments: new Map(), meta: new Map() };

  private tx(): StoreTx {
    const t = this.t;
    const bySubnet = <T extends { subnet: string }>(m: Map<string, T>, subnet?: string): T[] => [...m.values()].filter((x) => subnet === undefined || x.subnet === subnet);
    return {
      getSubnet: (n) => t.subnets.get(n),
      listSubnets: () => [...t.subnets.values()],
      putSubnet: (s) => { t.subnets.set(s.name, s); },
      deleteSubnet: (n) => { t.subnets.delete(n); },
      getPool: (n) => t.pools.get(n),
      listPools: (subnet) => bySubnet(t.pools, subnet),
      putPool: (p) => { t.pools.set(p.name, p); },
      deletePool: (n) => { t.pools.delete(n); },
      listReservations: (subnet) => bySubnet(t.reservations, subnet),
      putReservation: (r) => { t.reservations.set(`${r.subnet}/${r.ip}`, r); },
      deleteReservation: (subnet, ip) => { t.reservations.delete(`${subnet}/${ip}`); },
      reservationAt: (subnet, ip) => t.reservations.get(`${subnet}/${ip}`),
      reservationsOf: (subnet, owner) => bySubnet(t.reservations, subnet).filter((r) => r.owner === owner),
      listAllocations: (subnet) => bySubnet(t.allocations, subnet),
      putAllocation: (a) => { t.allocations.set(`${a.subnet}/${a.ip}`, a); },
      deleteAllocation: (subnet, ip) => { t.allocations.delete(`${subnet}/${ip}`); },
      allocationAt: (subnet, ip) => t.allocations.get(`${subnet}/${ip}`),
      allocationsOf: (subnet, identity) => bySubnet(t.allocations, subnet).filter((a) => a.identity === identity),
      countInUse: (subnet) => bySubnet(t.allocations, subnet).length,
      countInPool: (subnet, pool) => bySubnet(t.allocations, subnet).filter((a) => a.pool === pool).length,
      cursor: (subnet, scope) => t.cursors.get(`${subnet}/${scope}`),
      setCursor: (subnet, scope, v) => { t.cursors.set(`${subnet}/${scope}`, v); },
      clearCursors: (subnet) => { for (const k of [...t.cursors.keys()]) if (k.startsWith(`${subnet}/`)) t.cursors.delete(k); },
      getAttachment: (c, i) => t.attachments.get(`${c}/${i}`),
      listAttachments: () => [...t.attachments.values()],
      putAttachment: (a) => { t.attachments.set(`${a.containerId}/${a.ifname}`, a); },
      deleteAttachment: (c, i) => { t.attachments.delete(`${c}/${i}`); },
      getMeta: <T>(k: string) => t.meta.get(k) as T | undefined,
      putMeta: (k, v) => { t.meta.set(k, v); },
      deleteMeta: (k) => { t.meta.delete(k); },
      listMeta: <T>(prefix: string) => [...t.meta.entries()].filter(([k]) => k.startsWith(prefix)).map(([key, value]) => ({ key, value: value as T })),
    };
  }

  read<T>(fn: (tx: StoreTx) => T): T { return fn(this.tx()); }

  write<T>(fn: (tx: StoreTx) => T): T {
    const saved = Object.fromEntries(Object.entries(this.t).map(([k, m]) => [k, new Map(m as Map<string, unknown>)])) as unknown as Tables;
    try {
      return fn(this.tx());
    } catch (e) {
      this.t = saved;
      throw e;
    }
  }

  async close(): Promise<void> {}
}

const NOW = new Date('2024-01-02T03:04:05.000Z');

function setup(): { store: MemStore; svc: IpamService } {
  const store = new MemStore();
  return { store, svc: new IpamService(store, () => NOW) };
}


const args = (containerId: string, name?: string, extra: Record<string, string> = {}) => ({
  subnet: 'a', identity: { namespace: 'default', ...(name ? { name } : {}) }, containerId, ifname: 'eth0', network: 'weft', ...extra,
});

test('updateSubnet refuses to exclude or take as gateway an allocated or reserved address', () => {
  const { store, svc } = setup();
  svc.createSubnet({ name: 'a', cidr: '10.0.0.0/24' });
  svc.reserve({ subnet: 'a', ip: '10.0.0.7', owner: 'default/r' });
  store.write((tx) => svc.allocate(tx, args('c1')));
  fails(() => svc.updateSubnet('a', { exclude: ['10.0.0.2'] }), ConflictError, 'cannot exclude 10.0.0.2: it is in use by container c1');
  fails(() => svc.updateSubnet('a', { gateway: '10.0.0.2' }), ConflictError, 'cannot make 10.0.0.2 the gateway: it is allocated');
  fails(() => svc.updateSubnet('a', { exclude: ['10.0.0.5-10.0.0.9'] }), ConflictError, 'cannot exclude 10.0.0.7: it is reserved for default/r');
  fails(() => svc.updateSubnet('a', { gateway: '10.0.0.7' }), ConflictError, 'cannot make 10.0.0.7 the gateway: it is reserved for default/r');
  assert.equal(svc.getSubnet('a').gateway, '10.0.0.1', 'nothing changed');
  assert.deepEqual(svc.updateSubnet('a', { exclude: ['10.0.0.100'] }).exclude, [{ start: '10.0.0.100', end: '10.0.0.100' }]);
});

test('allocate, releaseBound (freed / held / absent) and rollback', () => {
  const { store, svc } = setup();
  svc.createSubnet({ name: 'a', cidr: '10.0.0.0/24', sticky: true });
  const one = store.write((tx) => svc.allocate(tx, args('c1', 'web-0')));
  assert.deepEqual(one.allocation, {
    subnet: 'a', ip: '10.0.0.2', state: 'bound', identity: 'default/web-0', tenant: 'default', containerId: 'c1', ifname: 'eth0', network: 'weft',
    createdAt: NOW.toISOString(), updatedAt: NOW.toISOString(),
  });
  assert.equal(store.t.cursors.get('a/'), 0x0a000002n);
  assert.equal(store.write((tx) => svc.releaseBound(tx, 'a', '10.0.0.2', 'other')), 'absent');
  assert.equal(store.write((tx) => svc.releaseBound(tx, 'a', '10.0.0.2', 'c1')), 'held');
  assert.deepEqual(store.t.allocations.get('a/10.0.0.2'), { subnet: 'a', ip: '10.0.0.2', state: 'held', identity: 'default/web-0', tenant: 'default', createdAt: NOW.toISOString(), updatedAt: NOW.toISOString() });
  assert.equal(store.write((tx) => svc.releaseBound(tx, 'a', '10.0.0.2', 'c1')), 'absent', 'held is not bound');
  // an anonymous container's address is freed even on a sticky subnet
  store.write((tx) => svc.allocate(tx, args('c2')));
  assert.equal(store.write((tx) => svc.releaseBound(tx, 'a', '10.0.0.3', 'c2')), 'freed');
  assert.equal(store.t.allocations.has('a/10.0.0.3'), false);
  // taking back the held address, then rolling back restores the held record
  const back = store.write((tx) => svc.allocate(tx, args('c3', 'web-0')));
  assert.equal(back.allocation.ip, '10.0.0.2');
  assert.equal(back.decision.reason, 'sticky');
  assert.equal(back.previous?.state, 'held');
  store.write((tx) => svc.rollback(tx, back));
  assert.equal(store.t.allocations.get('a/10.0.0.2')?.state, 'held');
  const fresh = store.write((tx) => svc.allocate(tx, args('c4')));
  store.write((tx) => svc.rollback(tx, fresh));
  assert.equal(store.t.allocations.has(`a/${fresh.allocation.ip}`), false);
  fails(() => store.write((tx) => svc.allocate(tx, { ...args('c5'), subnet: 'zz' })), NotFoundError, 'subnet "zz" does not exist');
});

test('reserve and release rules', () => {
  const { store, svc } = setup();
  svc.createSubnet({ name: 'a', cidr: '10.0.0.0/24' });
  assert.deepEqual(svc.reserve({ subnet: 'a', ip: '10.0.0.7', owner: 'default/r' }), { subnet: 'a', ip: '10.0.0.7', owner: 'default/r', createdAt: NOW.toISOString() });
  assert.equal(svc.reserve({ subnet: 'a', ip: '10.0.0.7', owner: 'default/r' }).ip, '10.0.0.7', 'idempotent');
  fails(() => svc.reserve({ subnet: 'a', ip: '10.0.0.7', owner: 'default/s' }), ConflictError, '10.0.0.7 is already reserved for default/r');
  fails(() => svc.reserve({ subnet: 'a', ip: '10.0.0.8', owner: 'default/r' }), ConflictError, 'default/r already has 10.0.0.7 reserved in subnet "a"');
  store.write((tx) => svc.allocate(tx, args('c1', 'x')));
  fails(() => svc.reserve({ subnet: 'a', ip: '10.0.0.2', owner: 'default/s' }), ConflictError, '10.0.0.2 is in use by container c1');
  fails(() => svc.reserve({ subnet: 'zz', ip: '10.0.0.2', owner: 'default/s' }), BadRequestError, 'subnet "zz" does not exist');
  fails(() => svc.release('a', '10.0.0.2'), ConflictError, '10.0.0.2 is in use by container c1');
  fails(() => svc.release('a', '10.0.0.99'), NotFoundError, '10.0.0.99 is neither reserved nor allocated in subnet "a"');
  fails(() => svc.release('a', '10.1.0.1'), BadRequestError, '10.1.0.1 is outside subnet "a" (10.0.0.0/24)');
  fails(() => svc.release('a', 'nope'), BadRequestError, '"nope" is not an IP address');
  assert.deepEqual(svc.release('a', '10.0.0.7'), { reservation: true, held: false });
  assert.equal(store.t.reservations.size, 0);
  // the reserved identity gets its address; a failed allocation leaves nothing behind
  svc.reserve({ subnet: 'a', ip: '10.0.0.50', owner: 'default/r' });
  assert.equal(store.write((tx) => svc.allocate(tx, args('c2', 'r'))).allocation.ip, '10.0.0.50');
  const before = new Map(store.t.allocations);
  fails(() => store.write((tx) => svc.allocate(tx, args('c3', 'q', { requestedIp: '10.0.0.50' }))), AddressUnavailableError, 'requested address 10.0.0.50 is reserved for default/r');
  assert.deepEqual(store.t.allocations, before);
  const usage = svc.subnetUsage('a');
  assert.deepEqual({ inUse: usage.inUse, bound: usage.bound, held: usage.held, reserved: usage.reserved, capacity: usage.capacity }, { inUse: 2, bound: 2, held: 0, reserved: 1, capacity: String(253 - 2) });
});
