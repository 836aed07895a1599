import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { test } from 'node:test';
import { addToIp, bits, compareIp, formatIp, ipEquals, ipFromValue, ipKey, maxValue, normalizeIp, parseIp, tryParseIp, type Ip } from '../../src/core/ip/addr.js';
import { seededRandom } from '../../src/core/prng.js';

const prng = seededRandom;

const v4 = (value: bigint): Ip => ({ family: 4, value });
const v6 = (value: bigint): Ip => ({ family: 6, value });

test('family constants', () => {
  assert.equal(bits(4), 32);
  assert.equal(bits(6), 128);
  assert.equal(maxValue(4), 0xffffffffn);
  assert.equal(maxValue(6), (1n << 128n) - 1n);
});

test('IPv4 parse: valid literals and their values', () => {
  assert.deepEqual(parseIp('0.0.0.0'), v4(0n));
  assert.deepEqual(parseIp('255.255.255.255'), v4(0xffffffffn));
  assert.deepEqual(parseIp('10.32.0.1'), v4(0x0a200001n));
  assert.deepEqual(parseIp('192.0.2.255'), v4(0xc00002ffn));
  assert.deepEqual(parseIp('1.2.3.4'), v4(0x01020304n));
});

test('IPv4 parse: invalid literals are rejected', () => {
  for (const s of [
    '', '1', '1.2.3', '1.2.3.4.5', '256.0.0.0', '1.2.3.256', '01.2.3.4', '1.2.3.04', '00.0.0.0',
    '1.2.3.-1', '1..3.4', '.1.2.3', '1.2.3.', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4\n', '1.2.3.4/32',
    '0x1.2.3.4', '1.2.3.4a', 'a.b.c.d', '1.2.3.1000', '١.٢.٣.٤', '1,2,3,4', '+1.2.3.4', '1e2.0.0.0',
  ]) {
    assert.equal(tryParseIp(s), undefined, JSON.stringify(s));
    assert.throws(() => parseIp(s), RangeError, JSON.stringify(s));
  }
  // non-strings from untyped callers (JSON input)
  assert.equal(tryParseIp(5 as unknown as string), undefined);
  assert.equal(tryParseIp(undefined as unknown as string), undefined);
  assert.equal(tryParseIp(null as unknown as string), undefined);
});

test('IPv4 format', () => {
  assert.equal(formatIp(v4(0n)), '0.0.0.0');
  assert.equal(formatIp(v4(0xffffffffn)), '255.255.255.255');
  assert.equal(formatIp(v4(0x0a200001n)), '10.32.0.1');
  assert.equal(formatIp(v4(0x00ff0100n)), '0.255.1.0');
});

test('IPv6 parse: forms and values', () => {
  assert.deepEqual(parseIp('::'), v6(0n));
  assert.deepEqual(parseIp('::1'), v6(1n));
  assert.deepEqual(parseIp('1::'), v6(1n << 112n));
  assert.deepEqual(parseIp('fd00::1'), v6((0xfd00n << 112n) | 1n));
  assert.deepEqual(parseIp('FD00::A'), v6((0xfd00n << 112n) | 0xan));
  assert.deepEqual(parseIp('0001:0002:0003:0004:0005:0006:0007:0008'), parseIp('1:2:3:4:5:6:7:8'));
  assert.deepEqual(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), v6((1n << 128n) - 1n));
  assert.deepEqual(parseIp('1:2:3:4:5:6:7::'), parseIp('1:2:3:4:5:6:7:0'));
  assert.deepEqual(parseIp('::2:3:4:5:6:7:8'), parseIp('0:2:3:4:5:6:7:8'));
  assert.deepEqual(parseIp('1::8'), v6((1n << 112n) | 8n));
  assert.equal(parseIp('fe80::1').family, 6);
});

