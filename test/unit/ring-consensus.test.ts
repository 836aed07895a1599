import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCidr } from '../../src/core/ip/cidr.js';
import { InvalidConfigError, RingInvalidError } from '../../src/core/errors.js';
import {
  type ConsensusState, type ConsensusWire, consensusRing, decodeConsensus, encodeConsensus, ownedSize, quorumSize, receiveConsensus, receiveConsensusWire, startConsensus,
  stepConsensus,
} from '../../src/core/ring/index.js';
import { assertSound, canon, prng } from './ring-kit.js';

const RANGE = parseCidr('10.40.0.0/16');

interface Msg { at: number; to: number; wire: ConsensusWire }

interface NetOpts {
  n: number;
  size?: number;
  seed: number;
  loss?: number;
  retryMs?: number;
  observers?: number;
  /** component index per peer at a given time; messages only flow within a component */
  side?: (peer: number, now: number) => number;
  until?: number;
}

/** Peers exchanging consensus tables over a lossy, reordering, duplicating in-memory network. */
function run(o: NetOpts): { states: ConsensusState[]; ticks: number } {
  const rand = prng(o.seed);
  const ids = Array.from({ length: o.n }, (_, i) => `host-${String(i).padStart(3, '0')}`);
  const obs = o.observers ?? 0;
  let states = ids.map((id, i) => startConsensus(id, o.size ?? o.n - obs, 0, { retryMs: o.retryMs ?? 200, participant: i >= obs }));
  let queue: Msg[] = [];
  const fanout = Math.max(2, Math.ceil(2 * Math.log2(o.n)));
  const side = o.side ?? (() => 0);
  let now = 0;
  for (; now <= (o.until ?? 60_000); now += 50) {
    // deliver what is due, in random order
    const due = queue.filter((m) => m.at <= now).sort(() => rand() - 0.5);
    queue = queue.filter((m) => m.at > now);
    for (const m of due) {
      // half the deliveries go through JSON, the rest as objects
      const wire = rand() < 0.5 ? JSON.parse(JSON.stringify(m.wire)) as unknown : m.wire;
      states[m.to] = receiveConsensusWire(states[m.to]!, wire, now);
    }
    states = states.map((s) => stepConsensus(s, now));
    for (let i = 0; i < o.n; i++) {
      const s = states[i]!;
      if (s.table.size === 0) continue; // an observer with nothing to say
      const wire = encodeConsensus(s);
      for (let k = 0; k < fanout; k++) {
        const to = Math.floor(rand() * o.n);
        if (to === i || side(i, now) !== side(to, now) || rand() < (o.loss ?? 0)) continue;
        const copies = rand() < 0.1 ? 2 : 1;
        for (let c = 0; c < copies; c++) queue.push({ at: now + 50 * (1 + Math.floor(rand() * 6)), to, wire });
      }
    }
    if (states.every((s) => s.decision) && o.until === undefined) break;
  }
  return { states, ticks: now };
}

function assertAgreement(states: ConsensusState[], size: number): void {
  const decided = states.filter((s) => s.decision);
  const values = new Set(decided.map((s) => JSON.stringify(s.decision)));
  assert.ok(values.size <= 1, `conflicting decisions: ${[...values].join(' | ')}`);
  for (const s of decided) assert.ok(s.decision!.value.length >= quorumSize(size), 'the founders include at least a quorum');
}

test('consensus=1 decides alone at once', () => {
  const s = stepConsensus(startConsensus('solo', 1, 0), 0);
  assert.deepEqual(s.decision?.value, ['solo']);
  const ring = consensusRing(RANGE, s.decision!);
  assert.equal(ownedSize(ring, 'solo'), 65536n);
  assert.equal(ring.genesis.id, 'consensus:1.solo');
});

for (const n of [3, 5, 9, 25]) {
  test(`consensus=${n}: peers starting at once over a lossy network all decide the same founders and build the same ring`, () => {
    for (let seed = 1; seed <= (n > 10 ? 1 : 4); seed++) {
      const { states } = run({ n, seed: seed * 31 + n, loss: 0.3 });
      assert.ok(states.every((s) => s.decision), `seed ${seed}: everyone decides`);
      assertAgreement(states, n);
      const rings = states.map((s) => canon(consensusRing(RANGE, s.decision!)));
      assert.equal(new Set(rings).size, 1);
      assertSound(consensusRing(RANGE, states[0]!.decision!));
    }
  });
}

test('consensus: duelling proposers (no back-off at all) never decide two values', () => {
  for (let seed = 1; seed <= 10; seed++) {
    const { states } = run({ n: 7, seed, loss: 0.2, retryMs: 0, until: 2000 });
    assertAgreement(states, 7);
  }
});

test('consensus: a minority partition cannot decide; after healing everyone learns the majority decision', () => {
  for (let seed = 1; seed <= 2; seed++) {
    const healAt = 3000;
    const split = (p: number, now: number): number => (now < healAt && p < 2 ? 1 : 0);
    const before = run({ n: 5, seed, loss: 0.1, side: split, until: healAt - 50 });
    assert.ok(before.states.slice(0, 2).every((s) => !s.decision), 'the 2-peer side stays undecided');
    assert.ok(before.states.slice(2).every((s) => s.decision), 'the 3-peer side decides');
    const after = run({ n: 5, seed, loss: 0.1, side: split, until: 8000 });
    assert.ok(after.states.every((s) => s.decision));
    assertAgreement(after.states, 5);
  }
});

test('consensus: observers never get a row but learn the decision', () => {
  const { states } = run({ n: 6, seed: 4, loss: 0.1, observers: 2 });
  assertAgreement(states, 4);
  assert.ok(states.every((s) => s.decision));
  for (const s of states) for (const o of ['host-000', 'host-001']) assert.equal(s.table.has(o), false);
  assert.deepEqual(states[0]!.decision!.value.includes('host-000'), false, 'observers are not founders');
});

test('consensus: a table for another N is refused; garbage is RingInvalidError', () => {
  const a = startConsensus('a', 3, 0);
  const b = startConsensus('b', 5, 0);
  assert.throws(() => receiveConsensusWire(a, encodeConsensus(b), 0), InvalidConfigError);
  const good = encodeConsensus(stepConsensus(receiveConsensus(startConsensus('x', 1, 0), new Map(), 0), 0));
  assert.deepEqual(decodeConsensus(JSON.parse(JSON.stringify(good))).size, 1);
  const bad: unknown[] = [
    null, [], 'x', { v: 2, n: 1, rows: [] }, { v: 1, n: 0, rows: [] }, { v: 1, n: 1, rows: {} }, { v: 1, n: 1, rows: [], x: 1 },
    { v: 1, n: 1, rows: [['b'], ['a']] }, { v: 1, n: 1, rows: [['a'], ['a']] }, { v: 1, n: 1, rows: [['a', [0, 'a']]] },
    { v: 1, n: 1, rows: [['a', [1, 'a'], [2, 'a'], ['a']]] }, { v: 1, n: 1, rows: [['a', [1, 'a'], [1, 'a'], []]] },
    { v: 1, n: 1, rows: [['a', [1, 'a'], [1, 'a'], ['b', 'a']]] }, { v: 1, n: 1, rows: [['a', [1, 'a'], [1, 'a']]] },
    { v: 1, n: 1, rows: [['a b']] }, { v: 1, n: 1, rows: [['a', [1.5, 'a']]] },
  ];
  for (const w of bad) assert.throws(() => decodeConsensus(w), RingInvalidError, JSON.stringify(w));
  assert.throws(() => startConsensus('a', 0, 0), InvalidConfigError);
});
