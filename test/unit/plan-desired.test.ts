import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Attachment, PortMappingRecord } from '../../src/core/ipam/attachment.js';
import type { Subnet } from '../../src/core/ipam/model.js';
import { buildSubnet } from '../../src/core/ipam/spec.js';
import { desiredBridges, desiredNat, gatewayAddress, natIsEmpty } from '../../src/core/plan/desired.js';

const NOW = '2024-01-02T03:04:05.000Z';

function subnets(...list: Subnet[]): Map<string, Subnet> {
  return new Map(list.map((s) => [s.name, s]));
}

const s4 = buildSubnet({ name: 'a', cidr: '10.32.0.0/12' }, [], NOW);
const s4b = buildSubnet({ name: 'b', cidr: '10.4.0.0/16', gateway: '10.4.255.254' }, [], NOW);
const s6 = buildSubnet({ name: 'v6', cidr: 'fd00:1::/64' }, [], NOW);
const sNone = buildSubnet({ name: 'nogw', cidr: '10.9.0.0/24', gateway: 'none' }, [], NOW);

function att(over: Partial<Attachment> & { ips: Attachment['ips'] }): Attachment {
  return {
    containerId: 'c1', ifname: 'eth0', network: 'weft', plugin: 'weft', mode: 'bridge', state: 'ready', tenant: 'default',
    ipMasq: false, portMappings: [], aliases: [], createdAt: NOW, ...over,
  };
}

test('gatewayAddress: gateway with the subnet prefix, or none', () => {
  assert.equal(gatewayAddress(s4), '10.32.0.1/12');
  assert.equal(gatewayAddress(s6), 'fd00:1::1/64');
  assert.equal(gatewayAddress(sNone), undefined);
});

test('desiredBridges: one bridge per name, gateway addresses sorted, sorted by name, unknown subnets skipped', () => {
  const got = desiredBridges([
    { subnet: 'v6', bridge: 'weft0', network: 'weft' },
    { subnet: 'a', bridge: 'weft0', network: 'weft' },
    { subnet: 'b', bridge: 'br-b', network: 'other' },
    { subnet: 'nogw', bridge: 'br-n', network: 'n' },
    { subnet: 'gone', bridge: 'br-x', network: 'x' },
  ], subnets(s4, s4b, s6, sNone), 1450);
  assert.deepEqual(got, [
    { name: 'br-b', network: 'other', mtu: 1450, addresses: ['10.4.255.254/16'] },
    { name: 'br-n', network: 'n', mtu: 1450, addresses: [] },
    { name: 'weft0', network: 'weft', mtu: 1450, addresses: ['10.32.0.1/12', 'fd00:1::1/64'] },
  ]);
  assert.deepEqual(desiredBridges([], subnets(s4), 1500), []);
  // the order of the bindings does not change the result
  const a = desiredBridges([{ subnet: 'a', bridge: 'w', network: 'n' }, { subnet: 'b', bridge: 'w', network: 'n' }], subnets(s4, s4b), 1500);
  const b = desiredBridges([{ subnet: 'b', bridge: 'w', network: 'n' }, { subnet: 'a', bridge: 'w', network: 'n' }], subnets(s4, s4b), 1500);
  assert.deepEqual(a, b);
});

test('desiredNat: masquerade per subnet of ready attachments with ipMasq, deduplicated and sorted', () => {
  const nat = desiredNat([
    att({ containerId: 'c1', ipMasq: true, ips: [{ subnet: 'a', address: '10.32.0.5/12', gateway: '10.32.0.1' }, { subnet: 'v6', address: 'fd00:1::5/64' }] }),
    att({ containerId: 'c2', ipMasq: true, ips: [{ subnet: 'a', address: '10.32.0.6/12' }] }),
    att({ containerId: 'c3', ipMasq: false, ips: [{ subnet: 'b', address: '10.4.0.6/16' }] }),
    att({ containerId: 'c4', ipMasq: true, state: 'creating', ips: [{ subnet: 'b', address: '10.4.0.7/16' }] }),
    att({ containerId: 'c5', ipMasq: true, ips: [{ subnet: 'deleted', address: '10.99.0.7/16' }] }),
  ], subnets(s4, s4b, s6));
  assert.deepEqual(nat, { masquerade: ['10.32.0.0/12', 'fd00:1::/64'], portMappings: [] });
  assert.ok(!natIsEmpty(nat));
  assert.ok(natIsEmpty(desiredNat([], subnets(s4))));
  assert.ok(natIsEmpty({ masquerade: [], portMappings: [] }));
  assert.ok(!natIsEmpty({ masquerade: [], portMappings: [{ hostPort: 1, containerPort: 1, protocol: 'tcp', containerIp: '10.0.0.1' }] }));
});

