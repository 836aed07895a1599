/**
 * Property test of the allocator: random allocate/release sequences on random
 * small subnets (v4 and v6, pools, exclusions, reservations, quotas, tenants,
 * stickiness), applied through the real IpamService.allocate/releaseBound on
 * an in-memory transaction, checking the invariants after every step.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Store, StoreTx } from '../../src/adapters/store/store.js';
import { IpamService } from '../../src/daemon/ipam-service.js';
import {
  AddressUnavailableError, BadRequestError, ConflictError, InvalidConfigError, PermissionDeniedError, QuotaExceededError, SubnetExhaustedError,
} from '../../src/core/errors.js';
import { poolMatches } from '../../src/core/ipam/allocator.js';
import { type Allocation, type Identity, identityKey, type Pool, type Reservation, type Subnet } from '../../src/core/ipam/model.js';
import { buildPool, buildSubnet, generalSpace, parseReservation, poolSpace, rangesToIntervals } from '../../src/core/ipam/spec.js';
import { formatIp, tryParseIp } from '../../src/core/ip/addr.js';
import { cidrLast, parseCidr, usableRange } from '../../src/core/ip/cidr.js';
import { type Interval, intervalsContain } from '../../src/core/ip/ranges.js';
import { seededRandom } from '../../src/core/prng.js';

const NOW = new Date('2024-01-02T03:04:05.000Z');

const prng = seededRandom;

/** The parts of a store transaction IpamService.allocate/releaseBound use, in memory. */
class MemTx {
  subnet!: Subnet;
  pools: Pool[] = [];
  readonly allocs = new Map<string, Allocation>();
  readonly reservations = new Map<string, Reservation>();
  readonly cursors = new Map<string, bigint>();

  getSubnet(name: string): Subnet | undefined { return name === this.subnet.name ? this.subnet : undefined; }
  listPools(subnet?: string): Pool[] { return this.pools.filter((p) => subnet === undefined || p.subnet === subnet); }
  getPool(name: string): Pool | undefined { return this.pools.find((p) => p.name === name); }
  allocationAt(subnet: string, ip: string): Allocation | undefined { return this.allocs.get(`${subnet}/${ip}`); }
  reservationAt(subnet: string, ip: string): Reservation | undefined { return this.reservations.get(`${subnet}/${ip}`); }
  reservationsOf(subnet: string, owner: string): Reservation[] { return [...this.reservations.values()].filter((r) => r.subnet === subnet && r.owner === owner); }
  allocationsOf(subnet: string, identity: string): Allocation[] { return [...this.allocs.values()].filter((a) => a.subnet === subnet && a.identity === identity); }
  countInUse(subnet: string): number { let n = 0; for (const a of this.allocs.values()) if (a.subnet === subnet) n++; return n; }
  countInPool(subnet: string, pool: string): number { let n = 0; for (const a of this.allocs.values()) if (a.subnet === subnet && a.pool === pool) n++; return n; }
  cursor(subnet: string, scope: string): bigint | undefined { return this.cursors.get(`${subnet}/${scope}`); }
  setCursor(subnet: string, scope: string, value: bigint): void { this.cursors.set(`${subnet}/${scope}`, value); }
  putAllocation(a: Allocation): void { this.allocs.set(`${a.subnet}/${a.ip}`, a); }
  deleteAllocation(subnet: string, ip: string): void { this.allocs.delete(`${subnet}/${ip}`); }
}

const NAMESPACES = ['default', 'db', 'web'];
const NAMES = ['a-0', 'a-1', 'etcd-0', 'etcd-1', 'pg-0', undefined];

interface World {
  readonly rnd: () => number;
  readonly tx: MemTx;
  readonly family: 4 | 6;
  readonly whole: Interval;
  readonly usable: Interval;
}

function pick<T>(rnd: () => number, list: readonly T[]): T { return list[Math.floor(rnd() * list.length)]!; }
function between(rnd: () => number, a: bigint, b: bigint): bigint { return a + BigInt(Math.floor(rnd() * Number(b - a + 1n))); }

