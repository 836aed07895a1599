import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCidr } from '../../src/core/ip/cidr.js';
import { RingRangeMismatchError } from '../../src/core/errors.js';
import { type Ring, merge, mergeAll, seedRing } from '../../src/core/ring/index.js';
import { assertRoundTrip, assertSound, canon, layout, lit, prng } from './ring-kit.js';
import { randomOp } from './ring-ops-kit.js';

interface Case {
  name: string;
  initial: Ring;
  merge: Ring;
  want: string[];
  check?: (m: Ring) => void;
}

const cases: Case[] = [
  {
    name: 'a token inserted by a grant is added',
    initial: lit([[0, 'a', 0]], { a: 0, b: 0 }),
    merge: lit([[0, 'a', 1], [128, 'b', 1]], { a: 0, b: 0 }),
    want: ['0-127:a', '128-255:b'],
  },
  {
    name: 'tokens from both sides are united',
    initial: lit([[0, 'a', 1], [64, 'b', 1], [96, 'a', 1], [128, 'c', 0]], { a: 0, b: 0, c: 0 }),
    merge: lit([[0, 'a', 0], [128, 'c', 1], [200, 'b', 1]], { a: 0, b: 0, c: 0 }),
    want: ['0-63:a', '64-95:b', '96-127:a', '128-199:c', '200-255:b'],
  },
  {
    name: 'the higher version of a token wins',
    initial: lit([[0, 'a', 2], [128, 'b', 0]], { a: 0, b: 0 }),
    merge: lit([[0, 'b', 3], [128, 'b', 0]], { a: 0, b: 0 }),
    want: ['0-255:b'],
  },
  {
    name: 'equal versions, different owners: the lower id wins (either side)',
    initial: lit([[0, 'b', 1]], { a: 0, b: 0 }),
    merge: lit([[0, 'a', 1]], { a: 0, b: 0 }),
    want: ['0-255:a'],
  },
  {
    name: 'a tombstone moves every token of the peer to its heir',
    initial: lit([[0, 'a', 0], [64, 'b', 0], [128, 'a', 0], [192, 'b', 0]], { a: 5, b: 3 }),
    merge: lit([[0, 'a', 0], [128, 'a', 0]], { a: 5, b: [3, 'a', 'reclaim'] }),
    want: ['0-255:a'],
  },
  {
    name: 'racing tombstones for one peer keep the lowest heir',
    initial: lit([[0, 'b', 0], [64, 'c', 0], [128, 'd', 0]], { b: 0, c: 0, d: [0, 'c'] }),
    merge: lit([[0, 'b', 0], [64, 'c', 0], [128, 'd', 0]], { b: 0, c: 0, d: [0, 'b'] }),
    want: ['0-63:b', '64-127:c', '128-255:b'],
    check: (m) => assert.equal(m.peers.get('d')!.retired!.heir, 'b'),
  },
  {
    name: 'writes a retired peer made in another partition still resolve to its heir; its grants stand',
    // d was reclaimed by a at heartbeat 4 on one side; on the other side d went on, granting 160-191 to e.
    initial: lit([[0, 'a', 0], [128, 'd', 0]], { a: 9, d: [4, 'a', 'reclaim'], e: 0 }),
    merge: lit([[0, 'a', 0], [128, 'd', 1], [160, 'e', 1], [192, 'd', 1]], { a: 6, d: 7, e: 2 }),
    want: ['0-159:a', '160-191:e', '192-255:a'],
    check: (m) => {
      assert.equal(m.peers.get('d')!.heartbeat, 7, 'the higher heartbeat shows d was alive elsewhere');
      assert.equal(m.peers.get('d')!.retired!.atHeartbeat, 4);
    },
  },
  {
    name: 'heir chains resolve to the first live peer',
    initial: lit([[0, 'a', 0], [100, 'b', 0], [200, 'c', 0]], { a: 0, b: [0, 'c'], c: 0 }),
    merge: lit([[0, 'a', 0], [100, 'b', 0], [200, 'c', 0]], { a: 0, b: 0, c: [0, 'a'] }),
    want: ['0-255:a'],
  },
  {
    name: 'a heir cycle (conflicting manual rmpeers) still has exactly one owner, flagged orphaned',
    initial: lit([[0, 'a', 0], [128, 'b', 0]], { a: [0, 'b'], b: 0, c: 0 }),
    merge: lit([[0, 'a', 0], [128, 'b', 0]], { a: 0, b: [0, 'a'], c: 0 }),
    want: ['0-255:a'],
  },
  {
    name: 'a vote is dropped once its suspect heartbeats again',
    initial: lit([[0, 'a', 0], [128, 'b', 0]], { a: 3, b: 3 }, [['b', 'a']]),
    merge: lit([[0, 'a', 0], [128, 'b', 0]], { a: 3, b: 4 }),
    want: ['0-127:a', '128-255:b'],
    check: (m) => assert.equal(m.votes.size, 0),
  },
  {
    name: 'votes from both sides are united while current',
    initial: lit([[0, 'a', 0], [100, 'b', 0], [200, 'c', 0]], { a: 1, b: 1, c: 2 }, [['c', 'a']]),
    merge: lit([[0, 'a', 0], [100, 'b', 0], [200, 'c', 0]], { a: 1, b: 1, c: 2 }, [['c', 'b']]),
    want: ['0-99:a', '100-199:b', '200-255:c'],
    check: (m) => assert.deepEqual([...m.votes.get('c')!.keys()].sort(), ['a', 'b']),
  },
  {
    name: 'different genesis: the ring with more founders replaces the other whole',
    initial: lit([[0, 'x', 5]], { x: 9 }, [], ['seed:x', 1]),
    merge: lit([[0, 'a', 0], [128, 'b', 0]], { a: 0, b: 0 }, [], ['seed:a,b', 2]),
    want: ['0-127:a', '128-255:b'],
  },
  {
    name: 'different genesis, same founders: the lower genesis id wins',
    initial: lit([[0, 'b', 0]], { b: 0 }, [], ['seed:b', 1]),
    merge: lit([[0, 'a', 0]], { a: 0 }, [], ['seed:a', 1]),
    want: ['0-255:a'],
  },
];

