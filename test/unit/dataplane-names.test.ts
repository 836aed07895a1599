import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertIfname, bridgeNameFor, hostIfnameFor, isHostIfname, isValidIfname, networkFromAlias, ownerAlias, parsePortAlias, portAlias } from '../../src/core/dataplane/names.js';
import { InvalidConfigError } from '../../src/core/errors.js';

test('hostIfnameFor is stable, prefixed wv, 15 chars, hex', () => {
  const a = hostIfnameFor('0123456789abcdef'.repeat(4), 'eth0');
  assert.equal(a, hostIfnameFor('0123456789abcdef'.repeat(4), 'eth0'));
  assert.match(a, /^wv[0-9a-f]{13}$/);
  assert.equal(a.length, 15);
  assert.ok(isValidIfname(a));
});

test('hostIfnameFor differs by container and by ifname', () => {
  const names = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    names.add(hostIfnameFor(`container-${i}`, 'eth0'));
    names.add(hostIfnameFor(`container-${i}`, 'net1'));
  }
  assert.equal(names.size, 4000);
  // the separator keeps ("ab","c") and ("a","bc") apart
  assert.notEqual(hostIfnameFor('ab', 'c'), hostIfnameFor('a', 'bc'));
});

test('bridgeNameFor: weft keeps its name, others get wb + hash', () => {
  assert.equal(bridgeNameFor('weft'), 'weft');
  const b = bridgeNameFor('my-very-long-network-name-that-would-not-fit');
  assert.match(b, /^wb[0-9a-f]{12}$/);
  assert.ok(b.length <= 15);
  assert.equal(b, bridgeNameFor('my-very-long-network-name-that-would-not-fit'));
  assert.notEqual(bridgeNameFor('a'), bridgeNameFor('b'));
  assert.notEqual(bridgeNameFor('Weft'), 'weft');
});

test('owner alias round trip', () => {
  assert.equal(ownerAlias('net1'), 'weft:net1');
  assert.equal(networkFromAlias('weft:net1'), 'net1');
  assert.equal(networkFromAlias('weft:'), undefined);
  assert.equal(networkFromAlias('docker0'), undefined);
  assert.equal(networkFromAlias(undefined), undefined);
  assert.equal(portAlias('weft', true), 'weft-port:weft:hairpin');
  assert.deepEqual(parsePortAlias(portAlias('wb0123', false)), { bridge: 'wb0123', hairpin: false });
  assert.deepEqual(parsePortAlias('weft-port:weft:hairpin'), { bridge: 'weft', hairpin: true });
  assert.equal(parsePortAlias('weft:weft'), undefined);
  assert.equal(parsePortAlias('weft-port:'), undefined);
});

test('isValidIfname follows the kernel rules (stricter on characters)', () => {
  for (const ok of ['eth0', 'net1', 'a', 'x'.repeat(15), 'eth0.100', 'veth-a_b']) assert.ok(isValidIfname(ok), ok);
  for (const bad of ['', 'x'.repeat(16), '.', '..', 'a/b', 'a:b', 'a b', 'a\tb', 'a"b', "a'b", 'a#b', 'é'.repeat(8)]) assert.ok(!isValidIfname(bad), bad);
  assert.throws(() => assertIfname('a b', 'CNI_IFNAME'), (e: unknown) => e instanceof InvalidConfigError && /CNI_IFNAME "a b"/.test(e.message));
});

test('isHostIfname: exactly the names hostIfnameFor makes', () => {
  assert.equal(isHostIfname(hostIfnameFor('abc', 'eth0')), true);
  for (const n of ['wvorphan0', 'wv0123456789ab', 'wv0123456789abcd', 'wv0123456789ABC', 'xx0123456789abc', 'weft', '']) assert.equal(isHostIfname(n), false, n);
});
