import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCidr, cidrSize } from '../../src/core/ip/cidr.js';
import { parseIp } from '../../src/core/ip/addr.js';
import { BadRequestError, ConflictError, InvalidConfigError, NotFoundError, NotOwnerError, PeerRetiredError } from '../../src/core/errors.js';
import {
  adoptOrphans, blockSizeFromPrefix, choosePeerToAskForSpace, claimInitial, disownedAddresses, freeFor, grant, heartbeat, join, merge, orphanedRanges, owner,
  ownedRanges, ownedSize, ownerDetail, ownershipChanges, parseIpallocInit, pickDonation, reclaimCandidates, reclaimExpired, reclaimable, removePeer, reportFree,
  resetPeer, seedRing, shareOffsets, voteExpired,
} from '../../src/core/ring/index.js';
import { a, assertRoundTrip, assertSound, canon, layout, lit, prng } from './ring-kit.js';

const R24 = parseCidr('10.0.0.0/24');

// ---- seed split ----

test('seed: the same ring on every peer, whatever the order of the list', () => {
  const x = seedRing(R24, ['c', 'a', 'b']);
  const y = seedRing(R24, ['b', 'c', 'a']);
  assert.equal(canon(x), canon(y));
  assert.equal(x.genesis.id, 'seed:a,b,c');
  assert.equal(x.genesis.founders, 3);
  assertSound(x);
  // 256/3 rounded down to multiples of 4 (the largest power of two ≤ 256/48)
  assert.deepEqual(layout(x), ['0-83:a', '84-167:b', '168-255:c']);
});

test('seed: shares are aligned and within 1/16 of each other on large ranges (IPv4 /12, IPv6 /64)', () => {
  for (const cidr of ['10.32.0.0/12', 'fd00:1::/64']) {
    const range = parseCidr(cidr);
    for (const k of [1, 2, 3, 5, 7, 16, 100]) {
      const ids = Array.from({ length: k }, (_, i) => `peer-${String(i).padStart(3, '0')}`);
      const ring = seedRing(range, ids);
      assertSound(ring, `${cidr} k=${k}`);
      const sizes = ids.map((id) => ownedSize(ring, id));
      const ideal = cidrSize(range) / BigInt(k);
      for (const s of sizes) assert.ok(s * 16n >= ideal * 15n && s * 16n <= ideal * 17n + 16n, `${cidr} k=${k}: share ${s} vs ${ideal}`);
    }
  }
});

test('seed: more founders than addresses leaves some without space, still covered once', () => {
  const ring = seedRing(parseCidr('10.0.0.0/30'), ['a', 'b', 'c', 'd', 'e', 'f']);
  assertSound(ring);
  assert.equal([...ring.peers.keys()].length, 6);
  assert.deepEqual(shareOffsets(4n, 6), [0n, 0n, 1n, 2n, 2n, 3n]);
});

test('seed: invalid lists are configuration errors', () => {
  assert.throws(() => seedRing(R24, []), InvalidConfigError);
  assert.throws(() => seedRing(R24, ['a', 'a']), InvalidConfigError);
  assert.throws(() => seedRing(R24, ['has space']), InvalidConfigError);
  assert.throws(() => seedRing(R24, ['']), InvalidConfigError);
});

test('parseIpallocInit and claimInitial', () => {
  assert.deepEqual(parseIpallocInit(undefined, 2), { mode: 'consensus', size: 3 });
  assert.deepEqual(parseIpallocInit('consensus', 0), { mode: 'consensus', size: 1 });
  assert.deepEqual(parseIpallocInit('consensus=5'), { mode: 'consensus', size: 5 });
  assert.deepEqual(parseIpallocInit('seed=b,a'), { mode: 'seed', seeds: ['a', 'b'] });
  assert.deepEqual(parseIpallocInit('observer'), { mode: 'observer' });
  for (const bad of ['consensus=0', 'consensus=-1', 'consensus=x', 'seed=', 'seed=a,,b', 'seed=a,a', 'paxos', 'observer=1']) {
    assert.throws(() => parseIpallocInit(bad), InvalidConfigError, bad);
  }
  const seeded = claimInitial(R24, parseIpallocInit('seed=a,b'), 'z', 0);
  assert.equal(seeded.kind, 'ring');
  if (seeded.kind === 'ring') {
    assert.equal(ownedSize(seeded.ring, 'z'), 0n, 'a non-seed joins without space');
    assert.ok(seeded.ring.peers.has('z'));
  }
  assert.equal(claimInitial(R24, { mode: 'observer' }, 'z', 0).kind, 'observer');
  assert.equal(claimInitial(R24, { mode: 'consensus', size: 3 }, 'z', 0).kind, 'consensus');
});

