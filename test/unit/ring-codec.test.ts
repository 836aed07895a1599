import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCidr } from '../../src/core/ip/cidr.js';
import { RingInvalidError } from '../../src/core/errors.js';
import { type RingWire, decodeRing, encodeRing, ringViolations, seedRing } from '../../src/core/ring/index.js';
import { assertRoundTrip, assertSound, canon, lit, prng } from './ring-kit.js';
import { randomOp } from './ring-ops-kit.js';

const sample = (): RingWire => encodeRing(lit([[0, 'a', 3, 10], [100, 'b', 1], [200, 'c', 0]], { a: 4, b: 2, c: [7, 'a', 'reclaim', 'b'] }, [['b', 'a']]));

test('codec: the wire form is compact, canonical and round-trips', () => {
  const w = sample();
  assert.deepEqual(w, {
    v: 1,
    range: '10.0.0.0/24',
    genesis: ['seed:t', 1],
    peers: [['a', 4], ['b', 2], ['c', 7, 0, 7, 1, 'reclaim']],
    tokens: [['0', 0, 3, 'a'], ['64', 1, 1, '64'], ['c8', 2, 0, '38']],
    votes: [[1, 0, 2]],
  });
  assert.deepEqual(encodeRing(decodeRing(JSON.parse(JSON.stringify(w)))), w);
  const v6 = seedRing(parseCidr('fd00::/64'), ['x', 'y', 'z']);
  assertRoundTrip(v6);
  assert.equal(encodeRing(v6).tokens[1]![0], '5400000000000000');
});

const garbage: [string, (w: Record<string, unknown>) => unknown][] = [
  ['not an object', () => 'ring'],
  ['null', () => null],
  ['an array', () => []],
  ['unknown key', (w) => ({ ...w, extra: 1 })],
  ['missing key', (w) => { const { votes: _v, ...rest } = w; return rest; }],
  ['wrong version', (w) => ({ ...w, v: 2 })],
  ['range with host bits', (w) => ({ ...w, range: '10.0.0.1/24' })],
  ['range not a CIDR', (w) => ({ ...w, range: 'x' })],
  ['genesis founders 0', (w) => ({ ...w, genesis: ['g', 0] })],
  ['genesis id empty', (w) => ({ ...w, genesis: ['', 1] })],
  ['genesis id control chars', (w) => ({ ...w, genesis: ['a\nb', 1] })],
  ['no peers', (w) => ({ ...w, peers: [], tokens: [], votes: [] })],
  ['peers unsorted', (w) => ({ ...w, peers: [['b', 2], ['a', 4], ['c', 7]] })],
  ['duplicate peer', (w) => ({ ...w, peers: [['a', 4], ['a', 4], ['c', 7]] })],
  ['peer id with space', (w) => ({ ...w, peers: [['a', 4], ['b c', 2], ['c', 7]] })],
  ['peer id too long', (w) => ({ ...w, peers: [['a', 4], ['b'.repeat(129), 2], ['c', 7]] })],
  ['negative heartbeat', (w) => ({ ...w, peers: [['a', -1], ['b', 2], ['c', 7]] })],
  ['fractional heartbeat', (w) => ({ ...w, peers: [['a', 1.5], ['b', 2], ['c', 7]] })],
  ['unsafe heartbeat', (w) => ({ ...w, peers: [['a', 2 ** 60], ['b', 2], ['c', 7]] })],
  ['self heir', (w) => ({ ...w, peers: [['a', 4], ['b', 2], ['c', 7, 2, 7, 1, 'reclaim']] })],
  ['heir out of bounds', (w) => ({ ...w, peers: [['a', 4], ['b', 2], ['c', 7, 9, 7, 1, 'reclaim']] })],
  ['retired above heartbeat', (w) => ({ ...w, peers: [['a', 4], ['b', 2], ['c', 7, 0, 8, 1, 'reclaim']] })],
  ['unknown reason', (w) => ({ ...w, peers: [['a', 4], ['b', 2], ['c', 7, 0, 7, 1, 'vanished']] })],
  ['short peer tuple', (w) => ({ ...w, peers: [['a'], ['b', 2], ['c', 7]] })],
  ['no tokens', (w) => ({ ...w, tokens: [] })],
  ['first token not at 0', (w) => ({ ...w, tokens: [['1', 0, 0, '0']] })],
  ['tokens unsorted', (w) => ({ ...w, tokens: [['0', 0, 0, '0'], ['c8', 1, 0, '0'], ['64', 2, 0, '0']] })],
  ['duplicate token', (w) => ({ ...w, tokens: [['0', 0, 0, '0'], ['0', 1, 0, '0']] })],
  ['token outside range', (w) => ({ ...w, tokens: [['0', 0, 0, '0'], ['100', 1, 0, '0']] })],
  ['hex with leading zero', (w) => ({ ...w, tokens: [['0', 0, 0, '0'], ['064', 1, 0, '0']] })],
  ['hex upper case', (w) => ({ ...w, tokens: [['0', 0, 0, '0'], ['C8', 1, 0, '0']] })],
  ['hex too long', (w) => ({ ...w, tokens: [['0', 0, 0, '0'], ['1'.repeat(40), 1, 0, '0']] })],
  ['offset as number', (w) => ({ ...w, tokens: [[0, 0, 0, '0']] })],
  ['owner out of bounds', (w) => ({ ...w, tokens: [['0', 3, 0, '0']] })],
  ['negative version', (w) => ({ ...w, tokens: [['0', 0, -1, '0']] })],
  ['free above range', (w) => ({ ...w, tokens: [['0', 0, 0, '101']] })],
  ['vote on self', (w) => ({ ...w, votes: [[1, 1, 2]] })],
  ['vote above heartbeat', (w) => ({ ...w, votes: [[1, 0, 3]] })],
  ['votes unsorted', (w) => ({ ...w, votes: [[1, 2, 2], [1, 0, 2]] })],
  ['duplicate vote', (w) => ({ ...w, votes: [[1, 0, 2], [1, 0, 2]] })],
  ['vote tuple', (w) => ({ ...w, votes: [[1, 0]] })],
  ['too many tokens', (w) => ({ ...w, tokens: { length: 2 ** 21 } })],
];

