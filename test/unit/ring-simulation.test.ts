/**
 * A cluster of up to 100 peers exchanging ring states over a seeded, lossy,
 * reordering, partitionable in-memory network, with random operations:
 * allocations that run out and ask for blocks, grants, heartbeats, crashes,
 * restarts with old state, processes resumed after a pause (a jump of their
 * clock), permanent losses, automatic reclaims, rmpeer,
 * reset, new peers joining, rejoining under a new id after being retired.
 *
 * After every step:
 *  - every live peer's ring is sound (no overlap, the range covered exactly once);
 *  - every peer's allocations lie in space it owns in its own view;
 *  - in each partition component whose peers hold identical rings, every
 *    address has one owner and no address is allocated twice;
 *  - periodically: merging any peers' rings is sound and obeys the merge laws.
 * After healing and a quiet period, all peers converge to identical rings,
 * all space belongs to live peers, and no address is allocated twice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Cidr, parseCidr } from '../../src/core/ip/cidr.js';
import {
  LeaseTracker, type PeerId, type Ring, choosePeerToAskForSpace, decodeRing, disownedAddresses, encodeRing, grant, heartbeat, join, merge, mergeAll, ownedRanges,
  ownerDetail, pickDonation, reclaimExpired, removePeer, reportFree, resetPeer, ringViolations, seedRing, voteExpired,
} from '../../src/core/ring/index.js';
import { assertSound, canon, pick, prng } from './ring-kit.js';

interface Host {
  readonly n: number;
  gen: number;
  id: PeerId;
  alive: boolean;
  /** Permanently gone: never restarts. */
  gone: boolean;
  ring: Ring | undefined;
  tracker: LeaseTracker;
  allocs: Set<bigint>;
  nextBeat: number;
  nextGossip: number;
  diedAt: number;
  asked: number;
  /** The ring the allocations were last checked against (reset when one is added). */
  checkedRing?: Ring;
}

type Payload = { kind: 'ring'; ring: Ring | unknown } | { kind: 'ask'; from: number; id: PeerId };
interface Msg { at: number; to: number; from: number; p: Payload }

interface SimOpts {
  seed: number;
  hosts: number;
  initial: number;
  range: Cidr;
  seeds: number;
  block: bigint;
  ticks: number;
  loss: number;
  allocRate: number;
  chaos: number;
  /** ms between two gossip rounds of one peer (each to 2 random peers) */
  gossipEvery: number;
}

const TICK = 100;
const BEAT = 1000;
const LEASE = 4000;

const canonCache = new WeakMap<Ring, string>();
function canonOf(r: Ring): string {
  let c = canonCache.get(r);
  if (c === undefined) { c = canon(r); canonCache.set(r, c); }
  return c;
}

const prints = new WeakMap<Ring, string>();
/** A cheap summary that differs for almost all different rings (equal rings always match). */
function fingerprint(r: Ring): string {
  let f = prints.get(r);
  if (f === undefined) {
    let hb = 0;
    let ver = 0;
    let ret = 0;
    for (const p of r.peers.values()) { hb += p.heartbeat; if (p.retired) ret++; }
    for (const e of r.entries) ver += e.version;
    f = `${r.entries.length}/${r.peers.size}/${r.votes.size}/${hb}/${ver}/${ret}`;
    prints.set(r, f);
  }
  return f;
}