// ---- grant ----

test('grant: splits tokens at both ends, rewrites inside, only by the owner', () => {
  const ring = lit([[0, 'a', 0], [128, 'b', 0]], { a: 0, b: 0 });
  const g = grant(ring, 'a', 'c', a(64), a(95));
  assertSound(g);
  assert.deepEqual(layout(g), ['0-63:a', '64-95:c', '96-127:a', '128-255:b']);
  assert.equal(owner(g, a(64)), 'c');
  assert.equal(g.peers.get('c')?.heartbeat, 0, 'the recipient gets a record');
  // every write of a token (split or rewrite) bumps its version
  assert.deepEqual(g.entries.map((e) => [Number(e.start - a(0)), e.owner, e.version]), [[0, 'a', 1], [64, 'c', 3], [96, 'a', 2], [128, 'b', 0]]);
  assert.throws(() => grant(ring, 'a', 'c', a(100), a(130)), NotOwnerError, 'crosses into b');
  assert.throws(() => grant(ring, 'b', 'c', a(0), a(0)), NotOwnerError);
  assert.throws(() => grant(ring, 'a', 'a', a(0), a(3)), BadRequestError);
  assert.throws(() => grant(ring, 'a', 'c', a(5), a(4)), BadRequestError);
  assert.throws(() => grant(ring, 'a', 'c', a(0), a(256)), BadRequestError);
  assert.throws(() => grant(ring, 'x', 'c', a(0), a(3)), NotFoundError);
  // granting a whole token or the end of the range
  const whole = grant(ring, 'b', 'a', a(128), a(255));
  assert.deepEqual(layout(whole), ['0-255:a']);
  assert.equal(whole.entries.length, 2, 'tokens are never deleted');
});

test('grant: a retired peer can neither grant nor receive', () => {
  const ring = lit([[0, 'a', 0], [128, 'b', 0]], { a: 0, b: 0, c: [0, 'a'] });
  assert.throws(() => grant(ring, 'c', 'a', a(0), a(1)), PeerRetiredError);
  assert.throws(() => grant(ring, 'a', 'c', a(0), a(1)), PeerRetiredError);
});

test('grant: the heir of a retired peer may grant the inherited space before adopting it', () => {
  const ring = lit([[0, 'a', 0], [128, 'd', 0]], { a: 0, b: 0, d: [0, 'a'] });
  const g = grant(ring, 'a', 'b', a(192), a(255));
  assert.deepEqual(layout(g), ['0-191:a', '192-255:b']);
});

// ---- lease, votes, reclaim ----

test('heartbeat renews the lease and adopts inherited tokens', () => {
  const ring = lit([[0, 'a', 0], [128, 'd', 3]], { a: 1, d: [5, 'a', 'reclaim'] });
  const h = heartbeat(ring, 'a');
  assert.equal(h.peers.get('a')!.heartbeat, 2);
  assert.deepEqual(h.entries.map((e) => [e.owner, e.version]), [['a', 0], ['a', 4]]);
  assert.throws(() => heartbeat(ring, 'd'), PeerRetiredError);
  assert.throws(() => heartbeat(ring, 'nobody'), NotFoundError);
  assert.equal(join(ring, 'a'), ring);
  assert.throws(() => join(ring, 'd'), PeerRetiredError);
});

// 256 addresses: a 100, b 60, c 50, d 46
const quad = (): ReturnType<typeof lit> => lit([[0, 'a', 0], [100, 'b', 0], [160, 'c', 0], [210, 'd', 0]], { a: 4, b: 4, c: 4, d: 4 });

test('reclaim: needs voters owning more than half of the range', () => {
  let r = voteExpired(quad(), 'b', ['d']);
  r = voteExpired(r, 'c', ['d']);
  assert.equal(reclaimCandidates(r)[0]!.weight, 110n);
  assert.deepEqual(reclaimable(r), [], '110 of 256 is not a quorum');
  assert.equal(reclaimExpired(r, 'b').ring, r);
  r = voteExpired(r, 'a', ['d']);
  const [c] = reclaimable(r);
  assert.equal(c!.weight, 210n);
  assert.deepEqual(c!.voters, ['a', 'b', 'c']);
  assert.equal(c!.heir, 'c', 'the voter with the least space inherits');
  const { ring: done, reclaimed } = reclaimExpired(r, 'a');
  assert.equal(reclaimed.length, 1);
  assert.deepEqual(layout(done), ['0-99:a', '100-159:b', '160-255:c']);
  assert.deepEqual(done.peers.get('d')!.retired, { heir: 'c', atHeartbeat: 4, by: 'a', reason: 'reclaim' });
  assert.equal(done.votes.size, 0, 'votes on a retired peer are dropped');
  assert.equal(reclaimExpired(done, 'b').ring, done, 'idempotent');
  assertRoundTrip(done);
});

