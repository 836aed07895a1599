import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWeftError } from '../../src/core/errors.js';
import { parseGcAttachments, parseIpamConfig, parseWeftConfig } from '../../src/core/cni/config.js';

function throwsCni(fn: () => unknown, cniCode: number, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isWeftError(e), `not a WeftError: ${String(e)}`);
    assert.equal(e.cniCode, cniCode, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    return true;
  });
}

const MIN = { cniVersion: '1.0.0', name: 'weftnet', type: 'weft' };
const weft = (extra: Record<string, unknown>): ReturnType<typeof parseWeftConfig> => parseWeftConfig({ ...MIN, ...extra });

test('minimal weft config gets the documented defaults', () => {
  assert.deepEqual(parseWeftConfig(MIN), {
    cniVersion: '1.0.0', resultVersion: '1.0.0', name: 'weftnet', type: 'weft',
    runtimeConfig: { ips: [], portMappings: [], aliases: [] }, args: { ips: [], labels: [], other: {} },
    subnets: [], ipMasq: false, capabilities: {}, disableCheck: false, disableGC: false, extensions: {},
    mode: 'bridge', hairpinMode: true,
  });
});

test('full bridge config', () => {
  const c = weft({
    socket: '/run/weft/other.sock', subnet: ['blue', 'green'], pool: 'p1', ipMasq: true, mtu: 1376, mode: 'bridge', bridge: 'weft0', hairpinMode: false,
    capabilities: { ips: true, mac: true, portMappings: true, dns: true, aliases: true, bandwidth: false },
    runtimeConfig: {
      ips: ['10.32.0.9/12', 'fd00::9'], mac: '0A:58:0A:20:00:09',
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'TCP' }, { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '192.0.2.1' }, { hostPort: 1, containerPort: 2, hostIP: '' }],
      dns: { servers: ['192.0.2.53'], searches: ['example.com'], options: ['ndots:2'] }, aliases: ['db'], bandwidth: { ingressRate: 1 },
    },
    args: { cni: { ips: ['10.32.0.10'], labels: [{ key: 'app', value: 'db' }], future: 1 }, k8s: { x: 1 } },
    dns: { nameservers: ['10.32.0.1'], domain: 'weft.local', search: ['weft.local'], options: ['rotate'] },
    disableCheck: true, disableGC: true, 'cni.dev/something': { a: 1 },
  });
  assert.equal(c.mode, 'bridge');
  if (c.mode !== 'bridge') return;
  assert.equal(c.bridge, 'weft0');
  assert.equal(c.hairpinMode, false);
  assert.equal(c.socket, '/run/weft/other.sock');
  assert.deepEqual(c.subnets, ['blue', 'green']);
  assert.equal(c.pool, 'p1');
  assert.equal(c.ipMasq, true);
  assert.equal(c.mtu, 1376);
  assert.equal(c.capabilities['bandwidth'], false);
  assert.deepEqual(c.runtimeConfig, {
    ips: ['10.32.0.9/12', 'fd00::9'], mac: '0a:58:0a:20:00:09',
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '192.0.2.1' }, { hostPort: 1, containerPort: 2, protocol: 'tcp' }],
    dns: { servers: ['192.0.2.53'], searches: ['example.com'], options: ['ndots:2'] }, aliases: ['db'],
  });
  assert.deepEqual(c.args, { ips: ['10.32.0.10'], labels: [{ key: 'app', value: 'db' }], other: { k8s: { x: 1 }, cni: { future: 1 } } });
  assert.deepEqual(c.dns, { nameservers: ['10.32.0.1'], domain: 'weft.local', search: ['weft.local'], options: ['rotate'] });
  assert.equal(c.disableCheck, true);
  assert.equal(c.disableGC, true);
  assert.deepEqual(c.extensions, { 'cni.dev/something': { a: 1 } });
  assert.equal(c.validAttachments, undefined);
});

