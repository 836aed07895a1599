import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson, objectKey, parseObjectKey, poolInput, subnetInput, subnetUpdate } from '../../src/core/cluster/objects.js';
import { buildPool, buildSubnet, updateSubnet } from '../../src/core/ipam/spec.js';

test('object keys round-trip and reject garbage', () => {
  assert.deepEqual(parseObjectKey(objectKey('subnet', 'blue')), { kind: 'subnet', id: 'blue' });
  assert.deepEqual(parseObjectKey(objectKey('reservation', 'default/10.0.0.5')), { kind: 'reservation', id: 'default/10.0.0.5' });
  for (const bad of ['', 'subnet', 'subnet/', 'vlan/x', 'reservation/noip', 'reservation/a/b/c']) assert.equal(parseObjectKey(bad), undefined, bad);
});

test('a subnet rebuilt from its replicated input is the same subnet', () => {
  const inputs: unknown[] = [
    { name: 'a', cidr: '10.1.0.0/24' },
    { name: 'b', cidr: '10.2.0.0/24', gateway: 'none', ranges: ['10.2.0.10-10.2.0.20', '10.2.0.30'], exclude: ['10.2.0.15'], routes: [{ dst: '0.0.0.0/0', gw: '10.2.0.1' }, { dst: '10.9.0.0/16' }], dns: { nameservers: ['10.2.0.53'], search: ['x.local'], domain: 'x.local', options: ['ndots:2'] }, tenants: ['t1'], quota: 5, sticky: true },
    { name: 'c', cidr: 'fd00:3::/64', gateway: 'fd00:3::1' },
  ];
  for (const i of inputs) {
    const s = buildSubnet(i, [], 'T');
    const again = buildSubnet(subnetInput(s), [], 'T');
    assert.deepEqual(again, s);
    assert.deepEqual(updateSubnet(s, subnetUpdate(subnetInput(s))), s, 'an update with its own input is a no-op');
  }
});

test('a pool rebuilt from its replicated input is the same pool', () => {
  const s = buildSubnet({ name: 's', cidr: '10.5.0.0/24' }, [], 'T');
  for (const i of [{ name: 'p', subnet: 's', addresses: ['10.5.0.10-10.5.0.12', '10.5.0.20'] }, { name: 'q', subnet: 's', addresses: ['10.5.0.64/28'], match: { namespace: 'prod', name: 'etcd-*' }, tenants: ['prod'], quota: 3, sticky: true }]) {
    const p = buildPool(i, s, [], 'T');
    assert.deepEqual(buildPool(poolInput(p), s, [], 'T'), p);
  }
});

test('canonical JSON does not depend on key order', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [2, { y: 1, x: 2 }], c: 3 } }), canonicalJson({ a: { c: 3, d: [2, { x: 2, y: 1 }] }, b: 1 }));
});
