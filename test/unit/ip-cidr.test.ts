import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIp } from '../../src/core/ip/addr.js';
import {
  type Cidr, cidrContains, cidrContainsCidr, cidrEquals, cidrLast, cidrOverlaps, cidrSize, defaultGateway, formatCidr,
  formatIpWithPrefix, parseCidr, tryParseCidr, tryParseIpWithPrefix, usableRange,
} from '../../src/core/ip/cidr.js';
import { seededRandom } from '../../src/core/prng.js';

const prng = seededRandom;

const c = (s: string): Cidr => parseCidr(s);
const ipv = (s: string): bigint => parseIp(s).value;

test('parse: masks host bits unless strict', () => {
  assert.deepEqual(tryParseCidr('10.32.0.5/12'), { family: 4, base: ipv('10.32.0.0'), prefix: 12 });
  assert.equal(tryParseCidr('10.32.0.5/12', true), undefined);
  assert.deepEqual(tryParseCidr('10.32.0.0/12', true), { family: 4, base: ipv('10.32.0.0'), prefix: 12 });
  assert.deepEqual(tryParseCidr('10.47.255.255/12'), { family: 4, base: ipv('10.32.0.0'), prefix: 12 });
  assert.deepEqual(tryParseCidr('0.0.0.0/0', true), { family: 4, base: 0n, prefix: 0 });
  assert.deepEqual(tryParseCidr('1.2.3.4/0'), { family: 4, base: 0n, prefix: 0 });
  assert.deepEqual(tryParseCidr('1.2.3.4/32', true), { family: 4, base: ipv('1.2.3.4'), prefix: 32 });
  assert.deepEqual(tryParseCidr('fd00::1/64'), { family: 6, base: ipv('fd00::'), prefix: 64 });
  assert.equal(tryParseCidr('fd00::1/64', true), undefined);
  assert.deepEqual(tryParseCidr('::/0', true), { family: 6, base: 0n, prefix: 0 });
  assert.deepEqual(tryParseCidr('::1/128', true), { family: 6, base: 1n, prefix: 128 });
  assert.deepEqual(tryParseCidr('FD00:AB::/32'), { family: 6, base: ipv('fd00:ab::'), prefix: 32 });
});

test('parse: rejects malformed prefixes', () => {
  for (const s of ['10.0.0.0', '10.0.0.0/', '/24', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/024', '10.0.0.0/2 4', '10.0.0.0/24/1',
    '10.0.0.0/1e1', 'fd00::/129', 'fd00::/0x40', '10.0.0/24', '10.0.0.0 /24', 'x/24', '', 'fd00::/']) {
    assert.equal(tryParseCidr(s), undefined, s);
    assert.throws(() => parseCidr(s), /is not a CIDR prefix/, s);
  }
  assert.equal(tryParseCidr(42 as unknown as string), undefined);
});

test('parseCidr strict: host bits error names the fixed prefix', () => {
  assert.throws(() => parseCidr('10.32.0.5/12', true), { name: 'RangeError', message: '"10.32.0.5/12" has host bits set; did you mean 10.32.0.0/12?' });
  assert.throws(() => parseCidr('fd00::1/64', true), { message: '"fd00::1/64" has host bits set; did you mean fd00::/64?' });
  assert.deepEqual(parseCidr('10.32.0.5/12'), { family: 4, base: ipv('10.32.0.0'), prefix: 12 });
});

test('ip with prefix keeps host bits', () => {
  assert.deepEqual(tryParseIpWithPrefix('10.32.0.5/12'), { ip: parseIp('10.32.0.5'), prefix: 12 });
  assert.deepEqual(tryParseIpWithPrefix('fd00::5/64'), { ip: parseIp('fd00::5'), prefix: 64 });
  assert.equal(tryParseIpWithPrefix('10.32.0.5'), undefined);
  assert.equal(tryParseIpWithPrefix('10.32.0.5/33'), undefined);
  assert.equal(formatIpWithPrefix(parseIp('FD00::0005'), 64), 'fd00::5/64');
});

test('format is canonical', () => {
  assert.equal(formatCidr(c('10.32.0.5/12')), '10.32.0.0/12');
  assert.equal(formatCidr(c('FD00:0:0:0::/64')), 'fd00::/64');
  assert.equal(formatCidr(c('::/0')), '::/0');
  assert.equal(formatCidr(c('0.0.0.0/0')), '0.0.0.0/0');
});

test('size and last', () => {
  assert.equal(cidrSize(c('10.0.0.0/24')), 256n);
  assert.equal(cidrSize(c('10.0.0.0/32')), 1n);
  assert.equal(cidrSize(c('0.0.0.0/0')), 1n << 32n);
  assert.equal(cidrSize(c('fd00::/64')), 1n << 64n);
  assert.equal(cidrSize(c('::/0')), 1n << 128n);
  assert.equal(cidrLast(c('10.0.0.0/24')), ipv('10.0.0.255'));
  assert.equal(cidrLast(c('10.32.0.0/12')), ipv('10.47.255.255'));
  assert.equal(cidrLast(c('0.0.0.0/0')), 0xffffffffn);
  assert.equal(cidrLast(c('::/0')), (1n << 128n) - 1n);
  assert.equal(cidrLast(c('fd00::/64')), ipv('fd00::ffff:ffff:ffff:ffff'));
});

