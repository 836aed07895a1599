import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AddressUnavailableError, InvalidConfigError, PermissionDeniedError, QuotaExceededError, SubnetExhaustedError, type WeftError,
} from '../../src/core/errors.js';
import { type AllocationDecision, type AllocationRequest, type AllocationView, decide, globMatch, poolMatches, selectPool } from '../../src/core/ipam/allocator.js';
import { type Allocation, type Identity, identityKey, type Pool, type Reservation, type Subnet } from '../../src/core/ipam/model.js';
import { buildPool, buildSubnet, updateSubnet } from '../../src/core/ipam/spec.js';
import { formatIp } from '../../src/core/ip/addr.js';
import { fails } from '../helpers/assert-error.js';

const NOW = '2024-01-02T03:04:05.000Z';

/** The store's allocation reads, in memory, with the same semantics as the LMDB store. */
class FakeView implements AllocationView {
  readonly allocs = new Map<string, Allocation>();
  readonly reservations = new Map<string, Reservation>();
  readonly cursors = new Map<string, bigint>();

  allocationAt(subnet: string, ip: string): Allocation | undefined { return this.allocs.get(`${subnet}/${ip}`); }
  reservationAt(subnet: string, ip: string): Reservation | undefined { return this.reservations.get(`${subnet}/${ip}`); }
  reservationsOf(subnet: string, owner: string): Reservation[] { return [...this.reservations.values()].filter((r) => r.subnet === subnet && r.owner === owner); }
  allocationsOf(subnet: string, identity: string): Allocation[] { return [...this.allocs.values()].filter((a) => a.subnet === subnet && a.identity === identity); }
  countInUse(subnet: string): number { return [...this.allocs.values()].filter((a) => a.subnet === subnet).length; }
  countInPool(subnet: string, pool: string): number { return [...this.allocs.values()].filter((a) => a.subnet === subnet && a.pool === pool).length; }
  cursor(subnet: string, scope: string): bigint | undefined { return this.cursors.get(`${subnet}/${scope}`); }

  reserve(subnet: string, ip: string, owner: string): void { this.reservations.set(`${subnet}/${ip}`, { subnet, ip, owner, createdAt: NOW }); }
  put(a: Allocation): void { this.allocs.set(`${a.subnet}/${a.ip}`, a); }
  bind(subnet: string, ip: string, identity: string | undefined, containerId: string, pool?: string): void {
    this.put({ subnet, ip, state: 'bound', ...(identity ? { identity } : {}), ...(pool ? { pool } : {}), tenant: identity?.split('/')[0] ?? 'default', containerId, createdAt: NOW, updatedAt: NOW });
  }
  hold(subnet: string, ip: string, identity: string, pool?: string): void {
    this.put({ subnet, ip, state: 'held', identity, ...(pool ? { pool } : {}), tenant: identity.split('/')[0]!, createdAt: NOW, updatedAt: NOW });
  }

  /** Records a decision the way IpamService.allocate does. */
  apply(req: AllocationRequest, d: AllocationDecision): string {
    const ip = formatIp(d.ip);
    const prev = this.allocationAt(req.subnet.name, ip);
    assert.ok(!prev || (d.reuse && prev.state === 'held'), `decision ${ip} is already allocated`);
    this.bind(req.subnet.name, ip, identityKey(req.identity), req.containerId, d.pool?.name);
    if (d.cursor) this.cursors.set(`${req.subnet.name}/${d.cursor.scope}`, d.cursor.value);
    return ip;
  }
}

let seq = 0;
function req(subnet: Subnet, identity: Identity, extra: Partial<AllocationRequest> = {}, pools: Pool[] = []): AllocationRequest {
  return { subnet, pools, identity, containerId: `c${++seq}`, ...extra };
}

/** decide + apply, returning the address. */
function alloc(view: FakeView, r: AllocationRequest): string {
  return view.apply(r, decide(view, r));
}


const anon: Identity = { namespace: 'default' };
const pod = (name: string, namespace = 'default'): Identity => ({ namespace, name });

test('dynamic v4: round robin from the first free address, skipping the gateway, then exhaustion', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/29' }, [], NOW);
  const v = new FakeView();
  const got: string[] = [];
  for (let i = 0; i < 5; i++) got.push(alloc(v, req(s, anon)));
  assert.deepEqual(got, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  fails(() => decide(v, req(s, anon)), SubnetExhaustedError, 'subnet "s" (10.0.0.0/29) has no free address');
  const e = (() => { try { decide(v, req(s, anon)); } catch (x) { return x as WeftError; } return undefined; })();
  assert.equal(e?.code, 'SUBNET_EXHAUSTED');
  assert.equal(e?.cniCode, 100);
});

