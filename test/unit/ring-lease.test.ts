import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidConfigError } from '../../src/core/errors.js';
import { LeaseTracker, type Ring, heartbeat, merge, reclaimExpired, reclaimable, voteExpired } from '../../src/core/ring/index.js';
import { layout, lit } from './ring-kit.js';

const L = 1000; // lease timeout in these tests

// a 60, b 60, c 60, d 40, e 36 → {a,b,c} own 180 of 256, {d,e} 76.
const five = (): Ring => lit([[0, 'a', 0], [60, 'b', 0], [120, 'c', 0], [180, 'd', 0], [220, 'e', 0]], { a: 1, b: 1, c: 1, d: 1, e: 1 });

function beat(ring: Ring, ...ids: string[]): Ring {
  for (const id of ids) ring = heartbeat(ring, id);
  return ring;
}

test('lease: a peer expires after a full lease without a heartbeat, by the observer clock', () => {
  const t = new LeaseTracker({ leaseTimeoutMs: L, maxGapMs: 10_000 }, 0);
  let r = five();
  t.observe(r, 0);
  assert.deepEqual(t.expired(r, 'a', 999), []);
  r = beat(r, 'b', 'c', 'd', 'e');
  t.observe(r, 500);
  assert.deepEqual(t.expired(r, 'a', 1000), [], 'advanced at 500');
  assert.deepEqual(t.expired(r, 'a', 1500), ['b', 'c', 'd', 'e']);
  r = beat(r, 'b');
  assert.deepEqual(t.expired(r, 'a', 1600), ['c', 'd', 'e'], 'a heartbeat renews at once');
  assert.equal(t.silentFor('c', 1600), 1100);
});

test('lease: a jump of our own clock (suspend, stall, clock stepped back) restarts judgement instead of expiring everyone', () => {
  const t = new LeaseTracker({ leaseTimeoutMs: L }, 0); // maxGap defaults to 250
  let r = five();
  for (let now = 0; now <= 600; now += 100) { r = beat(r, 'a', 'b', 'c', 'd', 'e'); t.observe(r, now); }
  assert.ok(t.isFresh('b', 'a', 600));
  // We were suspended for an hour.
  const now = 600 + 3_600_000;
  assert.deepEqual(t.expired(r, 'a', now), [], 'nobody is expired right after the gap');
  assert.equal(t.isFresh('b', 'a', now), false, 'nobody is confirmed either');
  assert.equal(t.reachability(r, 'a', now).atRisk, true, 'we own too little alone to be sure of our space');
  assert.deepEqual(t.expired(r, 'a', now + 200), []);
  r = beat(r, 'b', 'c');
  assert.equal(t.reachability(r, 'a', now + 200).atRisk, false, 'a, b, c confirmed again: 180 of 256');
  assert.deepEqual(t.expired(r, 'a', now + 200 + 150 * 7), [], 'ticks stay below maxGap');
  // Time going backwards is treated the same way.
  const t2 = new LeaseTracker({ leaseTimeoutMs: L }, 5000);
  t2.observe(r, 5000);
  t2.observe(r, 5100);
  assert.deepEqual(t2.expired(r, 'a', 100), []);
});

test('lease: configuration is validated', () => {
  assert.throws(() => new LeaseTracker({ leaseTimeoutMs: 0 }, 0), InvalidConfigError);
  assert.throws(() => new LeaseTracker({ leaseTimeoutMs: Number.NaN }, 0), InvalidConfigError);
  assert.throws(() => new LeaseTracker({ leaseTimeoutMs: 100, fenceMs: 100 }, 0), InvalidConfigError);
  assert.throws(() => new LeaseTracker({ leaseTimeoutMs: 100, freshMs: -1 }, 0), InvalidConfigError);
});

/**
 * A partition {a,b,c} | {d,e}, simulated tick by tick: each side merges only
 * its own rings, heartbeats, votes with its trackers, and reclaims.
 */
test('partition: only the side owning more than half reclaims; the other side fences itself first and never reclaims', () => {
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const sides = [['a', 'b', 'c'], ['d', 'e']];
  let start = five();
  // Just before the partition, a cast a (wrong) vote against b after a slow spell; everyone saw it.
  start = voteExpired(start, 'a', ['b']);
  const rings = new Map<string, Ring>(ids.map((id) => [id, start]));
  const trackers = new Map(ids.map((id) => [id, new LeaseTracker({ leaseTimeoutMs: L }, 0)]));
  const fencedAt = new Map<string, number>();
  for (let now = 0; now <= 4 * L; now += 50) {
    for (const side of sides) {
      let shared = rings.get(side[0]!)!;
      for (const id of side) shared = merge(shared, rings.get(id)!);
      for (const id of side) {
        let r = shared;
        if (!r.peers.get(id)!.retired) {
          r = heartbeat(r, id);
          const t = trackers.get(id)!;
          r = voteExpired(r, id, t.expired(r, id, now));
          r = reclaimExpired(r, id, { fresh: t.freshness(id, now) }).ring;
          // (everyone is at risk for the first tick: nobody is confirmed yet at start-up)
          if (now > 100 && t.reachability(r, id, now).atRisk && !fencedAt.has(id)) fencedAt.set(id, now);
        }
        rings.set(id, r);
        shared = merge(shared, r);
      }
    }
  }
  const major = rings.get('a')!;
  assert.deepEqual(major.peers.get('d')!.retired?.reason, 'reclaim');
  assert.deepEqual(major.peers.get('e')!.retired?.reason, 'reclaim');
  assert.equal(major.peers.get('b')!.retired, undefined, "a's stale vote never mattered on the majority side");
  const minor = rings.get('d')!;
  for (const id of ['a', 'b', 'c']) assert.equal(minor.peers.get(id)!.retired, undefined, `minority must not reclaim ${id}`);
  assert.deepEqual(reclaimable(minor, { fresh: trackers.get('d')!.freshness('d', 4 * L) }), []);
  assert.deepEqual(reclaimable(minor).map((c) => c.suspect).includes('b'), true, "without the freshness filter, a's old vote would have tipped the minority's quorum on b");
  // The minority fenced itself well before the majority could reclaim it.
  assert.ok(fencedAt.get('d')! <= L / 2 + 100 && fencedAt.get('e')! <= L / 2 + 100, `fenced at ${fencedAt.get('d')}`);
  assert.equal(fencedAt.has('a'), false);
  // Heal: one ring; d and e learn they were retired; every address has one owner.
  const healed = ids.map((id) => rings.get(id)!).reduce((x, y) => merge(x, y));
  assert.deepEqual(layout(healed).map((s) => s.split(':')[1]).includes('d'), false);
  assert.ok(healed.peers.get('d')!.heartbeat > healed.peers.get('d')!.retired!.atHeartbeat, 'the record shows d was alive in another partition');
});