for (const [name, mutate] of garbage) {
  test(`codec: rejects ${name}`, () => {
    const input = mutate(sample() as unknown as Record<string, unknown>);
    assert.throws(() => decodeRing(input), RingInvalidError);
  });
}

test('codec: stale votes in well-formed input are dropped, not rejected', () => {
  const w = sample();
  const r = decodeRing({ ...w, votes: [[1, 0, 1]] }); // b is at heartbeat 2
  assert.equal(r.votes.size, 0);
});

/** Random mutations of valid states: every outcome is either a sound ring or RingInvalidError. */
test('codec: fuzzed input never escapes as anything but RingInvalidError or a sound ring', () => {
  const rand = prng(99);
  let ring = seedRing(parseCidr('10.1.0.0/24'), ['a', 'b', 'c']);
  const newIds = ['d', 'e', 'f'];
  for (let i = 0; i < 60; i++) ring = randomOp(ring, rand, newIds);
  const base = JSON.stringify(encodeRing(ring));
  const atoms: unknown[] = [0, -1, 1, 2 ** 53, 0.5, '', '0', 'ff', 'a', null, true, [], {}, 'reclaim', '10.1.0.0/24'];
  let accepted = 0;
  for (let n = 0; n < 2000; n++) {
    const w = JSON.parse(base) as unknown;
    const edits = 1 + Math.floor(rand() * 3);
    for (let e = 0; e < edits; e++) mutateRandom(w, rand, atoms);
    try {
      const r = decodeRing(w);
      assert.deepEqual(ringViolations(r), []);
      assertSound(r);
      accepted++;
    } catch (err) {
      if (!(err instanceof RingInvalidError)) throw err;
    }
  }
  assert.ok(accepted > 0 && accepted < 2000, `accepted ${accepted}`);
  // the text form survives truncation attempts only as a JSON error upstream, never as a ring
  assert.throws(() => decodeRing(base.slice(0, 40)), RingInvalidError);
  assert.equal(canon(decodeRing(JSON.parse(base))), base);
});

function mutateRandom(root: unknown, rand: () => number, atoms: unknown[]): void {
  // Walk to a random container and replace, delete or duplicate one of its items.
  let node = root as Record<string, unknown> | unknown[];
  for (let depth = 0; depth < 4; depth++) {
    const keys = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) break;
    const k = keys[Math.floor(rand() * keys.length)]!;
    const child = (node as Record<string | number, unknown>)[k];
    if (child !== null && typeof child === 'object' && rand() < 0.6) { node = child as Record<string, unknown>; continue; }
    const r = rand();
    if (r < 0.6) (node as Record<string | number, unknown>)[k] = atoms[Math.floor(rand() * atoms.length)];
    else if (r < 0.8 && Array.isArray(node)) node.splice(k as number, 1);
    else if (Array.isArray(node)) node.splice(k as number, 0, structuredClone(child));
    else delete (node as Record<string, unknown>)[k as string];
    return;
  }
}
