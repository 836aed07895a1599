import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BadRequestError, ConflictError } from '../../src/core/errors.js';
import type { Pool, Subnet } from '../../src/core/ipam/model.js';
import {
  buildPool, buildSubnet, describeIntervals, generalSpace, parseReservation, parseShape, poolSpace, rangesToIntervals, SubnetInputSchema, updateSubnet,
} from '../../src/core/ipam/spec.js';
import { parseIp } from '../../src/core/ip/addr.js';
import type { Interval } from '../../src/core/ip/ranges.js';

const NOW = '2024-01-02T03:04:05.000Z';
const ipv = (s: string): bigint => parseIp(s).value;
const iv = (a: string, b = a): Interval => ({ first: ipv(a), last: ipv(b) });

function subnet(input: Record<string, unknown>, existing: Subnet[] = []): Subnet {
  return buildSubnet(input, existing, NOW);
}

function badRequest(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BadRequestError, `expected BadRequestError, got ${String(e)}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.equal(e.code, 'BAD_REQUEST');
    assert.equal(e.status, 400);
    return true;
  });
}

function conflict(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConflictError, `expected ConflictError, got ${String(e)}`);
    assert.equal(e.message, message);
    assert.equal(e.status, 409);
    return true;
  });
}

test('buildSubnet: minimal v4 gets defaults (gateway, default route, empty lists)', () => {
  const s = subnet({ name: 'net-a', cidr: '10.40.0.0/24' });
  assert.deepEqual(s, {
    name: 'net-a',
    cidr: '10.40.0.0/24',
    gateway: '10.40.0.1',
    ranges: [],
    exclude: [],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: { nameservers: [], search: [], options: [] },
    tenants: [],
    sticky: false,
    createdAt: NOW,
  });
});

test('buildSubnet: minimal v6 gets canonical text and ::/0 default route', () => {
  const s = subnet({ name: 'v6', cidr: 'FD00:40:0:0::/64' });
  assert.equal(s.cidr, 'fd00:40::/64');
  assert.equal(s.gateway, 'fd00:40::1');
  assert.deepEqual(s.routes, [{ dst: '::/0' }]);
});

test('buildSubnet: every field, canonicalized', () => {
  const s = subnet({
    name: 'full', cidr: '10.41.0.0/24', gateway: '10.41.0.254',
    ranges: ['10.41.0.10-10.41.0.20', '10.41.0.21', '10.41.0.64/27'], exclude: ['10.41.0.15', '10.41.0.0'],
    routes: [{ dst: '192.168.0.5/16', gw: '10.41.0.254' }, { dst: '0.0.0.0/0' }],
    dns: { nameservers: ['10.41.0.2', 'fd00::53'], search: ['svc.local'], domain: 'local', options: ['ndots:2'] },
    tenants: ['team-a'], quota: 10, sticky: true,
  });
  assert.deepEqual(s, {
    name: 'full', cidr: '10.41.0.0/24', gateway: '10.41.0.254',
    ranges: [{ start: '10.41.0.10', end: '10.41.0.21' }, { start: '10.41.0.64', end: '10.41.0.95' }],
    exclude: [{ start: '10.41.0.0', end: '10.41.0.0' }, { start: '10.41.0.15', end: '10.41.0.15' }],
    routes: [{ dst: '192.168.0.0/16', gw: '10.41.0.254' }, { dst: '0.0.0.0/0' }],
    dns: { nameservers: ['10.41.0.2', 'fd00::53'], search: ['svc.local'], domain: 'local', options: ['ndots:2'] },
    tenants: ['team-a'], quota: 10, sticky: true, createdAt: NOW,
  });
});

test('buildSubnet: host bits rejected with a hint; malformed prefix', () => {
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.5/24' }), 'cidr "10.40.0.5/24" has host bits set; did you mean 10.40.0.0/24?');
  badRequest(() => subnet({ name: 'a', cidr: 'fd00::1/64' }), 'cidr "fd00::1/64" has host bits set; did you mean fd00::/64?');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0' }), 'cidr "10.40.0.0" is not a prefix like 10.40.0.0/24 or fd00:40::/64');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/33' }), /is not a prefix/);
});

test('buildSubnet: name conflicts and overlapping prefixes', () => {
  const a = subnet({ name: 'a', cidr: '10.40.0.0/16' });
  const b6 = subnet({ name: 'b6', cidr: 'fd00::/48' });
  assert.throws(() => subnet({ name: 'a', cidr: '10.50.0.0/24' }, [a]), (e: unknown) => e instanceof ConflictError && e.message === 'subnet "a" already exists' && e.hint === 'use `weft subnet update` to change it');
  conflict(() => subnet({ name: 'c', cidr: '10.40.7.0/24' }, [a, b6]), 'subnet 10.40.7.0/24 overlaps subnet "a" (10.40.0.0/16)');
  conflict(() => subnet({ name: 'c', cidr: '10.0.0.0/8' }, [a, b6]), 'subnet 10.0.0.0/8 overlaps subnet "a" (10.40.0.0/16)');
  conflict(() => subnet({ name: 'c', cidr: 'fd00:0:0:1::/64' }, [a, b6]), 'subnet fd00:0:0:1::/64 overlaps subnet "b6" (fd00::/48)');
  // adjacent and other-family prefixes are fine
  assert.equal(subnet({ name: 'c', cidr: '10.41.0.0/16' }, [a, b6]).cidr, '10.41.0.0/16');
  assert.equal(subnet({ name: 'c', cidr: 'fd01::/64' }, [a, b6]).cidr, 'fd01::/64');
});

test('buildSubnet: gateway explicit, none, outside, network, broadcast', () => {
  assert.equal(subnet({ name: 'a', cidr: '10.40.0.0/24', gateway: '10.40.0.254' }).gateway, '10.40.0.254');
  assert.equal(subnet({ name: 'a', cidr: 'fd00::/64', gateway: 'FD00::00FE' }).gateway, 'fd00::fe');
  const none = subnet({ name: 'a', cidr: '10.40.0.0/24', gateway: 'none' });
  assert.equal(none.gateway, undefined);
  assert.ok(!('gateway' in none));
  assert.deepEqual(none.routes, [], 'no gateway: no default route');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', gateway: '10.41.0.1' }), 'gateway "10.41.0.1" is not an address inside 10.40.0.0/24');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', gateway: 'fd00::1' }), 'gateway "fd00::1" is not an address inside 10.40.0.0/24');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', gateway: 'auto' }), 'gateway "auto" is not an address inside 10.40.0.0/24');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', gateway: '10.40.0.0' }), 'gateway "10.40.0.0" is the network or broadcast address of 10.40.0.0/24');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', gateway: '10.40.0.255' }), 'gateway "10.40.0.255" is the network or broadcast address of 10.40.0.0/24');
  badRequest(() => subnet({ name: 'a', cidr: 'fd00::/64', gateway: 'fd00::' }), 'gateway "fd00::" is the network or broadcast address of fd00::/64');
  // /31: both addresses usable, the first is the default gateway
  const p2p = subnet({ name: 'a', cidr: '10.40.0.0/31' });
  assert.equal(p2p.gateway, '10.40.0.0');
});

test('buildSubnet: no allocatable address left', () => {
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.1/32' }), 'subnet 10.40.0.1/32 leaves no address to allocate after ranges, exclusions and the gateway');
  assert.equal(subnet({ name: 'a', cidr: '10.40.0.1/32', gateway: 'none' }).cidr, '10.40.0.1/32');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/30', exclude: ['10.40.0.2'] }), /leaves no address to allocate/);
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', ranges: ['10.40.0.5'], gateway: '10.40.0.5' }), /leaves no address to allocate/);
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', ranges: ['10.40.0.5-10.40.0.9'], exclude: ['10.40.0.4-10.40.0.10'] }), /leaves no address to allocate/);
  assert.equal(subnet({ name: 'a', cidr: '10.40.0.0/30', exclude: ['10.40.0.1'], gateway: 'none' }).gateway, undefined);
});

test('buildSubnet: ranges and exclude parsing and bounds', () => {
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', ranges: ['10.40.0.9-10.40.0.5'] }), 'ranges: "10.40.0.9-10.40.0.5" is not an IPv4 address, range (A-B) or prefix');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', ranges: ['fd00::1'] }), 'ranges: "fd00::1" is not an IPv4 address, range (A-B) or prefix');
  badRequest(() => subnet({ name: 'a', cidr: 'fd00::/64', exclude: ['10.0.0.1'] }), 'exclude: "10.0.0.1" is not an IPv6 address, range (A-B) or prefix');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', ranges: ['10.40.0.0/25'] }), 'ranges: "10.40.0.0/25" is outside the subnet');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', ranges: ['10.40.0.255'] }), 'ranges: "10.40.0.255" is outside the subnet');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', ranges: ['10.40.0.200-10.40.1.5'] }), 'ranges: "10.40.0.200-10.40.1.5" is outside the subnet');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', exclude: ['10.40.1.0'] }), 'exclude: "10.40.1.0" is outside the subnet');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', exclude: ['10.40.0.5/24'] }), /exclude: "10.40.0.5\/24" is not an IPv4/);
  // exclude may name network/broadcast (harmless), ranges are clipped to usable addresses only by validation
  const s = subnet({ name: 'a', cidr: '10.40.0.0/24', exclude: ['10.40.0.255', '10.40.0.0'] });
  assert.deepEqual(s.exclude, [{ start: '10.40.0.0', end: '10.40.0.0' }, { start: '10.40.0.255', end: '10.40.0.255' }]);
  // exclude covering everything but one address still leaves the gateway's neighbour
  assert.throws(() => subnet({ name: 'b', cidr: '10.40.0.0/24', exclude: ['10.40.0.0/24'] }), BadRequestError);
  const v6 = subnet({ name: 'c', cidr: 'fd00::/120', ranges: ['fd00::10-fd00::1f', 'fd00::20/124'], exclude: ['FD00::11'] });
  assert.deepEqual(v6.ranges, [{ start: 'fd00::10', end: 'fd00::2f' }]);
  assert.deepEqual(v6.exclude, [{ start: 'fd00::11', end: 'fd00::11' }]);
});

test('buildSubnet: routes validation and default via gateway', () => {
  assert.deepEqual(subnet({ name: 'a', cidr: '10.40.0.0/24', routes: [] }).routes, [], 'explicit empty list: no routes');
  assert.deepEqual(subnet({ name: 'a', cidr: 'fd00::/64', routes: [{ dst: 'fd01::5/64', gw: 'FD00::FE' }] }).routes, [{ dst: 'fd01::/64', gw: 'fd00::fe' }]);
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', routes: [{ dst: 'fd00::/64' }] }), 'routes: "fd00::/64" is not an IPv4 prefix');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', routes: [{ dst: 'default' }] }), 'routes: "default" is not an IPv4 prefix');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', routes: [{ dst: '0.0.0.0/0', gw: 'fd00::1' }] }), 'routes: gateway "fd00::1" is not an IPv4 address');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', routes: [{ dst: '0.0.0.0/0', gw: 'x' }] }), 'routes: gateway "x" is not an IPv4 address');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', routes: [{ dst: '0.0.0.0/0', via: '10.40.0.1' }] }), 'unknown field "routes.0.via" in subnet');
});

test('buildSubnet: DNS validation', () => {
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', dns: { nameservers: ['8.8.8.8', 'dns.google'] } }), 'dns.nameservers: "dns.google" is not an IP address');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', dns: { nameservers: '8.8.8.8' } }), /^subnet field "dns.nameservers": /);
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', dns: { servers: [] } }), 'unknown field "dns.servers" in subnet');
  const s = subnet({ name: 'a', cidr: '10.40.0.0/24', dns: { search: ['a.b'] } });
  assert.deepEqual(s.dns, { nameservers: [], search: ['a.b'], options: [] });
  assert.ok(!('domain' in s.dns));
});

test('shape errors name the field: unknown, missing, wrong type, non-object input', () => {
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', bogus: 1 }), 'unknown field "bogus" in subnet');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', Gateway: '10.40.0.1' }), 'unknown field "Gateway" in subnet');
  badRequest(() => subnet({ cidr: '10.40.0.0/24' }), 'subnet field "name" is required');
  badRequest(() => subnet({ name: 'a' }), 'subnet field "cidr" is required');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', routes: [{ gw: '10.40.0.1' }] }), 'subnet field "routes.0.dst" is required');
  badRequest(() => subnet({ name: 'a', cidr: 5 }), 'subnet field "cidr": Invalid type: Expected string but received 5');
  badRequest(() => subnet({ name: 'Bad_Name!', cidr: '10.40.0.0/24' }), 'subnet field "name": must be 1-63 lower-case letters, digits, "-", "_" or "." and start and end with a letter or digit');
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', quota: 0 }), /^subnet field "quota": /);
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', quota: 1.5 }), /^subnet field "quota": /);
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', tenants: ['Team A'] }), /^subnet field "tenants.0": /);
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', sticky: 'yes' }), /^subnet field "sticky": /);
  badRequest(() => subnet({ name: 'a', cidr: '10.40.0.0/24', routes: ['0.0.0.0/0'] }), /^subnet field "routes.0": Invalid type/);
  badRequest(() => buildSubnet('10.40.0.0/24', [], NOW), /^subnet: Invalid type/);
  badRequest(() => buildSubnet(null, [], NOW), /^subnet: Invalid type/);
  badRequest(() => buildSubnet([], [], NOW), 'subnet field "name" is required');
  badRequest(() => parseShape(SubnetInputSchema, undefined, 'thing'), /^thing: Invalid type/);
  assert.equal(subnet({ name: 'a', cidr: '10.40.0.0/24', quota: null }).quota, undefined);
  assert.equal(subnet({ name: 'a.b-c_d', cidr: '10.40.0.0/24' }).name, 'a.b-c_d');
});

test('updateSubnet: merges, keeps untouched fields, revalidates', () => {
  const cur = subnet({ name: 'a', cidr: '10.40.0.0/24', ranges: ['10.40.0.10-10.40.0.50'], exclude: ['10.40.0.20'], quota: 5, tenants: ['t'], dns: { nameservers: ['1.1.1.1'] } });
  const same = updateSubnet(cur, {});
  assert.deepEqual(same, cur);
  const u = updateSubnet(cur, { gateway: '10.40.0.254', quota: null, sticky: true });
  assert.equal(u.gateway, '10.40.0.254');
  assert.equal(u.quota, undefined);
  assert.equal(u.sticky, true);
  assert.deepEqual(u.ranges, cur.ranges);
  assert.deepEqual(u.exclude, cur.exclude);
  assert.deepEqual(u.dns, cur.dns);
  assert.deepEqual(u.tenants, ['t']);
  assert.equal(u.createdAt, NOW);
  assert.equal(u.cidr, '10.40.0.0/24');
  const cleared = updateSubnet(cur, { ranges: [], exclude: [], tenants: [] });
  assert.deepEqual([cleared.ranges, cleared.exclude, cleared.tenants], [[], [], []]);
  assert.equal(cleared.quota, 5);
  const noGw = updateSubnet(cur, { gateway: 'none' });
  assert.equal(noGw.gateway, undefined);
  // a subnet without gateway keeps having none on unrelated updates
  assert.equal(updateSubnet(noGw, { sticky: true }).gateway, undefined);
  assert.equal(updateSubnet(cur, { quota: 9 }).quota, 9);
  badRequest(() => updateSubnet(cur, { cidr: '10.50.0.0/24' }), 'unknown field "cidr" in subnet update');
  badRequest(() => updateSubnet(cur, { name: 'b' }), 'unknown field "name" in subnet update');
  badRequest(() => updateSubnet(cur, { gateway: '10.41.0.1' }), 'gateway "10.41.0.1" is not an address inside 10.40.0.0/24');
  badRequest(() => updateSubnet(cur, { ranges: ['10.40.1.0'] }), 'ranges: "10.40.1.0" is outside the subnet');
  badRequest(() => updateSubnet(cur, { exclude: ['10.40.0.10-10.40.0.50'] }), /leaves no address to allocate/);
  const v6 = subnet({ name: 'v', cidr: 'fd00::/64', ranges: ['fd00::10-fd00::20'] });
  assert.deepEqual(updateSubnet(v6, { sticky: true }).ranges, [{ start: 'fd00::10', end: 'fd00::20' }]);
});

function pool(input: Record<string, unknown>, s: Subnet | undefined, existing: Pool[] = []): Pool {
  return buildPool(input, s, existing, NOW);
}

test('buildPool: happy path, defaults and canonical addresses', () => {
  const s = subnet({ name: 'a', cidr: '10.40.0.0/24', sticky: true });
  const p = pool({ name: 'etcd', subnet: 'a', addresses: ['10.40.0.100-10.40.0.104', '10.40.0.105'], match: { namespace: 'db', name: 'etcd-*' } }, s);
  assert.deepEqual(p, {
    name: 'etcd', subnet: 'a', addresses: [{ start: '10.40.0.100', end: '10.40.0.105' }],
    match: { namespace: 'db', name: 'etcd-*' }, tenants: [], sticky: true, createdAt: NOW,
  });
  const q = pool({ name: 'q', subnet: 'a', addresses: ['10.40.0.200/30'], match: { namespace: '' }, tenants: ['x'], quota: 2, sticky: false }, s);
  assert.deepEqual(q, { name: 'q', subnet: 'a', addresses: [{ start: '10.40.0.200', end: '10.40.0.203' }], tenants: ['x'], quota: 2, sticky: false, createdAt: NOW });
  assert.ok(!('match' in q), 'empty match is no match');
});

test('buildPool: errors', () => {
  const s = subnet({ name: 'a', cidr: '10.40.0.0/24', exclude: ['10.40.0.50-10.40.0.59'] });
  const p1 = pool({ name: 'p1', subnet: 'a', addresses: ['10.40.0.100-10.40.0.110'] }, s);
  const other = subnet({ name: 'b', cidr: '10.41.0.0/24' });
  const pb = pool({ name: 'pb', subnet: 'b', addresses: ['10.41.0.100-10.41.0.110'] }, other);
  badRequest(() => pool({ name: 'x', subnet: 'zz', addresses: ['10.40.0.1'] }, undefined), 'pool "x": subnet "zz" does not exist');
  conflict(() => pool({ name: 'p1', subnet: 'a', addresses: ['10.40.0.200'] }, s, [p1]), 'pool "p1" already exists');
  conflict(() => pool({ name: 'p2', subnet: 'a', addresses: ['10.40.0.90-10.40.0.100'] }, s, [p1]), 'pool "p2" overlaps pool "p1" in subnet "a"');
  // a pool of another subnet at the same numbers does not conflict (different subnet)
  assert.equal(pool({ name: 'p3', subnet: 'a', addresses: ['10.40.0.120'] }, s, [p1, pb]).name, 'p3');
  badRequest(() => pool({ name: 'p2', subnet: 'a', addresses: ['10.40.0.1'] }, s, [p1]), 'pool "p2" contains the gateway 10.40.0.1');
  badRequest(() => pool({ name: 'p2', subnet: 'a', addresses: ['10.40.0.0/28'] }, s, [p1]), 'pool "p2" contains the gateway 10.40.0.1');
  badRequest(() => pool({ name: 'p2', subnet: 'a', addresses: ['10.41.0.5'] }, s), 'addresses: "10.41.0.5" is outside the subnet');
  badRequest(() => pool({ name: 'p2', subnet: 'a', addresses: ['fd00::5'] }, s), 'addresses: "fd00::5" is not an IPv4 address, range (A-B) or prefix');
  badRequest(() => pool({ name: 'p2', subnet: 'a', addresses: ['10.40.0.52-10.40.0.55'] }, s), 'pool "p2" has no allocatable address (all excluded, gateway or network/broadcast)');
  badRequest(() => pool({ name: 'p2', subnet: 'a', addresses: ['10.40.0.255'] }, s), /has no allocatable address/);
  badRequest(() => pool({ name: 'p2', subnet: 'a', addresses: [] }, s), 'pool field "addresses": a pool needs at least one address');
  badRequest(() => pool({ name: 'p2', subnet: 'a', addresses: ['10.40.0.9'], match: { namespace: 'x', labels: {} } }, s), 'unknown field "match.labels" in pool');
  badRequest(() => pool({ name: 'p2', subnet: 'a', addresses: ['10.40.0.9'], match: { name: 'a b' } }, s), 'pool match name "a b" must be a name or a glob with * and ?');
  badRequest(() => pool({ name: 'p2', addresses: ['10.40.0.9'] }, s), 'pool field "subnet" is required');
});

test('generalSpace and poolSpace', () => {
  const s = subnet({ name: 'a', cidr: '10.40.0.0/24', exclude: ['10.40.0.10-10.40.0.19', '10.40.0.0'] });
  const p1 = pool({ name: 'p1', subnet: 'a', addresses: ['10.40.0.15-10.40.0.30'] }, s);
  const p2 = pool({ name: 'p2', subnet: 'a', addresses: ['10.40.0.240/28'] }, s, [p1]);
  assert.deepEqual(generalSpace(s, []), [iv('10.40.0.2', '10.40.0.9'), iv('10.40.0.20', '10.40.0.254')]);
  assert.deepEqual(generalSpace(s, [p1, p2]), [iv('10.40.0.2', '10.40.0.9'), iv('10.40.0.31', '10.40.0.239')]);
  assert.deepEqual(poolSpace(s, p1), [iv('10.40.0.20', '10.40.0.30')], 'excluded addresses of a pool are not allocatable');
  assert.deepEqual(poolSpace(s, p2), [iv('10.40.0.240', '10.40.0.254')], 'broadcast is not allocatable');
  const r = subnet({ name: 'r', cidr: '10.41.0.0/24', ranges: ['10.41.0.1-10.41.0.10'] });
  assert.deepEqual(generalSpace(r, []), [iv('10.41.0.2', '10.41.0.10')]);
  const n = subnet({ name: 'n', cidr: '10.42.0.0/30', gateway: 'none' });
  assert.deepEqual(generalSpace(n, []), [iv('10.42.0.1', '10.42.0.2')]);
  const v6 = subnet({ name: 'v6', cidr: 'fd00::/64' });
  assert.deepEqual(generalSpace(v6, []), [iv('fd00::2', 'fd00::ffff:ffff:ffff:ffff')]);
  assert.deepEqual(describeIntervals(4, generalSpace(s, [p1, p2])), ['10.40.0.2-10.40.0.9', '10.40.0.31-10.40.0.239']);
  assert.deepEqual(rangesToIntervals([{ start: '10.0.0.5', end: '10.0.0.9' }, { start: '10.0.0.1', end: '10.0.0.4' }]), [iv('10.0.0.1', '10.0.0.9')]);
});

test('parseReservation', () => {
  const s = subnet({ name: 'a', cidr: '10.40.0.0/24', exclude: ['10.40.0.50'] });
  assert.deepEqual(parseReservation({ subnet: 'a', ip: '10.40.0.7', owner: 'default/etcd-0' }, s), { subnet: 'a', ip: '10.40.0.7', owner: 'default/etcd-0' });
  badRequest(() => parseReservation({ subnet: 'zz', ip: '10.40.0.7', owner: 'default/x' }, undefined), 'subnet "zz" does not exist');
  badRequest(() => parseReservation({ subnet: 'a', ip: 'nope', owner: 'default/x' }, s), '"nope" is not an IP address');
  badRequest(() => parseReservation({ subnet: 'a', ip: '10.41.0.7', owner: 'default/x' }, s), '10.41.0.7 is outside subnet "a" (10.40.0.0/24)');
  badRequest(() => parseReservation({ subnet: 'a', ip: 'fd00::7', owner: 'default/x' }, s), 'fd00::7 is outside subnet "a" (10.40.0.0/24)');
  badRequest(() => parseReservation({ subnet: 'a', ip: '10.40.0.0', owner: 'default/x' }, s), '10.40.0.0 is the network or broadcast address of 10.40.0.0/24');
  badRequest(() => parseReservation({ subnet: 'a', ip: '10.40.0.255', owner: 'default/x' }, s), '10.40.0.255 is the network or broadcast address of 10.40.0.0/24');
  badRequest(() => parseReservation({ subnet: 'a', ip: '10.40.0.1', owner: 'default/x' }, s), '10.40.0.1 is the gateway of subnet "a"');
  badRequest(() => parseReservation({ subnet: 'a', ip: '10.40.0.50', owner: 'default/x' }, s), '10.40.0.50 is excluded in subnet "a"');
  for (const owner of ['x', 'default/', '/x', 'Default/x', 'a/b/c', 'default/-x', '']) {
    badRequest(() => parseReservation({ subnet: 'a', ip: '10.40.0.7', owner }, s), `owner "${owner}" must be NAMESPACE/NAME, e.g. default/etcd-0`);
  }
  badRequest(() => parseReservation({ subnet: 'a', ip: '10.40.0.7', owner: 'a/b', extra: 1 }, s), 'unknown field "extra" in reservation');
  const v6 = subnet({ name: 'v6', cidr: 'fd00::/64' });
  assert.deepEqual(parseReservation({ subnet: 'v6', ip: 'FD00:0::0007', owner: 'ns/p' }, v6), { subnet: 'v6', ip: 'fd00::7', owner: 'ns/p' });
  badRequest(() => parseReservation({ subnet: 'v6', ip: 'fd00::', owner: 'ns/p' }, v6), 'fd00:: is the network or broadcast address of fd00::/64');
  badRequest(() => parseReservation({ subnet: 'v6', ip: 'fd00::1', owner: 'ns/p' }, v6), 'fd00::1 is the gateway of subnet "v6"');
});
