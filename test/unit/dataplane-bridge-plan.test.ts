import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BridgeOp, planBridge, planPortReattach, renderBridgeOps } from '../../src/core/dataplane/bridge-plan.js';
import type { BridgeSpec, HostLinkState } from '../../src/core/dataplane/types.js';
import { ConflictError, InvalidConfigError } from '../../src/core/errors.js';

const spec: BridgeSpec = { name: 'weft', network: 'weft', mtu: 1450, addresses: ['10.32.0.1/12', 'fd00:0:0::1/64'] };
const owned: HostLinkState = { name: 'weft', kind: 'bridge', alias: 'weft:weft', up: true, mac: '02:00:00:00:00:01', mtu: 1450 };
const kinds = (ops: BridgeOp[]): string[] => ops.map((o) => o.kind);

test('missing bridge: create, alias, addresses, up — in that order', () => {
  const ops = planBridge(spec, undefined, [], { macForNewBridge: '02:aa:bb:cc:dd:ee' });
  assert.deepEqual(kinds(ops), ['create', 'set-alias', 'addr-add', 'addr-add', 'up']);
  assert.deepEqual(renderBridgeOps(ops), [
    'link add name weft address 02:aa:bb:cc:dd:ee mtu 1450 type bridge',
    'link set dev weft alias weft:weft',
    'addr add 10.32.0.1/12 dev weft',
    'addr add fd00::1/64 dev weft nodad',
    'link set dev weft up',
  ]);
});

test('spec mac wins over the random one; no mac at all creates without address', () => {
  const a = planBridge({ ...spec, mac: '02:11:22:33:44:55' }, undefined, [], { macForNewBridge: '02:aa:bb:cc:dd:ee' });
  assert.equal(renderBridgeOps(a)[0], 'link add name weft address 02:11:22:33:44:55 mtu 1450 type bridge');
  const b = planBridge(spec, undefined, []);
  assert.equal(renderBridgeOps(b)[0], 'link add name weft mtu 1450 type bridge');
});

test('in sync: no ops (idempotent), whatever the address spelling and link-local extras', () => {
  assert.deepEqual(planBridge(spec, owned, ['10.32.0.1/12', 'FD00::0001/64', 'fe80::1/64']), []);
});

test('address changes: stale ones deleted first, missing ones added', () => {
  const ops = planBridge({ ...spec, addresses: ['10.32.0.1/16'] }, owned, ['10.32.0.1/12', 'fd00::1/64', '10.99.0.1/24']);
  assert.deepEqual(renderBridgeOps(ops), [
    'addr del 10.32.0.1/12 dev weft',
    'addr del 10.99.0.1/24 dev weft',
    'addr del fd00::1/64 dev weft',
    'addr add 10.32.0.1/16 dev weft',
  ]);
});

test('mtu, mac and admin state are repaired', () => {
  const ops = planBridge({ ...spec, mac: '02:11:22:33:44:55' }, { ...owned, up: false, mtu: 1500 }, ['10.32.0.1/12', 'fd00::1/64']);
  assert.deepEqual(renderBridgeOps(ops), ['link set dev weft mtu 1450', 'link set dev weft address 02:11:22:33:44:55', 'link set dev weft up']);
});

test('duplicate addresses in the spec are added once', () => {
  const ops = planBridge({ ...spec, addresses: ['10.32.0.1/12', '10.32.0.1/12'] }, undefined, []);
  assert.equal(ops.filter((o) => o.kind === 'addr-add').length, 1);
});

test('links weft does not own are never touched', () => {
  assert.throws(() => planBridge(spec, { ...owned, kind: 'veth' }, []), ConflictError);
  assert.throws(() => planBridge(spec, { ...owned, alias: undefined }, []), (e: unknown) => e instanceof ConflictError && /not managed by weft/.test(e.message));
  assert.throws(() => planBridge(spec, { ...owned, alias: 'weft:other' }, []), (e: unknown) => e instanceof ConflictError && /"other"/.test(e.message));
});

test('bad specs fail before any op', () => {
  assert.throws(() => planBridge({ ...spec, name: 'x'.repeat(16) }, undefined, []), InvalidConfigError);
  assert.throws(() => planBridge({ ...spec, mtu: 10 }, undefined, []), InvalidConfigError);
  assert.throws(() => planBridge({ ...spec, addresses: ['10.32.0.1'] }, undefined, []), InvalidConfigError);
  assert.throws(() => planBridge({ ...spec, network: 'a b' }, undefined, []), InvalidConfigError);
  assert.throws(() => planBridge({ ...spec, mac: '01:00:5e:00:00:01' }, undefined, []), InvalidConfigError);
});

test('planPortReattach puts weft\'s released veth ends back, with hairpin when they had it', () => {
  const links: HostLinkState[] = [
    { name: 'wv1', kind: 'veth', alias: 'weft-port:weft:hairpin', up: false, mac: 'x' },
    { name: 'wv2', kind: 'veth', alias: 'weft-port:weft', up: true, mac: 'x' },
    { name: 'wv3', kind: 'veth', alias: 'weft-port:weft', master: 'weft', up: true, mac: 'x' },
    { name: 'wv4', kind: 'veth', alias: 'weft-port:other', up: true, mac: 'x' },
    { name: 'eth0', kind: 'veth', up: true, mac: 'x' },
    { name: 'x', kind: 'bridge', alias: 'weft-port:weft', up: true, mac: 'x' },
  ];
  assert.deepEqual(planPortReattach('weft', links), [
    'link set dev wv1 master weft',
    'link set dev wv1 type bridge_slave hairpin on',
    'link set dev wv1 up',
    'link set dev wv2 master weft',
    'link set dev wv2 up',
  ]);
  assert.deepEqual(planPortReattach('weft', []), []);
});