test('dynamic: decision fields and cursor', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/24' }, [], NOW);
  const v = new FakeView();
  const d = decide(v, req(s, anon));
  assert.deepEqual(d, { ip: { family: 4, value: 0x0a000002n }, reason: 'dynamic', reuse: false, cursor: { scope: '', value: 0x0a000002n } });
});

test('dynamic: freed addresses are not reused at once; the cursor wraps around', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/29' }, [], NOW);
  const v = new FakeView();
  assert.equal(alloc(v, req(s, anon)), '10.0.0.2');
  assert.equal(alloc(v, req(s, anon)), '10.0.0.3');
  v.allocs.delete('s/10.0.0.2');
  assert.equal(alloc(v, req(s, anon)), '10.0.0.4', 'not the just-freed .2');
  assert.equal(alloc(v, req(s, anon)), '10.0.0.5');
  assert.equal(alloc(v, req(s, anon)), '10.0.0.6');
  assert.equal(alloc(v, req(s, anon)), '10.0.0.2', 'wraps around to the freed address');
  v.allocs.delete('s/10.0.0.5');
  assert.equal(alloc(v, req(s, anon)), '10.0.0.5', 'the only free address');
  // a cursor left past the end of the space (space shrank) wraps to the start
  v.allocs.clear();
  v.cursors.set('s/', 0x0a0000ffn);
  assert.equal(alloc(v, req(s, anon)), '10.0.0.2');
});

test('dynamic: skips excluded, reserved, allocated (bound and held) addresses, honours ranges', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/24', ranges: ['10.0.0.10-10.0.0.20'], exclude: ['10.0.0.11', '10.0.0.13-10.0.0.14'] }, [], NOW);
  const v = new FakeView();
  v.reserve('s', '10.0.0.10', 'default/other');
  v.bind('s', '10.0.0.12', undefined, 'x');
  v.hold('s', '10.0.0.15', 'default/someone');
  const got: string[] = [];
  for (let i = 0; i < 5; i++) got.push(alloc(v, req(s, pod(`p${i}`))));
  assert.deepEqual(got, ['10.0.0.16', '10.0.0.17', '10.0.0.18', '10.0.0.19', '10.0.0.20']);
  fails(() => decide(v, req(s, anon)), SubnetExhaustedError, /has no free address/);
});

test('dynamic: the general space never hands out pool addresses', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/29' }, [], NOW);
  const p = buildPool({ name: 'p', subnet: 's', addresses: ['10.0.0.3-10.0.0.5'] }, s, [], NOW);
  const v = new FakeView();
  assert.equal(alloc(v, req(s, anon, {}, [p])), '10.0.0.2');
  assert.equal(alloc(v, req(s, anon, {}, [p])), '10.0.0.6');
  fails(() => decide(v, req(s, anon, {}, [p])), SubnetExhaustedError, 'subnet "s" (10.0.0.0/29) has no free address');
});

test('quota: subnet (bound and held count), pool', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/24', quota: 2 }, [], NOW);
  const v = new FakeView();
  alloc(v, req(s, anon));
  v.hold('s', '10.0.0.100', 'default/h');
  fails(() => decide(v, req(s, anon)), QuotaExceededError, 'subnet "s" is at its quota of 2 addresses in use');
  fails(() => decide(v, req(s, anon, { requestedIp: '10.0.0.50' })), QuotaExceededError, 'subnet "s" is at its quota of 2 addresses in use');
  // taking back a held address is not a new address
  assert.equal(decide(v, req(s, pod('h'))).ip.value, 0x0a000064n);

  const s2 = buildSubnet({ name: 's2', cidr: '10.1.0.0/24' }, [], NOW);
  const p = buildPool({ name: 'p', subnet: 's2', addresses: ['10.1.0.100-10.1.0.120'], quota: 1, match: { namespace: 'db' } }, s2, [], NOW);
  const v2 = new FakeView();
  assert.equal(alloc(v2, req(s2, pod('a', 'db'), {}, [p])), '10.1.0.100');
  fails(() => decide(v2, req(s2, pod('b', 'db'), {}, [p])), QuotaExceededError, 'pool "p" is at its quota of 1 addresses in use');
  fails(() => decide(v2, req(s2, pod('b', 'db'), { requestedIp: '10.1.0.110' }, [p])), QuotaExceededError, 'pool "p" is at its quota of 1 addresses in use');
  // the general space is not limited by the pool's quota
  assert.equal(alloc(v2, req(s2, pod('c', 'web'), {}, [p])), '10.1.0.2');
  const e = (() => { try { decide(v2, req(s2, pod('b', 'db'), {}, [p])); } catch (x) { return x as WeftError; } return undefined; })();
  assert.equal(e?.code, 'QUOTA_EXCEEDED');
});