function randomSubnet(rnd: () => number, family: 4 | 6): Subnet {
  for (;;) {
    const prefix = family === 4 ? 26 + Math.floor(rnd() * 4) : 122 + Math.floor(rnd() * 4);
    const cidrText = family === 4
      ? `10.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.0/${prefix}`
      : `fd00:${Math.floor(rnd() * 0xffff).toString(16)}::/${prefix}`;
    const cidr = parseCidr(cidrText);
    const u = usableRange(cidr);
    const addr = (lo: bigint, hi: bigint): string => formatIp({ family, value: between(rnd, lo, hi) });
    const input: Record<string, unknown> = { name: 's', cidr: cidrText };
    const g = rnd();
    if (g < 0.2) input.gateway = 'none';
    else if (g < 0.4) input.gateway = addr(u.first, u.last);
    if (rnd() < 0.3) {
      const a = between(rnd, u.first, u.last);
      const b = between(rnd, a, u.last);
      input.ranges = [`${formatIp({ family, value: a })}-${formatIp({ family, value: b })}`];
    }
    const nex = Math.floor(rnd() * 3);
    const exclude: string[] = [];
    for (let i = 0; i < nex; i++) {
      const a = between(rnd, cidr.base, cidrLast(cidr));
      const b = a + BigInt(Math.floor(rnd() * 4));
      exclude.push(b <= cidrLast(cidr) ? `${formatIp({ family, value: a })}-${formatIp({ family, value: b })}` : formatIp({ family, value: a }));
    }
    if (exclude.length) input.exclude = exclude;
    if (rnd() < 0.3) input.quota = 1 + Math.floor(rnd() * Number(u.last - u.first) / 2);
    if (rnd() < 0.2) input.tenants = ['default', 'db'];
    if (rnd() < 0.4) input.sticky = true;
    try {
      return buildSubnet(input, [], NOW.toISOString());
    } catch (e) {
      if (!(e instanceof BadRequestError)) throw e;
    }
  }
}

function setup(seed: number, family: 4 | 6): World {
  const rnd = prng(seed);
  const tx = new MemTx();
  tx.subnet = randomSubnet(rnd, family);
  const cidr = parseCidr(tx.subnet.cidr);
  const u = usableRange(cidr);
  const w: World = { rnd, tx, family, whole: { first: cidr.base, last: cidrLast(cidr) }, usable: { first: u.first, last: u.last } };
  const npools = Math.floor(rnd() * 4);
  for (let i = 0; i < npools; i++) {
    const a = between(rnd, w.whole.first, w.whole.last);
    const b = a + BigInt(Math.floor(rnd() * 8)) > w.whole.last ? w.whole.last : a + BigInt(Math.floor(rnd() * 8));
    const m = rnd();
    const input: Record<string, unknown> = {
      name: `p${i}`, subnet: 's', addresses: [`${formatIp({ family, value: a })}-${formatIp({ family, value: b })}`],
      ...(m < 0.35 ? { match: { namespace: 'db' } } : m < 0.6 ? { match: { name: 'etcd-*' } } : m < 0.75 ? { match: { namespace: 'web', name: 'a-?' } } : {}),
      ...(rnd() < 0.15 ? { tenants: ['db'] } : {}),
      ...(rnd() < 0.3 ? { quota: 1 + Math.floor(rnd() * 3) } : {}),
      ...(rnd() < 0.3 ? { sticky: rnd() < 0.5 } : {}),
    };
    try {
      tx.pools.push(buildPool(input, tx.subnet, tx.pools, NOW.toISOString()));
    } catch (e) {
      if (!(e instanceof BadRequestError || e instanceof ConflictError)) throw e;
    }
  }
  const nres = Math.floor(rnd() * 4);
  for (let i = 0; i < nres; i++) {
    const owner = `${pick(rnd, NAMESPACES)}/${pick(rnd, NAMES.filter((n) => n))}`;
    try {
      const r = parseReservation({ subnet: 's', ip: formatIp({ family, value: between(rnd, w.whole.first, w.whole.last) }), owner }, tx.subnet);
      // IpamService.reserve's rules: one owner per address, one address per owner.
      if (tx.reservationAt('s', r.ip) || tx.reservationsOf('s', r.owner).length) continue;
      tx.reservations.set(`s/${r.ip}`, { ...r, createdAt: NOW.toISOString() });
    } catch (e) {
      if (!(e instanceof BadRequestError)) throw e;
    }
  }
  return w;
}