test('IPv6 parse: embedded IPv4 (last 32 bits)', () => {
  assert.deepEqual(parseIp('::ffff:1.2.3.4'), v6(0xffff01020304n));
  assert.deepEqual(parseIp('::ffff:1.2.3.4'), parseIp('::ffff:102:304'));
  assert.deepEqual(parseIp('::1.2.3.4'), v6(0x01020304n));
  assert.deepEqual(parseIp('64:ff9b::192.0.2.33'), v6((0x64n << 112n) | (0xff9bn << 96n) | 0xc0000221n));
  assert.deepEqual(parseIp('1:2:3:4:5:6:1.2.3.4'), parseIp('1:2:3:4:5:6:102:304'));
  assert.deepEqual(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255'), v6((1n << 128n) - 1n));
  for (const s of ['::ffff:1.2.3', '::ffff:1.2.3.4.5', '::ffff:256.1.1.1', '::ffff:01.2.3.4', '1:2:3:4:5:6:7:1.2.3.4',
    '1::2:3:4:5:6:1.2.3.4', '::1.2.3.4:5', '1.2.3.4::', '::ffff:1.2.3.4/32', '::ffff:1.2.3.4:']) {
    assert.equal(tryParseIp(s), undefined, s);
  }
});

test('IPv6 parse: invalid literals are rejected', () => {
  for (const s of [
    ':', ':::', '1:2', '1::2::3', '::1::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8',
    ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:', '12345::', 'g::1', '::-1', ' ::1', '::1 ', 'fe80::1%eth0', '[::1]', '::1/128',
    '1:2:3:4:5:6:7:8:', ':1::', '::0x1', '1::2:', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    '0000:0000:0000:0000:0000:0000:0000:0000:0', '00000::',
  ]) {
    assert.equal(tryParseIp(s), undefined, JSON.stringify(s));
  }
  // over-long input is rejected without work
  assert.equal(tryParseIp(`${'0:'.repeat(100)}1`), undefined);
});

test('IPv6 format: RFC 5952 canonical text', () => {
  const cases: [string, string][] = [
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    // a single zero group is not compressed (5952 4.2.2)
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0'],
    ['0:1:2:3:4:5:6:7', '0:1:2:3:4:5:6:7'],
    // the longest run is compressed (4.2.3)
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['1:0:0:1:0:0:0:0', '1:0:0:1::'],
    // ties: the first run is compressed
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['0:0:1:1:1:1:0:0', '::1:1:1:1:0:0'],
    // leading zeros dropped, lower case (4.1, 4.3)
    ['fd00:00AB:000c:0000:0000:0000:0000:0001', 'fd00:ab:c::1'],
    ['FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['fe80::', 'fe80::'],
    ['::ffff:0:0', '::ffff:0:0'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
    ['0:0:0:0:0:0:1.2.3.4', '::102:304'],
  ];
  for (const [input, want] of cases) assert.equal(normalizeIp(input), want, input);
});

test('IPv6 format agrees with the WHATWG URL serializer (also RFC 5952) on random values', () => {
  const rnd = prng(5952);
  for (let i = 0; i < 4000; i++) {
    let v = 0n;
    for (let g = 0; g < 8; g++) {
      const r = rnd();
      // plenty of zero groups so runs and ties are common
      const group = r < 0.5 ? 0 : r < 0.6 ? 1 : Math.floor(rnd() * 0x10000);
      v = (v << 16n) | BigInt(group);
    }
    const text = formatIp(v6(v));
    assert.equal(text, new URL(`http://[${text}]/`).hostname.slice(1, -1), text);
    assert.equal(text, text.toLowerCase());
    assert.ok(!/(^|:)0[0-9a-f]/.test(text), `leading zero in ${text}`);
    assert.ok(text.split('::').length <= 2, text);
    assert.deepEqual(parseIp(text), v6(v), `round trip ${text}`);
  }
});

test('parse validity agrees with node:net isIP on random strings (no zone ids)', () => {
  const rnd = prng(42);
  const alpha = '0123456789abcdefABCDEFg:::..';
  for (let i = 0; i < 20000; i++) {
    const len = 1 + Math.floor(rnd() * 22);
    let s = '';
    for (let j = 0; j < len; j++) s += alpha[Math.floor(rnd() * alpha.length)];
    assert.equal(tryParseIp(s) !== undefined, isIP(s) !== 0, JSON.stringify(s));
  }
  // structured near-misses: group counts around 8 with and without :: and a dotted tail
  for (let i = 0; i < 20000; i++) {
    const n = Math.floor(rnd() * 10);
    const parts = Array.from({ length: n }, () => (rnd() < 0.4 ? '0' : Math.floor(rnd() * 0x10000).toString(16)));
    let s = parts.join(':');
    if (rnd() < 0.5) { const k = Math.floor(rnd() * (n + 1)); s = `${parts.slice(0, k).join(':')}::${parts.slice(k).join(':')}`; }
    if (rnd() < 0.3) s += `${s.endsWith(':') ? '' : ':'}${Math.floor(rnd() * 300)}.2.3.4`;
    const ours = tryParseIp(s);
    assert.equal(ours !== undefined, isIP(s) !== 0, JSON.stringify(s));
    if (ours && ours.family === 6) assert.equal(formatIp(ours), new URL(`http://[${s}]/`).hostname.slice(1, -1), s);
  }
});

test('IPv4 round trip on random values', () => {
  const rnd = prng(4);
  for (let i = 0; i < 2000; i++) {
    const v = BigInt(Math.floor(rnd() * 0x100000000));
    const text = formatIp(v4(v));
    assert.equal(isIP(text), 4, text);
    assert.deepEqual(parseIp(text), v4(v));
  }
});

test('ipFromValue bounds, addToIp, equality, ordering', () => {
  assert.deepEqual(ipFromValue(4, 0n), v4(0n));
  assert.deepEqual(ipFromValue(4, 0xffffffffn), v4(0xffffffffn));
  assert.throws(() => ipFromValue(4, 0x100000000n), RangeError);
  assert.throws(() => ipFromValue(4, -1n), RangeError);
  assert.deepEqual(ipFromValue(6, (1n << 128n) - 1n), v6((1n << 128n) - 1n));
  assert.throws(() => ipFromValue(6, 1n << 128n), RangeError);
  assert.equal(formatIp(addToIp(parseIp('10.0.0.255'), 1n)), '10.0.1.0');
  assert.equal(formatIp(addToIp(parseIp('10.0.1.0'), -1n)), '10.0.0.255');
  assert.throws(() => addToIp(parseIp('255.255.255.255'), 1n), RangeError);
  assert.throws(() => addToIp(parseIp('0.0.0.0'), -1n), RangeError);
  assert.equal(formatIp(addToIp(parseIp('::ffff'), 1n)), '::1:0');
  assert.ok(ipEquals(parseIp('::1'), parseIp('0::0:1')));
  assert.ok(!ipEquals(v4(1n), v6(1n)), 'same value, different family');
  assert.equal(compareIp(v4(1n), v4(2n)), -1);
  assert.equal(compareIp(v4(2n), v4(1n)), 1);
  assert.equal(compareIp(v4(2n), v4(2n)), 0);
  assert.ok(compareIp(v4(0xffffffffn), v6(0n)) < 0, 'v4 sorts before v6');
  assert.ok(compareIp(v6(0n), v4(5n)) > 0);
});

test('ipKey: fixed width and order preserving', () => {
  assert.equal(ipKey(parseIp('10.32.0.1')), '4:0a200001');
  assert.equal(ipKey(parseIp('0.0.0.0')), '4:00000000');
  assert.equal(ipKey(parseIp('::1')), `6:${'0'.repeat(31)}1`);
  assert.equal(ipKey(parseIp('ffff::')), `6:ffff${'0'.repeat(28)}`);
  const rnd = prng(7);
  const ips: Ip[] = [];
  for (let i = 0; i < 300; i++) ips.push(rnd() < 0.5 ? v4(BigInt(Math.floor(rnd() * 0x100000000))) : v6(BigInt(Math.floor(rnd() * 0x100000000)) << BigInt(Math.floor(rnd() * 96))));
  const byKey = [...ips].sort((a, b) => (ipKey(a) < ipKey(b) ? -1 : ipKey(a) > ipKey(b) ? 1 : 0));
  const byValue = [...ips].sort(compareIp);
  assert.deepEqual(byKey.map(ipKey), byValue.map(ipKey));
});

test('normalizeIp throws on junk', () => {
  assert.equal(normalizeIp('010.1.1.1'.slice(1)), '10.1.1.1');
  assert.throws(() => normalizeIp('nope'), /"nope" is not an IP address/);
});