test('desiredNat: port mappings target the container address of the host address family, sorted', () => {
  const pm = (hostPort: number, containerPort: number, protocol: PortMappingRecord['protocol'], hostIP?: string): PortMappingRecord => ({ hostPort, containerPort, protocol, ...(hostIP !== undefined ? { hostIP } : {}) });
  const nat = desiredNat([
    att({ containerId: 'c1', ips: [{ subnet: 'a', address: '10.32.0.5/12' }, { subnet: 'v6', address: 'fd00:1::5/64' }], portMappings: [pm(8080, 80, 'tcp'), pm(53, 53, 'udp', '192.0.2.1'), pm(443, 443, 'tcp', '2001:db8::1')] }),
    att({ containerId: 'c2', ips: [{ subnet: 'a', address: '10.32.0.6/12' }], portMappings: [pm(53, 53, 'tcp'), pm(444, 443, 'tcp', '2001:db8::1')] }),
    att({ containerId: 'c3', state: 'creating', ips: [{ subnet: 'a', address: '10.32.0.7/12' }], portMappings: [pm(9000, 9000, 'tcp')] }),
  ], subnets(s4, s6));
  assert.deepEqual(nat.masquerade, []);
  assert.deepEqual(nat.portMappings, [
    { hostPort: 53, containerPort: 53, protocol: 'tcp', containerIp: '10.32.0.6' },
    { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '192.0.2.1', containerIp: '10.32.0.5' },
    { hostPort: 443, containerPort: 443, protocol: 'tcp', hostIP: '2001:db8::1', containerIp: 'fd00:1::5' },
    { hostPort: 8080, containerPort: 80, protocol: 'tcp', containerIp: '10.32.0.5' },
    { hostPort: 8080, containerPort: 80, protocol: 'tcp', containerIp: 'fd00:1::5' },
  ], 'c2 has no v6 address: its v6-only mapping is skipped; a mapping without hostIP is published on every family the container has');
});

test('desiredNat: a v6-only container publishes its ports (no hostIP = every host address)', () => {
  const nat = desiredNat([
    att({ ips: [{ subnet: 'v6', address: 'fd00:1::9/64' }], portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostPort: 8081, containerPort: 81, protocol: 'tcp', hostIP: '' }] }),
  ], subnets(s6));
  assert.deepEqual(nat.portMappings, [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp', containerIp: 'fd00:1::9' },
    { hostPort: 8081, containerPort: 81, protocol: 'tcp', containerIp: 'fd00:1::9' },
  ]);
  // an unspecified host address of one family publishes on that family only
  const only4 = desiredNat([
    att({ ips: [{ subnet: 'a', address: '10.32.0.5/12' }, { subnet: 'v6', address: 'fd00:1::5/64' }], portMappings: [{ hostPort: 80, containerPort: 80, protocol: 'tcp', hostIP: '0.0.0.0' }, { hostPort: 81, containerPort: 81, protocol: 'tcp', hostIP: '::' }] }),
  ], subnets(s4, s6));
  assert.deepEqual(only4.portMappings, [
    { hostPort: 80, containerPort: 80, protocol: 'tcp', hostIP: '0.0.0.0', containerIp: '10.32.0.5' },
    { hostPort: 81, containerPort: 81, protocol: 'tcp', hostIP: '::', containerIp: 'fd00:1::5' },
  ]);
  // a hostIP that is not an address maps nothing
  assert.deepEqual(desiredNat([att({ ips: [{ subnet: 'a', address: '10.32.0.5/12' }], portMappings: [{ hostPort: 80, containerPort: 80, protocol: 'tcp', hostIP: 'eth0' }] })], subnets(s4)).portMappings, []);
});

test('desiredNat with the conntrack bypass: every subnet in use except one that publishes ports without masquerade; the tunnel passed through', () => {
  const pm = { hostPort: 8080, containerPort: 80, protocol: 'tcp' as const };
  const list = [
    att({ containerId: 'c1', ipMasq: true, ips: [{ subnet: 'a', address: '10.32.0.5/12' }], portMappings: [pm] }),
    att({ containerId: 'c2', ipMasq: false, ips: [{ subnet: 'b', address: '10.4.0.6/16' }] }),
    att({ containerId: 'c3', ipMasq: false, ips: [{ subnet: 'v6', address: 'fd00:1::5/64' }], portMappings: [{ ...pm, hostPort: 8081 }] }),
    att({ containerId: 'c4', ipMasq: false, ips: [{ subnet: 'nogw', address: '10.9.0.4/24' }] }),
    att({ containerId: 'c5', state: 'creating', ipMasq: true, ips: [{ subnet: 'unused', address: '10.99.0.7/16' }] }),
  ];
  const all = subnets(s4, s4b, s6, sNone);
  const nat = desiredNat(list, all, { tunnel: { local: '192.0.2.1', port: 4789 } });
  assert.deepEqual(nat.untracked, [
    { cidr: '10.32.0.0/12', gateway: '10.32.0.1' }, // masqueraded: a hairpin is masqueraded to the gateway, which stays tracked
    { cidr: '10.4.0.0/16', gateway: '10.4.255.254' },
    { cidr: '10.9.0.0/24' },
  ], 'v6 publishes a port without masquerade: its hairpin replies are bridged and need conntrack');
  assert.deepEqual(nat.tunnel, { local: '192.0.2.1', port: 4789 });
  assert.deepEqual(desiredNat(list, all, {}).tunnel, undefined);
  const off = desiredNat(list, all);
  assert.equal(off.untracked, undefined, 'no bypass options: nothing untracked');
  assert.equal(off.tunnel, undefined);
});