const textMemo = new Map<string, string>();
function ipOf(w: World, value: bigint): string {
  const k = `${w.family}:${value}`;
  let t = textMemo.get(k);
  if (t === undefined) { t = formatIp({ family: w.family, value }); textMemo.set(k, t); }
  return t;
}
const valueMemo = new Map<string, bigint>();
/** The value of a canonical address text (memoized: the checks parse the same few addresses over and over). */
function val(text: string): bigint {
  let v = valueMemo.get(text);
  if (v === undefined) { v = tryParseIp(text)!.value; valueMemo.set(text, v); }
  return v;
}
const poolMemo = new WeakMap<Pool, Interval[]>();
function poolOfValue(w: World, v: bigint): Pool | undefined {
  return w.tx.pools.find((p) => {
    let list = poolMemo.get(p);
    if (!list) { list = rangesToIntervals(p.addresses); poolMemo.set(p, list); }
    return intervalsContain(list, v);
  });
}

function tenantOk(tenants: readonly string[], id: Identity): boolean { return tenants.length === 0 || tenants.includes(id.namespace); }

/** The pool a dynamic request draws from, computed independently of the allocator. */
function expectedPool(w: World, id: Identity, poolName: string | undefined): Pool | undefined {
  if (poolName !== undefined) return w.tx.pools.find((p) => p.name === poolName);
  return [...w.tx.pools].sort((a, b) => (a.name < b.name ? -1 : 1)).find((p) => poolMatches(p, id));
}

function* values(space: readonly Interval[]): Generator<bigint> { for (const i of space) for (let v = i.first; v <= i.last; v++) yield v; }

function checkInvariants(w: World, ctx: string): void {
  const { tx } = w;
  const s = tx.subnet;
  const excluded = rangesToIntervals(s.exclude);
  const gw = s.gateway ? val(s.gateway) : undefined;
  const containers = new Set<string>();
  const poolCounts = new Map<string, number>();
  for (const [key, a] of tx.allocs) {
    assert.equal(key, `s/${a.ip}`, ctx);
    const v = val(a.ip);
    assert.equal(ipOf(w, v), a.ip, `${ctx}: canonical text`);
    assert.ok(v >= w.usable.first && v <= w.usable.last, `${ctx}: ${a.ip} outside the usable range`);
    assert.notEqual(v, gw, `${ctx}: gateway ${a.ip} allocated`);
    assert.ok(!intervalsContain(excluded, v), `${ctx}: excluded ${a.ip} allocated`);
    const r = tx.reservationAt('s', a.ip);
    if (r) assert.equal(a.identity, r.owner, `${ctx}: ${a.ip} reserved for ${r.owner} but allocated to ${a.identity}`);
    const p = poolOfValue(w, v);
    assert.equal(a.pool, p?.name, `${ctx}: ${a.ip} recorded in pool ${a.pool}, lies in ${p?.name}`);
    if (p) poolCounts.set(p.name, (poolCounts.get(p.name) ?? 0) + 1);
    if (a.state === 'bound') {
      assert.ok(a.containerId && !containers.has(a.containerId), `${ctx}: container ${a.containerId} bound twice`);
      containers.add(a.containerId);
    } else {
      assert.ok(a.identity, `${ctx}: held without identity`);
      assert.equal(a.containerId, undefined);
    }
  }
  if (s.quota !== undefined) assert.ok(tx.allocs.size <= s.quota, `${ctx}: subnet quota ${s.quota} exceeded (${tx.allocs.size})`);
  for (const p of tx.pools) if (p.quota !== undefined) assert.ok((poolCounts.get(p.name) ?? 0) <= p.quota, `${ctx}: pool ${p.name} quota ${p.quota} exceeded`);
}