function simulate(o: SimOpts): { stats: Record<string, number> } {
  const cpu0 = process.cpuUsage();
  const rand = prng(o.seed);
  const stats: Record<string, number> = { merges: 0, grants: 0, asks: 0, reclaims: 0, rmpeers: 0, resets: 0, kills: 0, restarts: 0, rejoins: 0, disowned: 0, partitions: 0, transientDuplicates: 0, allocs: 0 };
  const name = (n: number, gen: number): PeerId => `h${String(n).padStart(3, '0')}${gen > 0 ? `.${gen}` : ''}`;
  const seedIds = Array.from({ length: o.seeds }, (_, i) => name(i, 0));
  const genesis = seedRing(o.range, seedIds);
  let now = 0;
  const hosts: Host[] = [];
  const addHost = (alive: boolean): Host => {
    const n = hosts.length;
    const h: Host = { n, gen: 0, id: name(n, 0), alive, gone: false, ring: n < o.seeds ? join(genesis, name(n, 0)) : undefined, tracker: new LeaseTracker({ leaseTimeoutMs: LEASE }, now), allocs: new Set(), nextBeat: now + Math.floor(rand() * BEAT), nextGossip: now, diedAt: 0, asked: -1e9 };
    hosts.push(h);
    return h;
  };
  for (let i = 0; i < o.initial; i++) addHost(true);
  let component = (_: number): number => 0;
  let partitionUntil = -1;
  let queue: Msg[] = [];

  const send = (from: Host, to: number, p: Payload): void => {
    if (rand() < o.loss) return;
    let payload = p;
    // A share of the ring messages goes through the wire form, as over a real connection.
    if (p.kind === 'ring' && rand() < 0.05) payload = { kind: 'ring', ring: JSON.parse(JSON.stringify(encodeRing(p.ring as Ring))) as unknown };
    queue.push({ at: now + TICK * (1 + Math.floor(rand() * 4)), to, from: from.n, p: payload });
  };
  const connected = (a: number, b: number): boolean => component(a) === component(b);

  const ownsAddr = (h: Host, addr: bigint): boolean => {
    const r = ownerDetail(h.ring!, addr);
    return r.owner === h.id && !r.orphaned;
  };

  /** After any change of h.ring: rejoin if retired, drop allocations no longer owned. */
  const settle = (h: Host): void => {
    const ring = h.ring;
    if (!ring) return;
    if (!ring.peers.has(h.id)) { h.ring = join(ring, h.id); return; }
    if (ring.peers.get(h.id)!.retired) {
      stats.rejoins!++;
      stats.disowned! += h.allocs.size;
      h.allocs.clear();
      h.gen++;
      h.id = name(h.n, h.gen);
      h.ring = join(ring, h.id);
      return;
    }
    const lost = disownedAddresses(ring, h.id, h.allocs);
    for (const x of lost) h.allocs.delete(x);
    stats.disowned! += lost.length;
  };

  const receive = (h: Host, m: Msg): void => {
    if (m.p.kind === 'ring') {
      const incoming = m.p.ring as Ring;
      const r = 'entries' in incoming ? incoming : decodeRing(incoming);
      h.ring = h.ring ? merge(h.ring, r) : r;
      stats.merges!++;
      settle(h);
      return;
    }
    // A request for space: donate one unused block if there is more than one free.
    const ring = h.ring;
    if (!ring || ring.peers.get(h.id)?.retired) return;
    const mine = ownedRanges(ring, h.id);
    let free = 0n;
    for (const r of mine) free += r.last - r.first + 1n;
    free -= BigInt(h.allocs.size);
    if (free <= o.block) return;
    const d = pickDonation(ring, h.id, o.block, (f, l) => { for (const x of h.allocs) if (x >= f && x <= l) return false; return true; });
    if (!d || !ring.peers.has(m.p.id) || ring.peers.get(m.p.id)!.retired) return;
    h.ring = grant(ring, h.id, m.p.id, d.first, d.last);
    stats.grants!++;
    send(h, m.p.from, { kind: 'ring', ring: h.ring });
  };

  const allocate = (h: Host): void => {
    const ring = h.ring!;
    if (h.tracker.reachability(ring, h.id, now).atRisk) return; // fenced: maybe on the minority side
    const mine = ownedRanges(ring, h.id);
    for (let tries = 0; tries < 6 && mine.length > 0; tries++) {
      const r = pick(rand, mine);
      const span = r.last - r.first + 1n;
      const x = r.first + BigInt(Math.floor(rand() * Number(span > 2n ** 40n ? 2n ** 40n : span)));
      if (!h.allocs.has(x)) { h.allocs.add(x); h.checkedRing = undefined; stats.allocs!++; return; }
    }
    if (now - h.asked < 5 * TICK) return;
    h.asked = now;
    const to = choosePeerToAskForSpace(ring, h.id, rand, { minFree: o.block + 1n });
    const target = to === undefined ? undefined : hosts.find((x) => x.id === to);
    if (target) { stats.asks!++; send(h, target.n, { kind: 'ask', from: h.n, id: h.id }); }
  };

  const chaos = (): void => {
    const r = rand();
    const alive = hosts.filter((h) => h.alive);
    if (r < 0.25 && alive.length > 3) {
      const h = pick(rand, alive);
      h.alive = false; h.diedAt = now; stats.kills!++;
      if (rand() < 0.4) h.gone = true; // the machine is gone for good, its containers with it
      if (h.gone) h.allocs.clear();
    } else if (r < 0.5) {
      const dead = hosts.filter((h) => !h.alive && !h.gone);
      if (dead.length > 0) {
        const h = pick(rand, dead);
        // kill -9 and restart (same id, ring and allocations from disk, judgement starts afresh), or a
        // SIGSTOP/suspend that ends: the same process resumes and its tracker sees the jump of its clock.
        h.alive = true; stats.restarts!++;
        if (rand() < 0.5) h.tracker = new LeaseTracker({ leaseTimeoutMs: LEASE }, now);
      }
    } else if (r < 0.62 && hosts.length < o.hosts) {
      addHost(true);
    } else if (r < 0.72 && partitionUntil < now) {
      const k = 2 + Math.floor(rand() * 2);
      const sides = hosts.map(() => Math.floor(rand() * k));
      // mostly one big side, sometimes an even split
      if (rand() < 0.7) for (let i = 0; i < sides.length; i++) if (rand() < 0.7) sides[i] = 0;
      component = (n) => sides[n] ?? 0;
      partitionUntil = now + LEASE * (0.5 + rand() * 2.5);
      stats.partitions!++;
    } else if (r < 0.82) {
      // an operator runs rmpeer for a host that has been down for a while
      const dead = hosts.filter((h) => !h.alive && now - h.diedAt > 2 * LEASE);
      const admin = alive.filter((h) => h.ring && !h.ring.peers.get(h.id)?.retired);
      if (dead.length > 0 && admin.length > 0) {
        const victim = pick(rand, dead);
        const by = pick(rand, admin);
        if (by.ring!.peers.has(victim.id) && !by.ring!.peers.get(victim.id)!.retired) {
          by.ring = removePeer(by.ring!, by.id, victim.id);
          victim.gone = true; victim.allocs.clear();
          stats.rmpeers!++;
        }
      }
    } else if (r < 0.88 && alive.length > 4) {
      // a host leaves on purpose: reset, tell a few peers, go away
      const h = pick(rand, alive);
      if (h.ring && !h.ring.peers.get(h.id)?.retired) {
        const heirs = alive.filter((x) => x !== h && connected(x.n, h.n)).map((x) => x.id);
        try {
          h.ring = resetPeer(h.ring, h.id, undefined, heirs);
          stats.resets!++;
          for (let k = 0; k < 3; k++) send(h, pick(rand, alive).n, { kind: 'ring', ring: h.ring });
          h.alive = false; h.gone = true; h.allocs.clear(); h.diedAt = now;
        } catch { /* no heir known: stay */ }
      }
    }
  };

  const step = (opts: { ops: boolean; beats: boolean }): void => {
    now += TICK;
    if (partitionUntil >= 0 && now >= partitionUntil) { component = () => 0; partitionUntil = -1; }
    const due = queue.filter((m) => m.at <= now);
    queue = queue.filter((m) => m.at > now);
    for (let i = due.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [due[i], due[j]] = [due[j]!, due[i]!]; }
    for (const m of due) {
      const h = hosts[m.to]!;
      if (!h.alive || !connected(m.from, m.to)) continue;
      receive(h, m);
    }
    for (const h of hosts) {
      if (!h.alive || !h.ring) continue;
      if (opts.beats) {
        if (now >= h.nextBeat) {
          h.nextBeat = now + BEAT;
          h.ring = heartbeat(h.ring, h.id);
          const t = h.tracker;
          h.ring = voteExpired(h.ring, h.id, t.expired(h.ring, h.id, now));
          const rc = reclaimExpired(h.ring, h.id, { fresh: t.freshness(h.id, now) });
          stats.reclaims! += rc.reclaimed.length;
          h.ring = rc.ring;
          settle(h);
        } else {
          h.tracker.observe(h.ring, now);
        }
      }
      if (opts.ops && rand() < o.allocRate) allocate(h);
      if (opts.ops && h.allocs.size > 0 && rand() < o.allocRate / 3) h.allocs.delete(pick(rand, [...h.allocs]));
      if (opts.ops && rand() < 0.05) {
        const counts = (f: bigint, l: bigint): bigint => { let used = 0n; for (const x of h.allocs) if (x >= f && x <= l) used++; return l - f + 1n - used; };
        h.ring = reportFree(h.ring, h.id, counts);
      }
      if (now >= h.nextGossip) {
        h.nextGossip = now + o.gossipEvery;
        const peers = hosts.filter((x) => x !== h && x.alive);
        for (let k = 0; k < 2 && peers.length > 0; k++) send(h, pick(rand, peers).n, { kind: 'ring', ring: h.ring });
      }
    }
    // Fresh hosts with no ring ask someone for it (a ring message from any peer will do).
    for (const h of hosts) {
      if (h.alive && !h.ring) {
        const peers = hosts.filter((x) => x.alive && x.ring && connected(x.n, h.n));
        if (peers.length > 0 && rand() < 0.3) { const p = pick(rand, peers); send(p, h.n, { kind: 'ring', ring: p.ring! }); }
      }
    }
    if (opts.ops && rand() < o.chaos) chaos();
    checkInvariants();
  };

  let tickNo = 0;
  const checked = new WeakSet<Ring>(); // ring values are immutable: each one is checked once
  const checkInvariants = (): void => {
    tickNo++;
    const comps = new Map<number, Host[]>();
    for (const h of hosts) {
      if (!h.alive || !h.ring) continue;
      if (!checked.has(h.ring)) {
        const v = ringViolations(h.ring);
        assert.deepEqual(v, [], `seed ${o.seed} t=${now} ${h.id}: ${v.join('; ')}`);
        checked.add(h.ring);
      }
      if (h.checkedRing !== h.ring) {
        for (const x of h.allocs) assert.ok(ownsAddr(h, x), `seed ${o.seed} t=${now}: ${h.id} holds ${x} outside its space`);
        h.checkedRing = h.ring;
      }
      const c = component(h.n);
      const list = comps.get(c);
      if (list) list.push(h);
      else comps.set(c, [h]);
    }
    for (const members of comps.values()) {
      const r0 = members[0]!.ring!;
      const cheapSame = (r: Ring): boolean => r === r0 || fingerprint(r) === fingerprint(r0);
      const converged = members.every((h) => cheapSame(h.ring!)) && members.every((h) => h.ring === r0 || canonOf(h.ring!) === canonOf(r0));
      if (!converged) continue;
      const holder = new Map<bigint, PeerId>();
      for (const h of members) {
        for (const x of h.allocs) {
          assert.equal(holder.get(x), undefined, `seed ${o.seed} t=${now}: ${x} allocated by ${holder.get(x)} and ${h.id} in one converged component`);
          holder.set(x, h.id);
        }
      }
    }
    // Outside converged components (across a partition, or before a restarted peer has heard it was
    // reclaimed) an address can be held twice for a while; count it, the end state must have none.
    if (tickNo % 30 === 0) {
      const all = new Map<bigint, number>();
      for (const h of hosts) if (h.alive) for (const x of h.allocs) all.set(x, (all.get(x) ?? 0) + 1);
      for (const c of all.values()) if (c > 1) stats.transientDuplicates!++;
      const rings = hosts.filter((h) => h.alive && h.ring).map((h) => h.ring!);
      if (rings.length >= 3) {
        const [x, y, z] = [pick(rand, rings), pick(rand, rings), pick(rand, rings)];
        const xy = merge(x, y);
        assertSound(xy, `seed ${o.seed} t=${now} pairwise merge`);
        assert.equal(canonOf(xy), canonOf(merge(y, x)), 'commutative');
        assert.equal(canonOf(merge(xy, z)), canonOf(merge(x, merge(y, z))), 'associative');
        assertSound(mergeAll(rings)!, `seed ${o.seed} t=${now} merge of everything`);
      }
    }
  };

  for (let i = 0; i < o.ticks; i++) {
    // Besides random ones, two scripted partitions per run: a clear majority/minority split, then an even one.
    const first = Math.floor(o.ticks * 0.05);
    const second = Math.floor(o.ticks * 0.75);
    if (i === first || i === second) {
      const even = i === second;
      const sides = hosts.map(() => (rand() < (even ? 0.5 : 0.25) ? 1 : 0));
      component = (n) => sides[n] ?? 0;
      partitionUntil = now + LEASE * (even ? 1 : 1.8);
      stats.partitions!++;
    }
    step({ ops: true, beats: true });
  }

  // Heal, restart nothing, let leases run out and reclaims happen.
  component = () => 0;
  partitionUntil = -1;
  for (let i = 0; i < (2 * LEASE) / TICK; i++) step({ ops: false, beats: true });
  // Whatever could not be reclaimed automatically (too many lost at once for a quorum) an operator removes.
  const alive = hosts.filter((h) => h.alive && h.ring);
  const admin = alive[0]!;
  for (const h of hosts) {
    if (h.alive) continue;
    if (admin.ring!.peers.has(h.id) && !admin.ring!.peers.get(h.id)!.retired) { admin.ring = removePeer(admin.ring!, admin.id, h.id); stats.rmpeers!++; }
  }
  // One last heartbeat round so heirs adopt what they inherited, then quiet gossip until identical.
  for (const h of alive) { h.ring = heartbeat(h.ring!, h.id); settle(h); }
  let rounds = 0;
  while (new Set(alive.map((h) => canonOf(h.ring!))).size > 1) {
    assert.ok(rounds++ < 400, `seed ${o.seed}: no convergence after healing`);
    step({ ops: false, beats: false });
  }
  // Converged: one ring, sound, owned only by live peers, no address allocated twice.
  const final = alive[0]!.ring!;
  assertSound(final, `seed ${o.seed} final`);
  const liveIds = new Set(alive.map((h) => h.id));
  for (const s of final.peers.keys()) if (!liveIds.has(s)) assert.deepEqual(ownedRanges(final, s), [], `seed ${o.seed}: dead ${s} still owns space`);
  const seen = new Set<bigint>();
  for (const h of alive) for (const x of h.allocs) { assert.ok(!seen.has(x), `seed ${o.seed}: ${x} allocated twice at the end`); seen.add(x); assert.ok(ownsAddr(h, x)); }
  if (process.env.RING_SIM_DEBUG) console.log(JSON.stringify({ ...stats, entries: final.entries.length, peers: final.peers.size, now, cpuMs: Math.round(process.cpuUsage(cpu0).user / 1000) }));
  return { stats };
}

