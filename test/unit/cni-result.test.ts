import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWeftError } from '../../src/core/errors.js';
import { type CniResult, parsePrevResult, renderIpamResult, renderResult } from '../../src/core/cni/result.js';
import { type CniVersion, SUPPORTED_VERSIONS } from '../../src/core/cni/versions.js';

function throwsCni(fn: () => unknown, cniCode: number, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isWeftError(e), `not a WeftError: ${String(e)}`);
    assert.equal(e.cniCode, cniCode, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    return true;
  });
}

/** A dual-stack bridge result using every 1.1.0 field. */
const FULL: CniResult = {
  interfaces: [
    { name: 'weft', mac: '6e:14:2e:b0:3f:d0', mtu: 1376 },
    { name: 'vethwe1', mac: '06:48:f2:0f:90:66', mtu: 1376 },
    { name: 'eth0', mac: '12:40:58:13:f9:04', mtu: 1376, sandbox: '/run/netns/c1', socketPath: '/run/vhost.sock', pciID: '0000:00:1f.6' },
  ],
  ips: [
    { address: '10.32.0.5/12', gateway: '10.32.0.1', interface: 2 },
    { address: 'fd00:32::5/64', gateway: 'fd00:32::1', interface: 2 },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.32.0.1', mtu: 1376, advmss: 1336, priority: 10, table: 100, scope: 0 },
    { dst: '::/0' },
  ],
  dns: { nameservers: ['10.32.0.1'], domain: 'weft.local', search: ['weft.local'], options: ['ndots:1'] },
};

const IFACES_PLAIN = [
  { name: 'weft', mac: '6e:14:2e:b0:3f:d0' },
  { name: 'vethwe1', mac: '06:48:f2:0f:90:66' },
  { name: 'eth0', mac: '12:40:58:13:f9:04', sandbox: '/run/netns/c1' },
];
const DNS = { nameservers: ['10.32.0.1'], domain: 'weft.local', search: ['weft.local'], options: ['ndots:1'] };

function expected(v: CniVersion): unknown {
  if (v === '1.1.0') {
    return {
      cniVersion: v,
      interfaces: FULL.interfaces,
      ips: FULL.ips,
      routes: [{ dst: '0.0.0.0/0', gw: '10.32.0.1', mtu: 1376, advmss: 1336, priority: 10, table: 100, scope: 0 }, { dst: '::/0' }],
      dns: DNS,
    };
  }
  const routes = [{ dst: '0.0.0.0/0', gw: '10.32.0.1' }, { dst: '::/0' }];
  if (v === '1.0.0') return { cniVersion: v, interfaces: IFACES_PLAIN, ips: FULL.ips, routes, dns: DNS };
  return {
    cniVersion: v,
    interfaces: IFACES_PLAIN,
    ips: [
      { version: '4', interface: 2, address: '10.32.0.5/12', gateway: '10.32.0.1' },
      { version: '6', interface: 2, address: 'fd00:32::5/64', gateway: 'fd00:32::1' },
    ],
    routes,
    dns: DNS,
  };
}