interface Stats { steps: number; allocated: number; released: number; errors: Map<string, number> }

function runScenario(seed: number, family: 4 | 6, steps: number, stats: Stats): void {
  const w = setup(seed, family);
  const { tx, rnd } = w;
  const svc = new IpamService({} as Store, () => NOW);
  const stx = tx as unknown as StoreTx;
  let cid = 0;
  for (let step = 0; step < steps; step++) {
    stats.steps++;
    const ctx = `seed ${seed} v${family} step ${step} ${tx.subnet.cidr}`;
    const op = rnd();
    const bound = [...tx.allocs.values()].filter((a) => a.state === 'bound');
    if (op < 0.3 && bound.length) {
      const a = pick(rnd, bound);
      const pool = a.pool ? tx.getPool(a.pool) : undefined;
      const sticky = (pool ? pool.sticky : tx.subnet.sticky) && a.identity !== undefined;
      const out = svc.releaseBound(stx, 's', a.ip, a.containerId!);
      assert.equal(out, sticky ? 'held' : 'freed', ctx);
      const after = tx.allocationAt('s', a.ip);
      if (sticky) assert.deepEqual(after && { state: after.state, identity: after.identity, pool: after.pool }, { state: 'held', identity: a.identity, pool: a.pool }, ctx);
      else assert.equal(after, undefined, ctx);
      stats.released++;
    } else if (op < 0.33 && bound.length) {
      const a = pick(rnd, bound);
      assert.equal(svc.releaseBound(stx, 's', a.ip, 'not-the-container'), 'absent', ctx);
      assert.equal(tx.allocationAt('s', a.ip), a, ctx);
    } else if (op < 0.37) {
      const held = [...tx.allocs.values()].filter((a) => a.state === 'held');
      if (held.length) tx.deleteAllocation('s', pick(rnd, held).ip); // `weft ip release`
    } else {
      const name = pick(rnd, NAMES);
      const identity: Identity = { namespace: pick(rnd, NAMESPACES), ...(name ? { name } : {}) };
      const idKey = identityKey(identity);
      const q = rnd();
      const requestedIp = q < 0.12 ? ipOf(w, between(rnd, w.whole.first, w.whole.last)) : q < 0.14 ? (family === 4 ? '192.0.2.1' : 'fd99::1') : q < 0.15 ? 'bogus' : undefined;
      const pn = rnd();
      const poolName = pn < 0.08 && tx.pools.length ? pick(rnd, tx.pools).name : pn < 0.1 ? 'nope' : undefined;
      const containerId = `c${seed}-${++cid}`;
      const before = new Map(tx.allocs);
      const cursorsBefore = new Map(tx.cursors);
      const myRes = idKey ? tx.reservationsOf('s', idKey) : [];
      const myHeld = idKey ? tx.allocationsOf('s', idKey).find((a) => a.state === 'held') : undefined;
      const selected = expectedPool(w, identity, poolName);
      try {
        const out = svc.allocate(stx, { subnet: 's', identity, containerId, ifname: 'eth0', network: 'n', ...(requestedIp !== undefined ? { requestedIp } : {}), ...(poolName !== undefined ? { poolName } : {}) });
        stats.allocated++;
        const ip = out.allocation.ip;
        const v = val(ip);
        const prev = before.get(`s/${ip}`);
        assert.ok(!prev || (prev.state === 'held' && prev.identity === idKey && idKey !== undefined), `${ctx}: ${ip} handed out twice (${prev?.state} ${prev?.identity}) to ${idKey}`);
        assert.ok(tenantOk(tx.subnet.tenants, identity), `${ctx}: tenant ${identity.namespace} allocated in a subnet that does not allow it`);
        const inPool = poolOfValue(w, v);
        if (inPool) assert.ok(tenantOk(inPool.tenants, identity), `${ctx}: tenant ${identity.namespace} got ${ip} from pool ${inPool.name}`);
        assert.equal(out.allocation.state, 'bound');
        assert.equal(out.allocation.containerId, containerId);
        assert.equal(out.allocation.identity, idKey);
        if (requestedIp !== undefined) {
          assert.equal(ip, formatIp(tryParseIp(requestedIp)!), `${ctx}: requested ${requestedIp}, got ${ip}`);
          assert.equal(out.decision.reason, 'requested');
          assert.ok(!inPool || inPool === selected || poolMatches(inPool, identity), `${ctx}: ${ip} from pool ${inPool?.name} that does not serve ${idKey}`);
        } else if (myRes.length) {
          assert.ok(myRes.some((r) => r.ip === ip), `${ctx}: ${idKey} has a reservation but got ${ip}`);
          assert.equal(out.decision.reason, 'reserved');
        } else if (myHeld) {
          assert.equal(ip, myHeld.ip, `${ctx}: ${idKey} held ${myHeld.ip} but got ${ip}`);
          assert.equal(out.decision.reason, 'sticky');
        } else {
          assert.equal(out.decision.reason, 'dynamic');
          assert.equal(prev, undefined);
          assert.equal(out.decision.pool, selected, `${ctx}: dynamic pool`);
          // round robin: the first free address after the scope's cursor, in cyclic order
          const space = selected ? poolSpace(tx.subnet, selected) : generalSpace(tx.subnet, tx.pools);
          const all = [...values(space)];
          const cur = cursorsBefore.get(`s/${selected ? `pool:${selected.name}` : ''}`);
          const startAt = cur === undefined ? 0 : all.findIndex((x) => x > cur);
          const order = startAt < 0 ? all : [...all.slice(startAt), ...all.slice(0, startAt)];
          const want = order.find((x) => !before.has(`s/${ipOf(w, x)}`) && !tx.reservationAt('s', ipOf(w, x)));
          assert.equal(ip, want === undefined ? undefined : ipOf(w, want), `${ctx}: round robin`);
          assert.equal(tx.cursor('s', selected ? `pool:${selected.name}` : ''), v, `${ctx}: cursor`);
        }
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        assert.deepEqual(tx.allocs, before, `${ctx}: a failed allocation changed the allocations`);
        const name = (e as Error).constructor.name;
        stats.errors.set(name, (stats.errors.get(name) ?? 0) + 1);
        const msg = (e as Error).message;
        const s = tx.subnet;
        if (e instanceof SubnetExhaustedError) {
          assert.equal(requestedIp, undefined, `${ctx}: exhaustion on a requested address`);
          assert.equal(myRes.length, 0, `${ctx}: exhaustion with a reservation`);
          assert.equal(myHeld, undefined, `${ctx}: exhaustion with a held address`);
          const space = selected ? poolSpace(s, selected) : generalSpace(s, tx.pools);
          for (const x of values(space)) {
            const t = ipOf(w, x);
            assert.ok(before.has(`s/${t}`) || tx.reservationAt('s', t), `${ctx}: exhausted but ${t} is free (${msg})`);
          }
        } else if (e instanceof QuotaExceededError) {
          const m = /^pool "([^"]+)"/.exec(msg);
          if (m) {
            const p = tx.getPool(m[1]!)!;
            assert.ok(p.quota !== undefined && tx.countInPool('s', p.name) >= p.quota, `${ctx}: ${msg}`);
          } else {
            assert.ok(s.quota !== undefined && tx.countInUse('s') >= s.quota, `${ctx}: ${msg}`);
          }
        } else if (e instanceof PermissionDeniedError) {
          const m = /pool "([^"]+)"/.exec(msg);
          if (!tenantOk(s.tenants, identity)) assert.match(msg, /may not allocate in subnet "s"/, ctx);
          else if (/belongs to pool/.test(msg)) {
            const p = tx.getPool(m![1]!)!;
            assert.ok(requestedIp !== undefined && poolOfValue(w, tryParseIp(requestedIp)!.value) === p && p !== selected && !poolMatches(p, identity), `${ctx}: ${msg}`);
          } else {
            assert.ok(m && !tenantOk(tx.getPool(m[1]!)!.tenants, identity), `${ctx}: ${msg}`);
          }
        } else if (e instanceof AddressUnavailableError) {
          if (requestedIp !== undefined) {
            const v = tryParseIp(requestedIp)!.value;
            const t = formatIp(tryParseIp(requestedIp)!);
            const a = before.get(`s/${t}`);
            const r = tx.reservationAt('s', t);
            const reason = v < w.whole.first || v > w.whole.last || v < w.usable.first || v > w.usable.last || t === s.gateway
              || intervalsContain(rangesToIntervals(s.exclude), v) || (r && r.owner !== idKey) || (a && !(a.state === 'held' && a.identity === idKey && idKey));
            assert.ok(reason, `${ctx}: ${msg}`);
          } else {
            assert.ok(myRes.length > 0, `${ctx}: ${msg}`);
            for (const r of myRes) {
              const a = before.get(`s/${r.ip}`);
              assert.ok(a && !(a.state === 'held' && a.identity === idKey), `${ctx}: reserved ${r.ip} was available: ${msg}`);
            }
          }
        } else if (e instanceof InvalidConfigError) {
          assert.ok(poolName === 'nope' || requestedIp === 'bogus', `${ctx}: ${msg}`);
        } else {
          throw e;
        }
      }
    }
    checkInvariants(w, ctx);
  }
}