test('reclaim: a heartbeat of the suspect voids the votes (it made a newer update)', () => {
  let r = voteExpired(voteExpired(quad(), 'a', ['d']), 'b', ['d']);
  r = heartbeat(r, 'd');
  assert.equal(r.votes.size, 0);
  assert.deepEqual(reclaimable(r), []);
});

test('reclaim: only a voter may execute it, only counted (fresh) voters make the quorum', () => {
  const r = voteExpired(voteExpired(quad(), 'a', ['d']), 'b', ['d']);
  assert.equal(reclaimExpired(r, 'c').ring, r, 'c did not observe the expiry');
  // b's vote was cast before b went to the other side of a partition: the executor no longer counts it.
  assert.deepEqual(reclaimable(r, { fresh: (v) => v !== 'b' }), []);
  assert.equal(reclaimExpired(r, 'a', { fresh: (v) => v !== 'b' }).ring, r);
});

test('reclaim: racing executors converge on one owner', () => {
  const base = voteExpired(voteExpired(voteExpired(quad(), 'a', ['d']), 'b', ['d']), 'c', ['d']);
  const x = reclaimExpired(base, 'a').ring;
  const y = reclaimExpired(voteExpired(quad(), 'a', ['d']), 'a').ring; // no quorum there: unchanged
  const z = reclaimExpired(base, 'b').ring;
  const m = merge(merge(x, y), z);
  assertSound(m);
  assert.equal(m.peers.get('d')!.retired!.heir, 'c');
  assert.equal(m.peers.get('d')!.retired!.by, 'a', 'the lowest executor is recorded');
  assert.equal(canon(m), canon(merge(z, merge(y, x))));
});

test('reclaim: a suspected voter is not chosen as heir', () => {
  // c has least space but is itself suspected by a.
  let r = voteExpired(quad(), 'a', ['d', 'c']);
  r = voteExpired(r, 'b', ['d']);
  r = voteExpired(r, 'c', ['d']);
  assert.equal(reclaimable(r).find((x) => x.suspect === 'd')!.heir, 'b');
});

test('rmpeer: immediate, idempotent, racing rmpeers converge to the lowest id', () => {
  const r = quad();
  const x = removePeer(r, 'c', 'd');
  assert.deepEqual(layout(x), ['0-99:a', '100-159:b', '160-255:c']);
  assert.equal(removePeer(x, 'b', 'd'), x, 'a second rmpeer after the first one is seen is a no-op');
  const y = removePeer(r, 'b', 'd');
  const m = merge(x, y);
  assertSound(m);
  assert.deepEqual(layout(m), ['0-99:a', '100-159:b', '160-209:c', '210-255:b']);
  assert.equal(m.peers.get('d')!.retired!.heir, 'b');
  assert.throws(() => removePeer(r, 'd', 'd'), BadRequestError);
  assert.throws(() => removePeer(r, 'a', 'x'), NotFoundError);
  assert.throws(() => removePeer(x, 'd', 'a'), PeerRetiredError);
});

test('reset: hands everything to a live heir, default the smallest', () => {
  const r = quad();
  const x = resetPeer(r, 'a');
  assert.deepEqual(layout(x), ['0-99:d', '100-159:b', '160-209:c', '210-255:d']);
  assert.equal(x.peers.get('a')!.retired!.reason, 'reset');
  assert.deepEqual(layout(resetPeer(r, 'a', 'b')), ['0-159:b', '160-209:c', '210-255:d']);
  assert.deepEqual(layout(resetPeer(r, 'a', undefined, ['b', 'c'])), ['0-99:c', '100-159:b', '160-209:c', '210-255:d']);
  assert.throws(() => resetPeer(r, 'a', 'a'), BadRequestError);
  assert.throws(() => resetPeer(lit([[0, 'a', 0]], { a: 0 }), 'a'), ConflictError);
  assert.throws(() => resetPeer(x, 'b', 'a'), PeerRetiredError);
});