test('tenants: subnet and pool permissions', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/24', tenants: ['team-a', 'team-b'] }, [], NOW);
  const v = new FakeView();
  fails(() => decide(v, req(s, pod('x', 'team-c'))), PermissionDeniedError, 'tenant "team-c" may not allocate in subnet "s" (allowed: team-a, team-b)');
  fails(() => decide(v, req(s, pod('x', 'team-c'), { requestedIp: '10.0.0.9' })), PermissionDeniedError, /may not allocate in subnet "s"/);
  assert.equal(alloc(v, req(s, pod('x', 'team-b'))), '10.0.0.2');
  const open = buildSubnet({ name: 'o', cidr: '10.1.0.0/24' }, [], NOW);
  const p = buildPool({ name: 'p', subnet: 'o', addresses: ['10.1.0.100-10.1.0.110'], tenants: ['team-a'], match: { name: 'db-*' } }, open, [], NOW);
  fails(() => decide(v, req(open, pod('db-1', 'team-c'), {}, [p])), PermissionDeniedError, 'tenant "team-c" may not allocate from pool "p" (allowed: team-a)');
  fails(() => decide(v, req(open, pod('x', 'team-c'), { poolName: 'p' }, [p])), PermissionDeniedError, /may not allocate from pool "p"/);
  assert.equal(alloc(v, req(open, pod('db-1', 'team-a'), {}, [p])), '10.1.0.100');
  // a request for a pool address outside the selected pool (which matches) still checks that pool's tenants
  const p2 = buildPool({ name: 'q', subnet: 'o', addresses: ['10.1.0.200'], tenants: ['team-z'], match: { namespace: 'team-c' } }, open, [p], NOW);
  fails(() => decide(v, req(open, pod('w', 'team-c'), { requestedIp: '10.1.0.200' }, [p, p2])), PermissionDeniedError, /may not allocate from pool "q"/);
});

test('globMatch and poolMatches', () => {
  assert.ok(globMatch('etcd-*', 'etcd-0'));
  assert.ok(globMatch('etcd-*', 'etcd-'));
  assert.ok(!globMatch('etcd-*', 'xetcd-0'));
  assert.ok(globMatch('a?c', 'abc'));
  assert.ok(!globMatch('a?c', 'ac'));
  assert.ok(!globMatch('a.c', 'abc'), 'dot is literal');
  assert.ok(globMatch('a.c', 'a.c'));
  assert.ok(globMatch('*', ''));
  assert.ok(!globMatch('web', 'web-1'), 'anchored');
  const base = { name: 'p', subnet: 's', addresses: [], tenants: [], sticky: false, createdAt: NOW };
  assert.ok(!poolMatches(base, pod('x')), 'no match: only by name');
  assert.ok(poolMatches({ ...base, match: { namespace: 'db' } }, pod('x', 'db')));
  assert.ok(poolMatches({ ...base, match: { namespace: 'db' } }, { namespace: 'db' }));
  assert.ok(!poolMatches({ ...base, match: { namespace: 'db' } }, pod('x', 'web')));
  assert.ok(poolMatches({ ...base, match: { namespace: 'db', name: 'etcd-?' } }, pod('etcd-1', 'db')));
  assert.ok(!poolMatches({ ...base, match: { namespace: 'db', name: 'etcd-?' } }, pod('etcd-1', 'web')));
  assert.ok(!poolMatches({ ...base, match: { name: 'etcd-*' } }, { namespace: 'db' }), 'a name glob needs a name');
});