function stats(): Stats { return { steps: 0, allocated: 0, released: 0, errors: new Map() }; }

test('property: random allocate/release on small IPv4 subnets keeps every invariant', () => {
  const st = stats();
  for (let seed = 1; seed <= 45; seed++) runScenario(seed, 4, 100, st);
  assert.equal(st.steps, 4500);
  // the generator really exercises the interesting paths
  assert.ok(st.allocated > 1200, `allocated ${st.allocated}`);
  assert.ok(st.released > 700, `released ${st.released}`);
  for (const k of ['SubnetExhaustedError', 'AddressUnavailableError', 'QuotaExceededError', 'InvalidConfigError']) assert.ok((st.errors.get(k) ?? 0) > 0, `never saw ${k}`);
});

test('property: random allocate/release on small IPv6 subnets keeps every invariant', () => {
  const st = stats();
  for (let seed = 1001; seed <= 1025; seed++) runScenario(seed, 6, 100, st);
  assert.equal(st.steps, 2500);
  assert.ok(st.allocated > 800, `allocated ${st.allocated}`);
  for (const k of ['SubnetExhaustedError', 'AddressUnavailableError']) assert.ok((st.errors.get(k) ?? 0) > 0, `never saw ${k}`);
});

test('property: a full subnet hands out every allocatable address exactly once before exhaustion', () => {
  for (let seed = 1; seed <= 80; seed++) {
    const rnd = prng(seed * 7919);
    const family = rnd() < 0.5 ? 4 : 6;
    const tx = new MemTx();
    tx.subnet = randomSubnet(rnd, family);
    if (tx.subnet.quota !== undefined) tx.subnet = { ...tx.subnet, quota: undefined } as Subnet;
    tx.subnet = { ...tx.subnet, tenants: [] };
    const svc = new IpamService({} as Store, () => NOW);
    const expected = new Set([...values(generalSpace(tx.subnet, []))].map((v) => formatIp({ family, value: v })));
    const got = new Set<string>();
    for (let i = 0; ; i++) {
      try {
        const out = svc.allocate(tx as unknown as StoreTx, { subnet: 's', identity: { namespace: 'default' }, containerId: `c${i}`, ifname: 'eth0', network: 'n' });
        assert.ok(!got.has(out.allocation.ip), `seed ${seed}: ${out.allocation.ip} twice`);
        got.add(out.allocation.ip);
      } catch (e) {
        assert.ok(e instanceof SubnetExhaustedError, String(e));
        break;
      }
      assert.ok(i <= expected.size, `seed ${seed}: more allocations than addresses`);
    }
    assert.deepEqual([...got].sort(), [...expected].sort(), `seed ${seed} ${tx.subnet.cidr}`);
  }
});
