import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIp } from '../../src/core/ip/addr.js';
import {
  type Interval, formatInterval, intersect, intervalsContain, intervalsOverlap, ipsOf, normalize, subtract, totalSize, tryParseInterval, walkFrom,
} from '../../src/core/ip/ranges.js';
import { seededRandom } from '../../src/core/prng.js';

const prng = seededRandom;

const iv = (first: number | bigint, last: number | bigint): Interval => ({ first: BigInt(first), last: BigInt(last) });
const ipv = (s: string): bigint => parseIp(s).value;

test('tryParseInterval: single, range, prefix', () => {
  assert.deepEqual(tryParseInterval('10.0.0.5'), { family: 4, interval: iv(ipv('10.0.0.5'), ipv('10.0.0.5')) });
  assert.deepEqual(tryParseInterval('10.0.0.5-10.0.0.9'), { family: 4, interval: iv(ipv('10.0.0.5'), ipv('10.0.0.9')) });
  assert.deepEqual(tryParseInterval('10.0.0.5 - 10.0.0.9'), { family: 4, interval: iv(ipv('10.0.0.5'), ipv('10.0.0.9')) });
  assert.deepEqual(tryParseInterval('10.0.0.5-10.0.0.5'), { family: 4, interval: iv(ipv('10.0.0.5'), ipv('10.0.0.5')) });
  assert.deepEqual(tryParseInterval('10.0.0.16/28'), { family: 4, interval: iv(ipv('10.0.0.16'), ipv('10.0.0.31')) });
  assert.deepEqual(tryParseInterval('fd00::10-fd00::20'), { family: 6, interval: iv(ipv('fd00::10'), ipv('fd00::20')) });
  assert.deepEqual(tryParseInterval('fd00::/126', 6), { family: 6, interval: iv(ipv('fd00::'), ipv('fd00::3')) });
  assert.deepEqual(tryParseInterval('::1', 6), { family: 6, interval: iv(1, 1) });
});

test('tryParseInterval: rejects malformed, reversed, mixed or wrong family', () => {
  for (const s of ['', '-', '10.0.0.9-10.0.0.5', '10.0.0.1-', '-10.0.0.1', '10.0.0.1-fd00::1', '10.0.0.1--10.0.0.2', '10.0.0.1-10.0.0.2-10.0.0.3',
    '10.0.0.17/28', '10.0.0.0/33', 'nope', '10.0.0.0/24-10.0.1.0/24', '10.0.0.256']) {
    assert.equal(tryParseInterval(s), undefined, s);
  }
  assert.equal(tryParseInterval('10.0.0.1', 6), undefined);
  assert.equal(tryParseInterval('10.0.0.0/24', 6), undefined);
  assert.equal(tryParseInterval('10.0.0.1-10.0.0.2', 6), undefined);
  assert.equal(tryParseInterval('fd00::1', 4), undefined);
  assert.equal(tryParseInterval(7 as unknown as string), undefined);
});

test('formatInterval', () => {
  assert.equal(formatInterval(4, iv(ipv('10.0.0.5'), ipv('10.0.0.5'))), '10.0.0.5');
  assert.equal(formatInterval(4, iv(ipv('10.0.0.5'), ipv('10.0.0.9'))), '10.0.0.5-10.0.0.9');
  assert.equal(formatInterval(6, iv(ipv('fd00::a'), ipv('fd00::f'))), 'fd00::a-fd00::f');
});

test('normalize merges overlapping and adjacent intervals, sorts', () => {
  assert.deepEqual(normalize([]), []);
  assert.deepEqual(normalize([iv(5, 9), iv(1, 3)]), [iv(1, 3), iv(5, 9)]);
  assert.deepEqual(normalize([iv(1, 3), iv(4, 6)]), [iv(1, 6)], 'adjacent');
  assert.deepEqual(normalize([iv(1, 10), iv(2, 3)]), [iv(1, 10)], 'contained');
  assert.deepEqual(normalize([iv(5, 8), iv(1, 6), iv(10, 10), iv(9, 9)]), [iv(1, 10)]);
  assert.deepEqual(normalize([iv(1, 1), iv(1, 1)]), [iv(1, 1)]);
  const input = [iv(3, 4), iv(1, 1)];
  normalize(input);
  assert.deepEqual(input, [iv(3, 4), iv(1, 1)], 'input untouched');
});

test('subtract, intersect: edges', () => {
  assert.deepEqual(subtract([iv(1, 10)], []), [iv(1, 10)]);
  assert.deepEqual(subtract([], [iv(1, 10)]), []);
  assert.deepEqual(subtract([iv(1, 10)], [iv(1, 10)]), []);
  assert.deepEqual(subtract([iv(1, 10)], [iv(0, 11)]), []);
  assert.deepEqual(subtract([iv(1, 10)], [iv(1, 1)]), [iv(2, 10)]);
  assert.deepEqual(subtract([iv(1, 10)], [iv(10, 10)]), [iv(1, 9)]);
  assert.deepEqual(subtract([iv(1, 10)], [iv(5, 5)]), [iv(1, 4), iv(6, 10)]);
  assert.deepEqual(subtract([iv(1, 10)], [iv(3, 4), iv(7, 8)]), [iv(1, 2), iv(5, 6), iv(9, 10)]);
  assert.deepEqual(subtract([iv(1, 3), iv(5, 7)], [iv(2, 6)]), [iv(1, 1), iv(7, 7)]);
  assert.deepEqual(intersect([iv(1, 10)], [iv(5, 20)]), [iv(5, 10)]);
  assert.deepEqual(intersect([iv(1, 3), iv(7, 9)], [iv(2, 8)]), [iv(2, 3), iv(7, 8)]);
  assert.deepEqual(intersect([iv(1, 3)], [iv(4, 6)]), []);
  assert.deepEqual(intersect([], [iv(4, 6)]), []);
  assert.ok(intervalsOverlap([iv(1, 3)], [iv(3, 6)]));
  assert.ok(!intervalsOverlap([iv(1, 3)], [iv(4, 6)]));
  assert.equal(totalSize([iv(1, 3), iv(10, 10)]), 4n);
  assert.equal(totalSize([]), 0n);
  assert.ok(intervalsContain([iv(1, 3), iv(10, 10)], 10n));
  assert.ok(!intervalsContain([iv(1, 3), iv(10, 10)], 4n));
  // v6-sized values
  const big = 1n << 100n;
  assert.deepEqual(subtract([iv(0n, big)], [iv(1n, big - 1n)]), [iv(0n, 0n), iv(big, big)]);
  assert.equal(totalSize([iv(0n, (1n << 128n) - 1n)]), 1n << 128n);
});