test('pool selection: by name, by match (first by name), none', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/24' }, [], NOW);
  const pb = buildPool({ name: 'b-pool', subnet: 's', addresses: ['10.0.0.100-10.0.0.109'], match: { namespace: 'db' } }, s, [], NOW);
  const pa = buildPool({ name: 'a-pool', subnet: 's', addresses: ['10.0.0.110-10.0.0.119'], match: { namespace: 'db', name: 'etcd-*' } }, s, [pb], NOW);
  const pc = buildPool({ name: 'c-pool', subnet: 's', addresses: ['10.0.0.120-10.0.0.129'] }, s, [pa, pb], NOW);
  const pools = [pb, pa, pc];
  assert.equal(selectPool(req(s, pod('etcd-0', 'db'), {}, pools))?.name, 'a-pool');
  assert.equal(selectPool(req(s, pod('pg-0', 'db'), {}, pools))?.name, 'b-pool');
  assert.equal(selectPool(req(s, pod('etcd-0', 'web'), {}, pools)), undefined);
  assert.equal(selectPool(req(s, pod('etcd-0', 'web'), { poolName: 'c-pool' }, pools))?.name, 'c-pool');
  fails(() => selectPool(req(s, anon, { poolName: 'nope' }, pools)), InvalidConfigError, 'pool "nope" does not exist in subnet "s"');

  const v = new FakeView();
  const d = decide(v, req(s, pod('etcd-0', 'db'), {}, pools));
  assert.deepEqual({ ip: formatIp(d.ip), pool: d.pool?.name, reason: d.reason, cursor: d.cursor }, { ip: '10.0.0.110', pool: 'a-pool', reason: 'dynamic', cursor: { scope: 'pool:a-pool', value: 0x0a00006en } });
  assert.equal(alloc(v, req(s, pod('etcd-0', 'db'), {}, pools)), '10.0.0.110');
  assert.equal(alloc(v, req(s, pod('etcd-1', 'db'), {}, pools)), '10.0.0.111');
  assert.equal(alloc(v, req(s, pod('pg-0', 'db'), {}, pools)), '10.0.0.100');
  assert.equal(alloc(v, req(s, pod('x', 'web'), { poolName: 'c-pool' }, pools)), '10.0.0.120');
  assert.equal(alloc(v, req(s, pod('x', 'web'), {}, pools)), '10.0.0.2');
  assert.equal(v.cursor('s', 'pool:a-pool'), 0x0a00006fn);
  assert.equal(v.cursor('s', 'pool:b-pool'), 0x0a000064n);
  assert.equal(v.cursor('s', ''), 0x0a000002n);
  fails(() => decide(v, req(s, anon, { poolName: 'nope' }, pools)), InvalidConfigError, /pool "nope" does not exist/);
  // a pool fills up on its own
  const small = buildPool({ name: 'one', subnet: 's', addresses: ['10.0.0.200'], match: { namespace: 'solo' } }, s, pools, NOW);
  assert.equal(alloc(v, req(s, pod('a', 'solo'), {}, [small])), '10.0.0.200');
  fails(() => decide(v, req(s, pod('b', 'solo'), {}, [small])), SubnetExhaustedError, 'pool "one" of subnet "s" has no free address');
});

test('requested address: exact, canonicalised, with the pool it lies in', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/24' }, [], NOW);
  const p = buildPool({ name: 'p', subnet: 's', addresses: ['10.0.0.100-10.0.0.109'], match: { namespace: 'db' } }, s, [], NOW);
  const v = new FakeView();
  assert.deepEqual(decide(v, req(s, anon, { requestedIp: '10.0.0.77' }, [p])), { ip: { family: 4, value: 0x0a00004dn }, reason: 'requested', reuse: false });
  const inPool = decide(v, req(s, pod('a', 'db'), { requestedIp: '10.0.0.105' }, [p]));
  assert.equal(inPool.pool, p);
  assert.equal(inPool.reason, 'requested');
  assert.equal(inPool.cursor, undefined, 'an explicit address does not move the cursor');
  assert.equal(alloc(v, req(s, anon, { requestedIp: '10.0.0.77' }, [p])), '10.0.0.77');
  assert.equal(alloc(v, req(s, anon, {}, [p])), '10.0.0.2', 'the dynamic cursor is unaffected');
  // requested address in the pool, named by poolName even though the identity does not match
  assert.equal(alloc(v, req(s, pod('a', 'web'), { requestedIp: '10.0.0.101', poolName: 'p' }, [p])), '10.0.0.101');
});