test('subnet: a string becomes a one-element list', () => {
  assert.deepEqual(weft({ subnet: 'blue' }).subnets, ['blue']);
  throwsCni(() => weft({ subnet: [] }), 7, 'subnet', 'non-empty array');
  throwsCni(() => weft({ subnet: '' }), 7, 'subnet');
  throwsCni(() => weft({ subnet: ['a', 3] }), 7, 'subnet[1]');
  throwsCni(() => weft({ subnet: ['a', 'a'] }), 7, 'subnet', '"a" is listed twice');
  throwsCni(() => weft({ subnet: { a: 1 } }), 7, 'subnet');
});

test('macvlan mode', () => {
  const c = weft({ mode: 'macvlan', master: 'ens3' });
  assert.equal(c.mode, 'macvlan');
  if (c.mode === 'macvlan') {
    assert.equal(c.master, 'ens3');
    assert.equal(c.macvlanMode, 'bridge');
  }
  for (const m of ['bridge', 'private', 'vepa', 'passthru']) {
    const x = weft({ mode: 'macvlan', master: 'ens3', macvlanMode: m });
    assert.equal(x.mode === 'macvlan' && x.macvlanMode, m);
  }
  throwsCni(() => weft({ mode: 'macvlan' }), 7, 'master', 'macvlan');
  throwsCni(() => weft({ mode: 'macvlan', master: 'way-too-long-ifname' }), 7, 'master', 'longer than 15');
  throwsCni(() => weft({ mode: 'macvlan', master: 'ens3', macvlanMode: 'source' }), 7, 'macvlanMode', '"source"');
  throwsCni(() => weft({ mode: 'macvlan', master: 'ens3', bridge: 'br0' }), 7, 'bridge', 'only valid with mode "bridge"');
  throwsCni(() => weft({ mode: 'macvlan', master: 'ens3', hairpinMode: true }), 7, 'hairpinMode');
  throwsCni(() => weft({ master: 'ens3' }), 7, 'master', 'only valid with mode "macvlan"');
  throwsCni(() => weft({ macvlanMode: 'vepa' }), 7, 'macvlanMode');
  throwsCni(() => weft({ mode: 'ipvlan' }), 7, 'mode', '"ipvlan"');
});

test('ipam in a weft config is code 2 explaining weft does its own IPAM', () => {
  throwsCni(() => weft({ ipam: { type: 'host-local', subnet: '10.1.0.0/16' } }), 2, '"ipam"', 'host-local', 'weft does its own IPAM');
});

test('unknown keys are code 2 with key and value', () => {
  throwsCni(() => weft({ ipMasquerade: true }), 2, '"ipMasquerade"', 'true', 'weftnet');
  throwsCni(() => weft({ isGateway: 'yes' }), 2, '"isGateway"', '"yes"');
  // cni.dev/ keys are reserved for the runtime and accepted.
  assert.doesNotThrow(() => weft({ 'cni.dev/debug': 1 }));
});

test('capabilities weft cannot honour are code 2', () => {
  throwsCni(() => weft({ capabilities: { bandwidth: true } }), 2, 'capabilities.bandwidth', 'true');
  throwsCni(() => weft({ capabilities: { ips: 'yes' } }), 7, 'capabilities.ips');
});

test('wrong types are code 7 naming the JSON path', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ type: 'bridge' }, 'type'],
    [{ socket: 'weft.sock' }, 'socket'],
    [{ socket: 3 }, 'socket'],
    [{ pool: '' }, 'pool'],
    [{ ipMasq: 'true' }, 'ipMasq'],
    [{ mtu: 575 }, 'mtu'],
    [{ mtu: 65536 }, 'mtu'],
    [{ mtu: 1500.5 }, 'mtu'],
    [{ bridge: 'a/b' }, 'bridge'],
    [{ hairpinMode: 1 }, 'hairpinMode'],
    [{ capabilities: [] }, 'capabilities'],
    [{ runtimeConfig: 'x' }, 'runtimeConfig'],
    [{ runtimeConfig: { ips: ['10.0.0.300'] } }, 'runtimeConfig.ips[0]'],
    [{ runtimeConfig: { mac: '01:00:00:00:00:01' } }, 'runtimeConfig.mac'],
    [{ runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80 }] } }, 'runtimeConfig.portMappings[0].hostPort'],
    [{ runtimeConfig: { portMappings: [{ hostPort: 80 }] } }, 'runtimeConfig.portMappings[0].containerPort'],
    [{ runtimeConfig: { portMappings: [{ hostPort: 80, containerPort: 80, hostIP: 'any' }] } }, 'runtimeConfig.portMappings[0].hostIP'],
    [{ runtimeConfig: { dns: { servers: ['dns.example'] } } }, 'runtimeConfig.dns.servers[0]'],
    [{ runtimeConfig: { aliases: 'db' } }, 'runtimeConfig.aliases'],
    [{ args: [] }, 'args'],
    [{ args: { cni: { ips: ['x'] } } }, 'args.cni.ips[0]'],
    [{ args: { cni: { labels: [{ key: 'a' }] } } }, 'args.cni.labels[0].value'],
    [{ dns: { nameservers: '1.1.1.1' } }, 'dns.nameservers'],
    [{ disableCheck: 'no' }, 'disableCheck'],
    [{ disableGC: 0 }, 'disableGC'],
    [{ prevResult: [] }, 'prevResult'],
    [{ prevResult: { cniVersion: '1.0.0', ips: [{ address: '10.0.0.1' }] } }, 'prevResult.ips[0].address'],
  ];
  for (const [extra, path] of cases) throwsCni(() => weft(extra), 7, `${path}:`);
});