for (const c of cases) {
  test(`merge: ${c.name}`, () => {
    for (const [x, y] of [[c.initial, c.merge], [c.merge, c.initial]] as const) {
      const m = merge(x, y);
      assertSound(m, c.name);
      assert.deepEqual(layout(m), c.want);
      assertRoundTrip(m);
      c.check?.(m);
      assert.equal(canon(merge(m, x)), canon(m), 'absorbs its inputs');
    }
  });
}

test('merge returns the left ring itself when the right adds nothing, the right one when the left adds nothing', () => {
  const small = lit([[0, 'a', 0]], { a: 0, b: 0 });
  const big = lit([[0, 'a', 1], [128, 'b', 1]], { a: 2, b: 0 });
  assert.equal(merge(big, small), big);
  assert.equal(merge(small, big), big);
  assert.equal(merge(big, lit([[0, 'a', 1], [128, 'b', 1]], { a: 2, b: 0 })), big, 'equal content counts as nothing new');
});

test('merge refuses rings over different ranges', () => {
  const x = seedRing(parseCidr('10.0.0.0/24'), ['a']);
  const y = seedRing(parseCidr('10.0.1.0/24'), ['a']);
  assert.throws(() => merge(x, y), RingRangeMismatchError);
  assert.throws(() => merge(x, seedRing(parseCidr('10.0.0.0/23'), ['a'])), RingRangeMismatchError);
  assert.throws(() => merge(x, seedRing(parseCidr('fd00::/120'), ['a'])), RingRangeMismatchError);
});

/** Replicas of one cluster that diverge by random operations and partial merges, plus a foreign ring. */
function population(seed: number, family: 4 | 6): Ring[] {
  const rand = prng(seed);
  const range = parseCidr(family === 4 ? '10.9.0.0/22' : 'fd00::/100');
  const base = seedRing(range, ['p1', 'p2', 'p3', 'p4']);
  const reps: Ring[] = [base, base, base, base, base];
  const newIds = Array.from({ length: 20 }, (_, i) => `n${i}`);
  for (let step = 0; step < 160; step++) {
    const i = Math.floor(rand() * reps.length);
    if (rand() < 0.25) reps[i] = merge(reps[i]!, reps[Math.floor(rand() * reps.length)]!);
    else reps[i] = randomOp(reps[i]!, rand, newIds);
  }
  const foreign = seedRing(range, ['q1', 'q2', 'q3', 'q4']);
  return [...reps, randomOp(foreign, rand, [])];
}

for (const family of [4, 6] as const) {
  test(`merge is commutative, associative and idempotent (random replicas, IPv${family})`, () => {
    for (let seed = 1; seed <= 8; seed++) {
      const pop = population(seed * 7919 + family, family);
      const rand = prng(seed);
      for (const r of pop) { assertSound(r, `replica seed ${seed}`); assertRoundTrip(r); }
      for (let k = 0; k < 30; k++) {
        const [x, y, z] = [0, 1, 2].map(() => pop[Math.floor(rand() * pop.length)]!) as [Ring, Ring, Ring];
        assert.equal(canon(merge(x, x)), canon(x), 'idempotent');
        const xy = merge(x, y);
        assert.equal(canon(xy), canon(merge(y, x)), `commutative (seed ${seed})`);
        assert.equal(canon(merge(xy, z)), canon(merge(x, merge(y, z))), `associative (seed ${seed})`);
        assert.equal(canon(merge(xy, x)), canon(xy), 'absorbs');
        assertSound(xy, `merged seed ${seed}`);
      }
      // Any merge order of the whole population converges to the same ring.
      const fwd = mergeAll(pop)!;
      const rev = mergeAll([...pop].reverse())!;
      const shuffled = mergeAll([...pop].sort(() => rand() - 0.5))!;
      assert.equal(canon(fwd), canon(rev));
      assert.equal(canon(fwd), canon(shuffled));
    }
  });
}