test('requested address: every refusal has a clear error', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/24', exclude: ['10.0.0.50-10.0.0.59'] }, [], NOW);
  const p = buildPool({ name: 'p', subnet: 's', addresses: ['10.0.0.100-10.0.0.109'], match: { namespace: 'db' } }, s, [], NOW);
  const v = new FakeView();
  v.reserve('s', '10.0.0.20', 'default/owner');
  v.bind('s', '10.0.0.30', 'default/user', 'ctr-30');
  v.bind('s', '10.0.0.31', undefined, 'ctr-31');
  v.hold('s', '10.0.0.40', 'default/holder');
  const r = (ip: string, id: Identity = pod('me')): AllocationRequest => req(s, id, { requestedIp: ip }, [p]);
  fails(() => decide(v, r('10.1.0.5')), AddressUnavailableError, 'requested address 10.1.0.5 is outside subnet "s" (10.0.0.0/24)');
  fails(() => decide(v, r('fd00::5')), AddressUnavailableError, 'requested address fd00::5 is outside subnet "s" (10.0.0.0/24)');
  fails(() => decide(v, r('10.0.0.0')), AddressUnavailableError, 'requested address 10.0.0.0 is the network or broadcast address of 10.0.0.0/24');
  fails(() => decide(v, r('10.0.0.255')), AddressUnavailableError, 'requested address 10.0.0.255 is the network or broadcast address of 10.0.0.0/24');
  fails(() => decide(v, r('10.0.0.1')), AddressUnavailableError, 'requested address 10.0.0.1 is the gateway of subnet "s"');
  fails(() => decide(v, r('10.0.0.55')), AddressUnavailableError, 'requested address 10.0.0.55 is excluded in subnet "s"');
  fails(() => decide(v, r('10.0.0.20')), AddressUnavailableError, 'requested address 10.0.0.20 is reserved for default/owner');
  fails(() => decide(v, r('10.0.0.20', anon)), AddressUnavailableError, 'requested address 10.0.0.20 is reserved for default/owner');
  fails(() => decide(v, r('10.0.0.30')), AddressUnavailableError, 'requested address 10.0.0.30 is in use by container ctr-30 (default/user)');
  fails(() => decide(v, r('10.0.0.30', pod('user'))), AddressUnavailableError, 'requested address 10.0.0.30 is in use by container ctr-30 (default/user)');
  fails(() => decide(v, r('10.0.0.31')), AddressUnavailableError, 'requested address 10.0.0.31 is in use by container ctr-31');
  fails(() => decide(v, r('10.0.0.40')), AddressUnavailableError, 'requested address 10.0.0.40 is held for default/holder (sticky)');
  fails(() => decide(v, r('10.0.0.40', anon)), AddressUnavailableError, 'requested address 10.0.0.40 is held for default/holder (sticky)');
  fails(() => decide(v, r('10.0.0.105')), PermissionDeniedError, 'requested address 10.0.0.105 belongs to pool "p", which does not serve default/me');
  fails(() => decide(v, r('10.0.0.105', anon)), PermissionDeniedError, 'requested address 10.0.0.105 belongs to pool "p", which does not serve this container');
  fails(() => decide(v, r('10.0.0.300')), InvalidConfigError, 'requested address "10.0.0.300" is not an IP address');
  fails(() => decide(v, r('')), InvalidConfigError, 'requested address "" is not an IP address');
  // allowed: reserved for me, held for me (taken back), in my pool
  assert.deepEqual(decide(v, r('10.0.0.20', pod('owner'))), { ip: { family: 4, value: 0x0a000014n }, reason: 'requested', reuse: false });
  assert.deepEqual(decide(v, r('10.0.0.40', pod('holder'))), { ip: { family: 4, value: 0x0a000028n }, reason: 'requested', reuse: true });
  assert.equal(formatIp(decide(v, r('10.0.0.105', pod('x', 'db'))).ip), '10.0.0.105');
});