test('contains: bounds and family', () => {
  const n = c('10.0.0.0/24');
  assert.ok(cidrContains(n, parseIp('10.0.0.0')));
  assert.ok(cidrContains(n, parseIp('10.0.0.255')));
  assert.ok(!cidrContains(n, parseIp('10.0.1.0')));
  assert.ok(!cidrContains(n, parseIp('9.255.255.255')));
  assert.ok(!cidrContains(c('::/0'), parseIp('10.0.0.1')), 'v6 prefix never contains a v4 address');
  assert.ok(!cidrContains(c('0.0.0.0/0'), parseIp('::1')));
  assert.ok(cidrContains(c('::/0'), parseIp('::ffff:10.0.0.1')));
  assert.ok(!cidrContains(c('10.0.0.0/8'), { family: 6, value: ipv('10.0.0.1') }), 'same bits, other family');
});

test('containsCidr, overlaps, equals', () => {
  assert.ok(cidrContainsCidr(c('10.0.0.0/8'), c('10.1.0.0/16')));
  assert.ok(cidrContainsCidr(c('10.0.0.0/8'), c('10.0.0.0/8')));
  assert.ok(!cidrContainsCidr(c('10.1.0.0/16'), c('10.0.0.0/8')));
  assert.ok(!cidrContainsCidr(c('10.0.0.0/8'), c('11.0.0.0/16')));
  assert.ok(!cidrContainsCidr(c('::/0'), c('10.0.0.0/8')));
  assert.ok(cidrOverlaps(c('10.0.0.0/8'), c('10.200.0.0/16')));
  assert.ok(cidrOverlaps(c('10.200.0.0/16'), c('10.0.0.0/8')));
  assert.ok(cidrOverlaps(c('10.0.0.0/24'), c('10.0.0.0/24')));
  assert.ok(!cidrOverlaps(c('10.0.0.0/24'), c('10.0.1.0/24')), 'adjacent is not overlapping');
  assert.ok(!cidrOverlaps(c('0.0.0.0/0'), c('::/0')), 'families never overlap');
  assert.ok(cidrOverlaps(c('fd00::/48'), c('fd00:0:0:5::/64')));
  assert.ok(!cidrOverlaps(c('fd00::/64'), c('fd00:0:0:1::/64')));
  assert.ok(cidrEquals(c('10.0.0.1/24'), c('10.0.0.0/24')));
  assert.ok(!cidrEquals(c('10.0.0.0/24'), c('10.0.0.0/25')));
  assert.ok(!cidrEquals(c('0.0.0.0/0'), c('::/0')));
});

test('overlaps/containsCidr agree with brute force on random small v4 prefixes', () => {
  const rnd = prng(11);
  for (let i = 0; i < 3000; i++) {
    const mk = (): Cidr => {
      const prefix = 24 + Math.floor(rnd() * 9);
      return parseCidr(`10.0.0.${Math.floor(rnd() * 256)}/${prefix}`);
    };
    const a = mk();
    const b = mk();
    const setA = new Set<bigint>();
    for (let v = a.base; v <= cidrLast(a); v++) setA.add(v);
    let any = false;
    let all = true;
    for (let v = b.base; v <= cidrLast(b); v++) { if (setA.has(v)) any = true; else all = false; }
    assert.equal(cidrOverlaps(a, b), any, `${formatCidr(a)} ${formatCidr(b)}`);
    assert.equal(cidrContainsCidr(a, b), all, `${formatCidr(a)} ⊇ ${formatCidr(b)}`);
  }
});

test('usableRange: v4 drops network and broadcast except /31 and /32', () => {
  assert.deepEqual(usableRange(c('10.0.0.0/24')), { first: ipv('10.0.0.1'), last: ipv('10.0.0.254') });
  assert.deepEqual(usableRange(c('10.0.0.0/30')), { first: ipv('10.0.0.1'), last: ipv('10.0.0.2') });
  assert.deepEqual(usableRange(c('10.0.0.0/31')), { first: ipv('10.0.0.0'), last: ipv('10.0.0.1') });
  assert.deepEqual(usableRange(c('10.0.0.7/32')), { first: ipv('10.0.0.7'), last: ipv('10.0.0.7') });
  assert.deepEqual(usableRange(c('0.0.0.0/0')), { first: 1n, last: 0xfffffffen });
});

test('usableRange: v6 drops the subnet-router anycast address except /127 and /128', () => {
  assert.deepEqual(usableRange(c('fd00::/64')), { first: ipv('fd00::1'), last: ipv('fd00::ffff:ffff:ffff:ffff') });
  assert.deepEqual(usableRange(c('fd00::/126')), { first: ipv('fd00::1'), last: ipv('fd00::3') });
  assert.deepEqual(usableRange(c('fd00::/127')), { first: ipv('fd00::'), last: ipv('fd00::1') });
  assert.deepEqual(usableRange(c('fd00::5/128')), { first: ipv('fd00::5'), last: ipv('fd00::5') });
});

test('defaultGateway is the first usable address', () => {
  assert.deepEqual(defaultGateway(c('10.32.0.0/12')), parseIp('10.32.0.1'));
  assert.deepEqual(defaultGateway(c('10.0.0.0/31')), parseIp('10.0.0.0'));
  assert.deepEqual(defaultGateway(c('fd00:1::/64')), parseIp('fd00:1::1'));
});