test('port mapping protocol other than tcp/udp/sctp is code 2', () => {
  throwsCni(() => weft({ runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 1, protocol: 'icmp' }] } }), 2, 'protocol', '"icmp"');
});

test('name and version checks', () => {
  throwsCni(() => parseWeftConfig({ cniVersion: '1.0.0', type: 'weft' }), 7, 'name');
  throwsCni(() => weft({ name: 'bad name' }), 7, 'name', 'invalid characters');
  throwsCni(() => weft({ name: 5 }), 7, 'name');
  throwsCni(() => weft({ cniVersion: '0.2.0' }), 1, '"0.2.0"');
  assert.equal(weft({ cniVersion: '0.3.0' }).resultVersion, '0.3.0');
  const c = weft({ cniVersion: undefined, cniVersions: ['0.4.0', '1.1.0', '9.0.0'] });
  assert.equal(c.resultVersion, '1.1.0');
  assert.equal(c.cniVersion, '');
  throwsCni(() => parseWeftConfig('{"name":"x"}'), 7, 'expected an object');
  throwsCni(() => parseWeftConfig(null), 7);
});

test('prevResult of any version is parsed; a missing cniVersion falls back to the config version', () => {
  const c = weft({ cniVersion: '0.4.0', prevResult: { ips: [{ version: '4', address: '10.0.0.2/24' }] } });
  assert.deepEqual(c.prevResult, { interfaces: [], ips: [{ address: '10.0.0.2/24' }], routes: [], dns: {} });
  throwsCni(() => weft({ prevResult: { cniVersion: '0.2.0', ip4: {} } }), 1, 'prevResult', '"0.2.0"');
});

test('GC lists are read into validAttachments', () => {
  const c = weft({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }], 'cni.dev/attachments': [{ containerID: 'a', ifname: 'eth0' }] });
  assert.deepEqual(c.validAttachments, [{ containerID: 'a', ifname: 'eth0' }]);
  assert.deepEqual(c.extensions, {});
});

test('parseGcAttachments: union of both keys, deduplicated, validated', () => {
  assert.deepEqual(
    parseGcAttachments({
      'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }, { containerID: 'b', ifname: 'eth0' }],
      'cni.dev/attachments': [{ containerID: 'b', ifname: 'eth0' }, { containerID: 'c', ifname: 'eth1', extra: true }],
    }),
    [{ containerID: 'a', ifname: 'eth0' }, { containerID: 'b', ifname: 'eth0' }, { containerID: 'c', ifname: 'eth1' }],
  );
  assert.deepEqual(parseGcAttachments({ 'cni.dev/attachments': [{ containerID: 'x', ifname: 'eth0' }] }), [{ containerID: 'x', ifname: 'eth0' }]);
  assert.deepEqual(parseGcAttachments({ 'cni.dev/valid-attachments': [] }), []);
  assert.deepEqual(parseGcAttachments({ 'cni.dev/valid-attachments': null }), []);
  // Same container, different interface: both kept.
  assert.equal(parseGcAttachments({ 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }, { containerID: 'a', ifname: 'eth1' }] }).length, 2);
  throwsCni(() => parseGcAttachments({ name: 'n' }), 7, 'cni.dev/valid-attachments', 'neither');
  throwsCni(() => parseGcAttachments({ 'cni.dev/valid-attachments': {} }), 7, 'cni.dev/valid-attachments');
  throwsCni(() => parseGcAttachments({ 'cni.dev/valid-attachments': [{ containerID: 'a' }] }), 7, 'cni.dev/valid-attachments[0].ifname');
  throwsCni(() => parseGcAttachments({ 'cni.dev/attachments': [{ containerID: '-a', ifname: 'eth0' }] }), 7, 'cni.dev/attachments[0].containerID');
  throwsCni(() => parseGcAttachments({ 'cni.dev/attachments': ['a'] }), 7, 'cni.dev/attachments[0]');
});