test('reservation wins over the cursor, the pool match and a requested-less request', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/24' }, [], NOW);
  const p = buildPool({ name: 'p', subnet: 's', addresses: ['10.0.0.100-10.0.0.109'], match: { namespace: 'db' } }, s, [], NOW);
  const v = new FakeView();
  v.reserve('s', '10.0.0.42', 'db/etcd-0');
  const d = decide(v, req(s, pod('etcd-0', 'db'), {}, [p]));
  assert.deepEqual(d, { ip: { family: 4, value: 0x0a00002an }, reason: 'reserved', reuse: false });
  alloc(v, req(s, pod('etcd-0', 'db'), {}, [p]));
  assert.equal(v.cursor('s', 'pool:p'), undefined, 'a reservation does not move the cursor');
  // nobody else gets it dynamically, even on wraparound
  const others: string[] = [];
  for (let i = 0; i < 3; i++) others.push(alloc(v, req(s, pod(`w${i}`))));
  assert.deepEqual(others, ['10.0.0.2', '10.0.0.3', '10.0.0.4']);
  // bound by another container of the same identity: a clear error
  fails(() => decide(v, req(s, pod('etcd-0', 'db'), {}, [p])), AddressUnavailableError, /^10\.0\.0\.42 is reserved for db\/etcd-0 but is in use by container c\d+ \(db\/etcd-0\)$/);
  // held for the identity (sticky): taken back
  v.allocs.delete('s/10.0.0.42');
  v.hold('s', '10.0.0.42', 'db/etcd-0');
  assert.deepEqual(decide(v, req(s, pod('etcd-0', 'db'), {}, [p])), { ip: { family: 4, value: 0x0a00002an }, reason: 'reserved', reuse: true });
  // held for someone else (reservation made later): a clear error
  v.allocs.delete('s/10.0.0.42');
  v.hold('s', '10.0.0.42', 'db/etcd-9');
  fails(() => decide(v, req(s, pod('etcd-0', 'db'), {}, [p])), AddressUnavailableError, '10.0.0.42 is reserved for db/etcd-0 but is held for db/etcd-9 (sticky)');
  // a reservation still counts against the subnet quota
  const q = buildSubnet({ name: 'q', cidr: '10.1.0.0/24', quota: 1 }, [], NOW);
  const vq = new FakeView();
  vq.bind('q', '10.1.0.9', undefined, 'x');
  vq.reserve('q', '10.1.0.42', 'default/r');
  fails(() => decide(vq, req(q, pod('r'))), QuotaExceededError, 'subnet "q" is at its quota of 1 addresses in use');
});

test('reservation inside a pool: the allocation belongs to that pool and counts against its quota', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/24' }, [], NOW);
  const p = buildPool({ name: 'p', subnet: 's', addresses: ['10.0.0.100-10.0.0.109'], match: { namespace: 'db' }, quota: 1 }, s, [], NOW);
  const v = new FakeView();
  v.reserve('s', '10.0.0.105', 'db/etcd-0');
  const d = decide(v, req(s, pod('etcd-0', 'db'), {}, [p]));
  assert.equal(formatIp(d.ip), '10.0.0.105');
  assert.equal(d.reason, 'reserved');
  assert.equal(d.pool, p, 'the pool is recorded so pool counts, deletion checks and stickiness see it');
  alloc(v, req(s, pod('etcd-0', 'db'), {}, [p]));
  assert.equal(v.countInPool('s', 'p'), 1);
  fails(() => decide(v, req(s, pod('etcd-1', 'db'), {}, [p])), QuotaExceededError, 'pool "p" is at its quota of 1 addresses in use');
  // and a reservation in a full pool is refused by the pool quota like a requested address would be
  const v2 = new FakeView();
  v2.bind('s', '10.0.0.100', 'db/x', 'cx', 'p');
  v2.reserve('s', '10.0.0.105', 'db/etcd-0');
  fails(() => decide(v2, req(s, pod('etcd-0', 'db'), {}, [p])), QuotaExceededError, 'pool "p" is at its quota of 1 addresses in use');
});

test('sticky: a held address comes back to its identity, with its pool', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/24', sticky: true }, [], NOW);
  const p = buildPool({ name: 'p', subnet: 's', addresses: ['10.0.0.100-10.0.0.109'], match: { namespace: 'db' } }, s, [], NOW);
  const v = new FakeView();
  v.hold('s', '10.0.0.7', 'default/web-0');
  v.hold('s', '10.0.0.103', 'db/pg-0', 'p');
  assert.deepEqual(decide(v, req(s, pod('web-0'), {}, [p])), { ip: { family: 4, value: 0x0a000007n }, reason: 'sticky', reuse: true });
  const dp = decide(v, req(s, pod('pg-0', 'db'), {}, [p]));
  assert.deepEqual({ ip: formatIp(dp.ip), reason: dp.reason, reuse: dp.reuse, pool: dp.pool?.name }, { ip: '10.0.0.103', reason: 'sticky', reuse: true, pool: 'p' });
  assert.equal(alloc(v, req(s, pod('web-0'), {}, [p])), '10.0.0.7');
  // bound now: a second container of the same identity gets a new address
  assert.equal(alloc(v, req(s, pod('web-0'), {}, [p])), '10.0.0.2');
  // others never get a held address
  const v2 = new FakeView();
  v2.hold('s', '10.0.0.2', 'default/web-0');
  assert.equal(alloc(v2, req(s, pod('web-1'))), '10.0.0.3');
  assert.equal(alloc(v2, req(s, anon)), '10.0.0.4');
  // identities without a name never take held addresses
  v2.hold('s', '10.0.0.5', 'default/web-2');
  assert.equal(alloc(v2, req(s, anon)), '10.0.0.6');
});