/** A random list of intervals over [0, 63]. */
function randomList(rnd: () => number): Interval[] {
  const n = Math.floor(rnd() * 5);
  const out: Interval[] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.floor(rnd() * 64);
    const len = Math.floor(rnd() * (rnd() < 0.3 ? 30 : 5));
    out.push(iv(a, Math.min(63, a + len)));
  }
  return out;
}

function toSet(list: readonly Interval[]): Set<number> {
  const s = new Set<number>();
  for (const i of list) for (let v = i.first; v <= i.last; v++) s.add(Number(v));
  return s;
}

function isNormal(list: readonly Interval[]): boolean {
  for (let i = 0; i < list.length; i++) {
    if (list[i]!.first > list[i]!.last) return false;
    if (i > 0 && list[i]!.first <= list[i - 1]!.last + 1n) return false;
  }
  return true;
}

test('property: normalize/subtract/intersect match set semantics', () => {
  const rnd = prng(2024);
  for (let k = 0; k < 3000; k++) {
    const a = randomList(rnd);
    const b = randomList(rnd);
    const sa = toSet(a);
    const sb = toSet(b);
    const na = normalize(a);
    assert.ok(isNormal(na));
    assert.deepEqual(toSet(na), sa);
    assert.equal(totalSize(na), BigInt(sa.size));
    const diff = subtract(na, normalize(b));
    assert.ok(isNormal(diff));
    assert.deepEqual([...toSet(diff)].sort((x, y) => x - y), [...sa].filter((v) => !sb.has(v)).sort((x, y) => x - y));
    const inter = intersect(a, b);
    assert.ok(isNormal(inter));
    assert.deepEqual([...toSet(inter)].sort((x, y) => x - y), [...sa].filter((v) => sb.has(v)).sort((x, y) => x - y));
    assert.equal(intervalsOverlap(a, b), inter.length > 0);
    for (let v = 0; v < 64; v++) assert.equal(intervalsContain(a, BigInt(v)), sa.has(v));
  }
});

test('walkFrom: order, wraparound, gaps, limit', () => {
  const list = [iv(2, 4), iv(8, 9)];
  const walk = (from: bigint, limit?: bigint): number[] => [...walkFrom(list, from, limit)].map(Number);
  assert.deepEqual(walk(0n), [2, 3, 4, 8, 9]);
  assert.deepEqual(walk(2n), [2, 3, 4, 8, 9]);
  assert.deepEqual(walk(3n), [3, 4, 8, 9, 2]);
  assert.deepEqual(walk(5n), [8, 9, 2, 3, 4], 'from inside a gap starts at the next interval');
  assert.deepEqual(walk(9n), [9, 2, 3, 4, 8]);
  assert.deepEqual(walk(10n), [2, 3, 4, 8, 9], 'past the end wraps to the start');
  assert.deepEqual(walk(100n), [2, 3, 4, 8, 9]);
  assert.deepEqual(walk(3n, 2n), [3, 4]);
  assert.deepEqual(walk(3n, 0n), []);
  assert.deepEqual([...walkFrom([], 0n)], []);
  assert.deepEqual([...walkFrom([iv(7, 7)], 3n)].map(Number), [7]);
  // lazy over a huge v6 space: taking a few values costs a few steps
  const huge = [iv(1n, (1n << 64n) - 1n)];
  const it = walkFrom(huge, (1n << 64n) - 2n);
  assert.deepEqual([it.next().value, it.next().value, it.next().value], [(1n << 64n) - 2n, (1n << 64n) - 1n, 1n]);
});

test('property: walkFrom visits every value exactly once, in cyclic order from the start point', () => {
  const rnd = prng(99);
  for (let k = 0; k < 1500; k++) {
    const list = normalize(randomList(rnd));
    const all = [...toSet(list)].sort((x, y) => x - y);
    const from = Math.floor(rnd() * 70);
    const got = [...walkFrom(list, BigInt(from))].map(Number);
    const start = all.findIndex((v) => v >= from);
    const want = start < 0 ? all : [...all.slice(start), ...all.slice(0, start)];
    assert.deepEqual(got, want, `${JSON.stringify(list.map((i) => [Number(i.first), Number(i.last)]))} from ${from}`);
  }
});

test('ipsOf lists addresses up to a cap', () => {
  assert.deepEqual(ipsOf(4, [iv(1, 2), iv(5, 5)]), [{ family: 4, value: 1n }, { family: 4, value: 2n }, { family: 4, value: 5n }]);
  assert.equal(ipsOf(6, [iv(0n, 1n << 80n)], 10).length, 10);
  assert.deepEqual(ipsOf(4, [iv(1, 5), iv(7, 9)], 3).map((i) => i.value), [1n, 2n, 3n]);
});