// ---- weft-ipam ----

const BRIDGE = { cniVersion: '0.4.0', name: 'podnet', type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: true, hairpinMode: true };

test('ipam config: the main plugin keys are ignored, ipam is validated', () => {
  const c = parseIpamConfig({ ...BRIDGE, ipam: { type: 'weft-ipam', subnet: 'blue', socket: '/run/weft/weft.sock', pool: 'p' } });
  assert.deepEqual(c, {
    cniVersion: '0.4.0', resultVersion: '0.4.0', name: 'podnet', mainType: 'bridge',
    runtimeConfig: { ips: [], portMappings: [], aliases: [] }, args: { ips: [], labels: [], other: {} },
    socket: '/run/weft/weft.sock', subnets: ['blue'], pool: 'p',
  });
  assert.deepEqual(parseIpamConfig({ ...BRIDGE, ipam: { type: 'weft-ipam' } }).subnets, []);
  assert.deepEqual(parseIpamConfig({ ...BRIDGE, ipam: { type: 'weft-ipam', subnet: ['a', 'b'] } }).subnets, ['a', 'b']);
});

test('ipam config: runtimeConfig and args are read (ips capability)', () => {
  const c = parseIpamConfig({ ...BRIDGE, runtimeConfig: { ips: ['10.1.0.5/24'] }, args: { cni: { ips: ['10.1.0.6'] } }, ipam: { type: 'weft-ipam' } });
  assert.deepEqual(c.runtimeConfig.ips, ['10.1.0.5/24']);
  assert.deepEqual(c.args.ips, ['10.1.0.6']);
});

test('ipam config errors', () => {
  throwsCni(() => parseIpamConfig(BRIDGE), 7, 'ipam', 'expected an object');
  throwsCni(() => parseIpamConfig({ ...BRIDGE, ipam: { type: 'host-local' } }), 7, 'ipam.type', '"weft-ipam"');
  throwsCni(() => parseIpamConfig({ ...BRIDGE, ipam: { type: 'weft-ipam', routes: [{ dst: '0.0.0.0/0' }] } }), 2, '"ipam.routes"', '0.0.0.0/0', 'podnet');
  throwsCni(() => parseIpamConfig({ ...BRIDGE, ipam: { type: 'weft-ipam', dataDir: '/var/lib/x' } }), 2, 'ipam.dataDir', '/var/lib/x');
  throwsCni(() => parseIpamConfig({ ...BRIDGE, ipam: { type: 'weft-ipam', socket: 'rel.sock' } }), 7, 'ipam.socket');
  throwsCni(() => parseIpamConfig({ ...BRIDGE, ipam: { type: 'weft-ipam', subnet: 1 } }), 7, 'ipam.subnet');
  throwsCni(() => parseIpamConfig({ ...BRIDGE, cniVersion: '0.1.0', ipam: { type: 'weft-ipam' } }), 1, '"0.1.0"');
  throwsCni(() => parseIpamConfig({ ...BRIDGE, name: '', ipam: { type: 'weft-ipam' } }), 7, 'name');
  throwsCni(() => parseIpamConfig({ ...BRIDGE, runtimeConfig: { ips: 'x' }, ipam: { type: 'weft-ipam' } }), 7, 'runtimeConfig.ips');
});