test('orphans: a heir cycle has one owner and is adopted by a live peer', () => {
  // rmpeer a (by b) on one side, rmpeer b (by a) on the other.
  const r = lit([[0, 'a', 0], [128, 'b', 0]], { a: 0, b: 0, c: 0 });
  const m = merge(removePeer(r, 'b', 'a'), removePeer(r, 'a', 'b'));
  assertSound(m);
  assert.deepEqual(orphanedRanges(m), [{ first: a(0), last: a(255) }]);
  assert.deepEqual(ownerDetail(m, a(5)), { owner: 'a', orphaned: true });
  const adopted = adoptOrphans(m, 'c');
  assert.deepEqual(layout(adopted), ['0-255:c']);
  assert.deepEqual(orphanedRanges(adopted), []);
  assert.equal(adoptOrphans(adopted, 'c'), adopted);
});

// ---- space ----

test('reportFree / freeFor / choosePeerToAskForSpace', () => {
  let r = quad();
  r = reportFree(r, 'a', () => 10n);
  r = reportFree(r, 'b', () => 0n);
  r = reportFree(r, 'c', () => 30n);
  assert.equal(reportFree(r, 'c', () => 30n), r, 'unchanged counts write nothing');
  assert.equal(freeFor(r, 'a'), 10n);
  assert.equal(freeFor(r, 'd'), 46n, 'never reported: all free');
  const rand = prng(3);
  const counts = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const p = choosePeerToAskForSpace(r, 'd', rand)!;
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  assert.equal(counts.get('b'), undefined, 'b has nothing free');
  assert.ok((counts.get('c') ?? 0) > 2 * (counts.get('a') ?? 0), 'weighted by free space');
  assert.equal(choosePeerToAskForSpace(r, 'd', rand, { minFree: 20n }), 'c');
  assert.equal(choosePeerToAskForSpace(r, 'd', rand, { minFree: 20n, exclude: new Set(['c']) }), undefined);
  assert.equal(choosePeerToAskForSpace(r, 'd', () => 0.9999999999), 'c');
});

test('pickDonation: a fixed-size aligned block from the top, skipping used ones, partial cells last', () => {
  const r = lit([[0, 'a', 0], [100, 'b', 0]], { a: 0, b: 0 });
  // a owns 0-99: whole 16-blocks 0..95, partial 96-99.
  assert.deepEqual(pickDonation(r, 'a', 16n, () => true), { first: a(80), last: a(95) });
  assert.deepEqual(pickDonation(r, 'a', 16n, (f) => f < a(48)), { first: a(32), last: a(47) });
  assert.deepEqual(pickDonation(r, 'a', 16n, (f, l) => l - f === 3n), { first: a(96), last: a(99) });
  assert.equal(pickDonation(r, 'a', 16n, () => false), undefined);
  assert.equal(pickDonation(r, 'a', 16n, () => false, 3), undefined);
  // b owns 100-255: the first whole cell is 112-127, the head 100-111 is partial.
  assert.deepEqual(pickDonation(r, 'b', 16n, (f) => f < a(112)), { first: a(100), last: a(111) });
  assert.equal(blockSizeFromPrefix(4, 26), 64n);
  assert.equal(blockSizeFromPrefix(6, 122), 64n);
  assert.throws(() => blockSizeFromPrefix(4, 33), InvalidConfigError);
  assert.throws(() => pickDonation(r, 'a', 0n, () => true), InvalidConfigError);
});

test('pickDonation on a huge IPv6 span stays cheap', () => {
  const ring = seedRing(parseCidr('fd00::/64'), ['a', 'b']);
  const blk = blockSizeFromPrefix(6, 122);
  const d = pickDonation(ring, 'a', blk, () => true)!;
  assert.equal(d.last - d.first + 1n, 64n);
  assert.equal(owner(grant(ring, 'a', 'c', d.first, d.last), d.first), 'c');
});

// ---- what changed for me ----

test('ownershipChanges and disownedAddresses tell the allocator what it lost', () => {
  const before = lit([[0, 'a', 0], [128, 'd', 0]], { a: 3, d: 3 });
  const after = removePeer(before, 'a', 'd');
  assert.deepEqual(ownershipChanges(before, after, 'd'), { gained: [], lost: [{ first: a(128), last: a(255) }], retired: true, genesisReplaced: false });
  assert.deepEqual(ownershipChanges(before, after, 'a'), { gained: [{ first: a(128), last: a(255) }], lost: [], retired: false, genesisReplaced: false });
  assert.deepEqual(disownedAddresses(after, 'd', [a(5), a(130), parseIp('192.168.0.1').value]), [a(5), a(130)]);
  assert.deepEqual(disownedAddresses(after, 'a', [a(5), a(130)]), []);
  const foreign = lit([[0, 'x', 0]], { x: 0 }, [], ['seed:x,y', 2]);
  assert.equal(ownershipChanges(before, merge(before, foreign), 'a').genesisReplaced, true);
  assert.deepEqual(ownedRanges(after, 'd'), []);
});