test('IPv6 subnets: dynamic, requested, exhaustion, canonical text', () => {
  const s = buildSubnet({ name: 'v6', cidr: 'fd00:10::/64' }, [], NOW);
  const v = new FakeView();
  assert.equal(alloc(v, req(s, anon)), 'fd00:10::2');
  assert.equal(alloc(v, req(s, anon)), 'fd00:10::3');
  assert.equal(alloc(v, req(s, anon, { requestedIp: 'FD00:10:0:0::ABCD' })), 'fd00:10::abcd');
  fails(() => decide(v, req(s, anon, { requestedIp: 'fd00:10::abcd' })), AddressUnavailableError, /^requested address fd00:10::abcd is in use by container c\d+$/);
  fails(() => decide(v, req(s, anon, { requestedIp: 'fd00:10::' })), AddressUnavailableError, 'requested address fd00:10:: is the network or broadcast address of fd00:10::/64');
  fails(() => decide(v, req(s, anon, { requestedIp: 'fd00:10::1' })), AddressUnavailableError, 'requested address fd00:10::1 is the gateway of subnet "v6"');
  fails(() => decide(v, req(s, anon, { requestedIp: '10.0.0.1' })), AddressUnavailableError, 'requested address 10.0.0.1 is outside subnet "v6" (fd00:10::/64)');
  // the last address of a v6 prefix is usable (no broadcast)
  assert.equal(alloc(v, req(s, anon, { requestedIp: 'fd00:10::ffff:ffff:ffff:ffff' })), 'fd00:10::ffff:ffff:ffff:ffff');
  // cursor near the top of a /64 wraps to the bottom, lazily
  v.cursors.set('v6/', (0xfd000010n << 96n) + (1n << 64n) - 2n);
  assert.equal(alloc(v, req(s, anon)), 'fd00:10::4', 'skips the taken last address, wraps, skips ::2 and ::3');
  const small = buildSubnet({ name: 'sm', cidr: 'fd00:20::/126' }, [], NOW);
  const vs = new FakeView();
  assert.deepEqual([alloc(vs, req(small, anon)), alloc(vs, req(small, anon))], ['fd00:20::2', 'fd00:20::3']);
  fails(() => decide(vs, req(small, anon)), SubnetExhaustedError, 'subnet "sm" (fd00:20::/126) has no free address');
});

test('a tiny subnet without gateway uses every usable address', () => {
  const s = buildSubnet({ name: 'p2p', cidr: '10.9.0.0/31', gateway: 'none' }, [], NOW);
  const v = new FakeView();
  assert.deepEqual([alloc(v, req(s, anon)), alloc(v, req(s, anon))], ['10.9.0.0', '10.9.0.1']);
  fails(() => decide(v, req(s, anon)), SubnetExhaustedError, /has no free address/);
});

test('a reservation the subnet no longer allows (now excluded or the gateway) is refused, not handed out', () => {
  const s = buildSubnet({ name: 's', cidr: '10.0.0.0/24' }, [], NOW);
  const v = new FakeView();
  v.reserve('s', '10.0.0.7', 'default/r');
  v.reserve('s', '10.0.0.8', 'default/g');
  const excluded = updateSubnet(s, { exclude: ['10.0.0.5-10.0.0.7'] });
  fails(() => decide(v, req(excluded, pod('r'))), AddressUnavailableError, '10.0.0.7 is reserved for default/r but is excluded in subnet "s"');
  const moved = updateSubnet(s, { gateway: '10.0.0.8' });
  fails(() => decide(v, req(moved, pod('g'))), AddressUnavailableError, '10.0.0.8 is reserved for default/g but is the gateway in subnet "s"');
  // the unchanged subnet still hands them out
  assert.equal(formatIp(decide(v, req(s, pod('r'))).ip), '10.0.0.7');
  assert.equal(formatIp(decide(v, req(s, pod('g'))).ip), '10.0.0.8');
});