for (const v of SUPPORTED_VERSIONS) {
  test(`renderResult ${v}: exact shape`, () => {
    assert.deepEqual(renderResult(FULL, v), expected(v));
  });

  test(`renderResult ${v}: key order matches the reference encoder`, () => {
    const out = renderResult(FULL, v);
    assert.deepEqual(Object.keys(out), ['cniVersion', 'interfaces', 'ips', 'routes', 'dns']);
    const ip0 = (out['ips'] as Record<string, unknown>[])[0]!;
    assert.deepEqual(Object.keys(ip0), v.startsWith('0.') ? ['version', 'interface', 'address', 'gateway'] : ['interface', 'address', 'gateway']);
  });

  test(`renderResult ${v}: empty result`, () => {
    const out = renderResult({ interfaces: [], ips: [], routes: [], dns: {} }, v);
    // Go's 0.4 types always encode dns; 1.x omit an empty one.
    assert.deepEqual(out, v.startsWith('0.') ? { cniVersion: v, dns: {} } : { cniVersion: v });
  });

  test(`renderIpamResult ${v}: no interfaces, no ips[].interface`, () => {
    const out = renderIpamResult({ ips: [{ address: '10.250.1.10/24', gateway: '10.250.1.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: {} }, v);
    const ip = v.startsWith('0.') ? { version: '4', address: '10.250.1.10/24', gateway: '10.250.1.1' } : { address: '10.250.1.10/24', gateway: '10.250.1.1' };
    assert.deepEqual(out, { cniVersion: v, ips: [ip], routes: [{ dst: '0.0.0.0/0' }], ...(v.startsWith('0.') ? { dns: {} } : {}) });
    // Even if the caller passes an interface index, an IPAM result never carries one.
    const sneaky = renderIpamResult({ ips: [{ address: '10.0.0.1/8', interface: 0 } as never], routes: [], dns: {} }, v);
    assert.ok(!('interface' in (sneaky['ips'] as Record<string, unknown>[])[0]!));
  });

  test(`round trip ${v}: parsePrevResult(renderResult(r)) loses only what ${v} cannot carry`, () => {
    const back = parsePrevResult(JSON.parse(JSON.stringify(renderResult(FULL, v))));
    const exp = expected(v) as Record<string, unknown>;
    assert.deepEqual(renderResult(back, v), exp);
    if (v === '1.1.0') assert.deepEqual(back, FULL);
  });
}

test('renderResult refuses an inconsistent internal result (InternalError 999)', () => {
  throwsCni(() => renderResult({ interfaces: [], ips: [{ address: '10.0.0.1/8', interface: 0 }], routes: [], dns: {} }, '1.0.0'), 999, 'interface index 0');
  throwsCni(() => renderResult({ interfaces: [], ips: [{ address: '10.0.0.1' }], routes: [], dns: {} }, '1.0.0'), 999, '10.0.0.1');
});

test('parsePrevResult: what podman caches (1.0.0 bridge result with empty dns)', () => {
  const r = parsePrevResult({
    cniVersion: '1.0.0',
    interfaces: [{ name: 'rabr1', mac: '6e:14:2e:b0:3f:d0' }, { name: 'vetha3495f3b', mac: '06:48:f2:0f:90:66' }, { name: 'eth0', mac: '12:40:58:13:f9:04', sandbox: '/run/netns/netns-f357322c' }],
    ips: [{ interface: 2, address: '10.250.1.10/24', gateway: '10.250.1.1' }],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: {},
  });
  assert.equal(r.interfaces.length, 3);
  assert.deepEqual(r.ips, [{ interface: 2, address: '10.250.1.10/24', gateway: '10.250.1.1' }]);
  assert.deepEqual(r.dns, {});
});

test('parsePrevResult: 0.4.0 with version fields; 0.3.0 accepted', () => {
  const raw = { cniVersion: '0.4.0', ips: [{ version: '6', address: 'FD00::0005/64' }], routes: [{ dst: '::/0', gw: 'FD00::1' }], dns: { nameservers: ['fd00::1'] } };
  const r = parsePrevResult(raw);
  assert.deepEqual(r, { interfaces: [], ips: [{ address: 'fd00::5/64' }], routes: [{ dst: '::/0', gw: 'fd00::1' }], dns: { nameservers: ['fd00::1'] } });
  assert.deepEqual(parsePrevResult({ ...raw, cniVersion: '0.3.0' }), r);
});

test('parsePrevResult: missing cniVersion uses the fallback, else code 7', () => {
  assert.deepEqual(parsePrevResult({ ips: [{ version: '4', address: '10.0.0.1/8' }] }, { fallbackVersion: '0.3.1' }).ips, [{ address: '10.0.0.1/8' }]);
  throwsCni(() => parsePrevResult({ ips: [] }), 7, 'prevResult.cniVersion');
});

test('parsePrevResult: null lists (non-Go encoders) are empty lists; unknown keys ignored', () => {
  assert.deepEqual(parsePrevResult({ cniVersion: '1.1.0', interfaces: null, ips: null, routes: null, dns: null, extra: 1 }), { interfaces: [], ips: [], routes: [], dns: {} });
});

test('parsePrevResult: errors name the path', () => {
  const cases: [unknown, number, string][] = [
    ['x', 7, 'prevResult: expected an object'],
    [{ cniVersion: '0.2.0', ip4: { ip: '10.0.0.1/8' } }, 1, '"0.2.0"'],
    [{ cniVersion: 1 }, 7, 'prevResult.cniVersion'],
    [{ cniVersion: '1.0.0', interfaces: {} }, 7, 'prevResult.interfaces'],
    [{ cniVersion: '1.0.0', interfaces: [{ mac: 'x' }] }, 7, 'prevResult.interfaces[0].name'],
    [{ cniVersion: '1.1.0', interfaces: [{ name: 'a', mtu: -1 }] }, 7, 'prevResult.interfaces[0].mtu'],
    [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.1' }] }, 7, 'prevResult.ips[0].address'],
    [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.1/8', gateway: 'gw' }] }, 7, 'prevResult.ips[0].gateway'],
    [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.1/8', interface: 0 }] }, 7, 'prevResult.ips[0].interface'],
    [{ cniVersion: '1.0.0', interfaces: [{ name: 'a' }], ips: [{ address: '10.0.0.1/8', interface: 1 }] }, 7, 'prevResult.ips[0].interface'],
    [{ cniVersion: '0.4.0', ips: [{ version: '6', address: '10.0.0.1/8' }] }, 7, 'prevResult.ips[0].version'],
    [{ cniVersion: '0.4.0', ips: [{ version: 4, address: '10.0.0.1/8' }] }, 7, 'prevResult.ips[0].version'],
    [{ cniVersion: '1.0.0', routes: [{ gw: '10.0.0.1' }] }, 7, 'prevResult.routes[0].dst'],
    [{ cniVersion: '1.0.0', routes: [{ dst: '0.0.0.0/0', gw: 5 }] }, 7, 'prevResult.routes[0].gw'],
    [{ cniVersion: '1.1.0', routes: [{ dst: '0.0.0.0/0', scope: 256 }] }, 7, 'prevResult.routes[0].scope'],
    [{ cniVersion: '1.0.0', dns: { nameservers: 'x' } }, 7, 'prevResult.dns.nameservers'],
  ];
  for (const [raw, code, frag] of cases) throwsCni(() => parsePrevResult(raw), code, frag);
});

test('parsePrevResult: custom path prefix', () => {
  throwsCni(() => parsePrevResult({ cniVersion: '1.0.0', ips: 3 }, { path: 'cached' }), 7, 'cached.ips');
});