const seen: Record<string, number> = {};
function tally(stats: Record<string, number>): void {
  for (const [k, v] of Object.entries(stats)) seen[k] = (seen[k] ?? 0) + v;
}

test('simulation: 100 peers, IPv4, seeds, loss, partitions, crashes, reclaims', () => {
  const { stats } = simulate({ seed: 1, hosts: 100, initial: 95, range: parseCidr('10.32.0.0/16'), seeds: 60, block: 64n, ticks: 80, loss: 0.1, allocRate: 0.15, chaos: 0.6, gossipEvery: 6 * TICK });
  tally(stats);
  assert.ok(stats.reclaims! > 0 && stats.grants! > 0 && stats.partitions! > 0, JSON.stringify(stats));
});

for (const seed of [2, 3]) {
  test(`simulation: 24 peers on a small IPv4 range that runs out, heavy churn (seed ${seed})`, () => {
    const { stats } = simulate({ seed, hosts: 24, initial: 12, range: parseCidr('10.1.0.0/22'), seeds: 5, block: 16n, ticks: 360, loss: 0.2, allocRate: 0.9, chaos: 0.15, gossipEvery: 4 * TICK });
    tally(stats);
    assert.ok(stats.grants! > 0 && stats.asks! > 0, JSON.stringify(stats));
  });
}

test('simulation: 30 peers, IPv6, observers joining later', () => {
  const { stats } = simulate({ seed: 6, hosts: 30, initial: 20, range: parseCidr('fd00:77::/96'), seeds: 3, block: 64n, ticks: 240, loss: 0.15, allocRate: 0.5, chaos: 0.2, gossipEvery: 4 * TICK });
  tally(stats);
  assert.ok(stats.reclaims! + stats.rmpeers! > 0, JSON.stringify(stats));
});

test('simulation: the runs together exercised every kind of event', () => {
  for (const k of ['grants', 'asks', 'reclaims', 'rmpeers', 'resets', 'kills', 'restarts', 'rejoins', 'disowned', 'partitions']) {
    assert.ok((seen[k] ?? 0) > 0, `no ${k} in any run: ${JSON.stringify(seen)}`);
  }
});