test('ownedSpace: dynamic allocation stays inside this host\'s share; explicit addresses outside it are refused', async () => {
  const { decide } = await import('../../src/core/ipam/allocator.js');
  const { parseIp } = await import('../../src/core/ip/addr.js');
  const subnet = { name: 's', cidr: '10.9.0.0/24', gateway: '10.9.0.1', ranges: [], exclude: [], routes: [], dns: {}, tenants: [], sticky: false, createdAt: '', updatedAt: '' } as unknown as Parameters<typeof decide>[1]['subnet'];
  const empty = { allocationAt: () => undefined, reservationAt: () => undefined, reservationsOf: () => [], allocationsOf: () => [], cursor: () => undefined, countInSubnet: () => 0, countInPool: () => 0, countForTenant: () => 0 } as unknown as Parameters<typeof decide>[0];
  const owned = [{ first: parseIp('10.9.0.128').value, last: parseIp('10.9.0.131').value }];
  const base = { subnet, pools: [], identity: { namespace: 'default' }, containerId: 'c', ownedSpace: owned };
  const d = decide(empty, base);
  assert.equal(d.ip.value, parseIp('10.9.0.128').value);
  assert.throws(() => decide(empty, { ...base, requestedIp: '10.9.0.5' }), /another host's share/);
  assert.equal(decide(empty, { ...base, requestedIp: '10.9.0.130' }).ip.value, parseIp('10.9.0.130').value);
  const full = { ...empty, allocationAt: () => ({}) } as unknown as Parameters<typeof decide>[0];
  assert.throws(() => decide(full, base), /this host's share/);
});

test('lastResortSpace: inherited space is used only when the rest of the share is full, wherever the cursor is', async () => {
  const { decide } = await import('../../src/core/ipam/allocator.js');
  const { parseIp, formatIp } = await import('../../src/core/ip/addr.js');
  const subnet = { name: 's', cidr: '10.9.0.0/24', gateway: '10.9.0.1', ranges: [], exclude: [], routes: [], dns: {}, tenants: [], sticky: false, createdAt: '', updatedAt: '' } as unknown as Parameters<typeof decide>[1]['subnet'];
  const iv = (a: string, b: string) => ({ first: parseIp(a).value, last: parseIp(b).value });
  // Owned: .10-.13 (inherited, first in address order) and .20-.21 (our own).
  const owned = [iv('10.9.0.10', '10.9.0.13'), iv('10.9.0.20', '10.9.0.21')];
  const lastResort = [iv('10.9.0.10', '10.9.0.13'), iv('10.9.0.200', '10.9.0.201')]; // the part outside `owned` is ignored
  const taken = new Set<string>();
  let cursor: bigint | undefined;
  const view = {
    allocationAt: (_s: string, ip: string) => (taken.has(ip) ? {} : undefined), reservationAt: () => undefined, reservationsOf: () => [], allocationsOf: () => [],
    cursor: () => cursor, countInUse: () => taken.size, countInPool: () => 0,
  } as unknown as Parameters<typeof decide>[0];
  const base = { subnet, pools: [], identity: { namespace: 'default' }, containerId: 'c', ownedSpace: owned, lastResortSpace: lastResort };
  const order: string[] = [];
  for (let i = 0; i < 6; i++) {
    const d = decide(view, base);
    const ip = formatIp(d.ip);
    order.push(ip);
    taken.add(ip);
    cursor = d.cursor!.value;
  }
  assert.deepEqual(order, ['10.9.0.20', '10.9.0.21', '10.9.0.10', '10.9.0.11', '10.9.0.12', '10.9.0.13']);
  // One of our own comes free again while the cursor sits in the inherited space: it goes first.
  taken.delete('10.9.0.20');
  taken.delete('10.9.0.12');
  cursor = parseIp('10.9.0.11').value;
  assert.equal(formatIp(decide(view, base).ip), '10.9.0.20');
  assert.throws(() => decide({ ...view, allocationAt: () => ({}) } as unknown as Parameters<typeof decide>[0], base), /this host's share/);
});
