/**
 * RingNode in isolation: ring ids, the payload codec and malformed input,
 * deltas, start-up from stored state, configuration errors, and the
 * request protocol's corner cases over a synchronous fake bus.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BadRequestError, InvalidConfigError, MeshMalformedError, RingInvalidError, RingRangeMismatchError, RingTooLargeError } from '../../src/core/errors.js';
import { parseCidr } from '../../src/core/ip/cidr.js';
import type { Interval } from '../../src/core/ip/ranges.js';
import {
  CONSENSUS_CHANNEL, type PersistedRingState, RING_CHANNEL, type RingChange, RingGossip, RingNode, type RingNodeEvent, type RingNodeOptions, canApplyDelta,
  decodePersistedState, decodeRingMessage, encodeRingMessage, generationOf, nextRingId, nicknameCandidates, onlyHeartbeatsDiffer, ringDelta, ringIdFor,
} from '../../src/core/ipam-ring/index.js';
import type { GossipData, GossipReceiver, GossipSender } from '../../src/core/mesh/gossip/interfaces.js';
import {
  type Ring, encodeRing, grant, heartbeat, join, merge, ownedRanges, parseIpallocInit, removePeer, reportFree, ringViolations, seedRing, voteExpired,
} from '../../src/core/ring/index.js';
import { fails } from '../helpers/assert-error.js';
import { canon, pick, prng } from './ring-kit.js';

const RANGE = parseCidr('10.9.0.0/24');
const enc = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v), 'utf8');

// ---------------------------------------------------------------- ids

test('ring ids: generations of a nickname, the next free one, nickname candidates', () => {
  assert.equal(ringIdFor('web'), 'web');
  assert.equal(ringIdFor('web', 2), 'web.2');
  fails(() => ringIdFor('web', 0), BadRequestError, 'generation 0 is out of range');
  fails(() => ringIdFor('-bad'), BadRequestError, '"-bad" is not a valid nickname');
  assert.equal(generationOf('web', 'web'), 1);
  assert.equal(generationOf('web', 'web.7'), 7);
  assert.equal(generationOf('web', 'web.1'), undefined, 'generation 1 is the bare nickname');
  assert.equal(generationOf('web', 'web.07'), undefined);
  assert.equal(generationOf('web', 'webx.2'), undefined);
  assert.equal(nextRingId('web', 'web'), 'web.2');
  assert.equal(nextRingId('web', 'web.2'), 'web.3');
  // A dotted nickname: "web.2" may be another host; derived ids never collide with known ones.
  const ring = join(join(seedRing(RANGE, ['web']), 'web.2'), 'web.3');
  assert.equal(nextRingId('web', 'web', ring), 'web.4');
  assert.equal(nextRingId('renamed', 'web', ring), 'renamed', 'a renamed host starts over at its nickname');
  assert.deepEqual(nicknameCandidates('web.2'), ['web.2', 'web']);
  assert.deepEqual(nicknameCandidates('web'), ['web']);
  assert.deepEqual(nicknameCandidates('a.b.12'), ['a.b.12', 'a.b']);
});

// ---------------------------------------------------------------- codec

const base = (): Ring => join(join(seedRing(RANGE, ['a', 'b']), 'a'), 'b');

test('payload codec: every message type round-trips; the wire form is the documented JSON', () => {
  const ring = base();
  const delta = ringDelta(ring, heartbeat(ring, 'a'))!;
  const msgs = [
    { t: 'ring', from: 'a', ring },
    { t: 'delta', from: 'a', ring: delta },
    { t: 'ask', from: 'a', to: 'b', id: 7, genesis: 'seed:a,b' },
    { t: 'claim', from: 'a', to: 'b', id: 0xffffffff, genesis: 'seed:a,b', addr: 0x85n },
    { t: 'grant', from: 'b', to: 'a', id: 7, first: 0xc0n, last: 0xffn, ring: delta },
    { t: 'refuse', from: 'b', to: 'a', id: 7, reason: 'in-use' },
    { t: 'reset', from: 'a', to: 'b', id: 1, ring: delta },
    { t: 'reset-ack', from: 'b', to: 'a', id: 1 },
  ] as const;
  for (const m of msgs) {
    const back = decodeRingMessage(encodeRingMessage(m));
    assert.equal(back.t, m.t);
    const norm = (x: object): string => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v && typeof v === 'object' && 'entries' in v && 'peers' in v ? canon(v as Ring) : v));
    assert.equal(norm(back), norm(m));
  }
  assert.equal(Buffer.from(encodeRingMessage({ t: 'claim', from: 'a', to: 'b', id: 3, genesis: 'seed:a,b', addr: 0x85n })).toString(),
    '{"v":1,"t":"claim","from":"a","to":"b","id":3,"g":"seed:a,b","addr":"85"}');
  const d = JSON.parse(Buffer.from(encodeRingMessage({ t: 'delta', from: 'a', ring: delta })).toString()) as { ring: { tokens: unknown[]; peers: unknown[] } };
  assert.deepEqual(d.ring.tokens, [['0', 0, 0, '80']], 'a heartbeat delta: the first token and the records it needs');
  assert.deepEqual(d.ring.peers, [['a', 1]]);
});

test('payload codec: malformed payloads are MeshMalformedError, never anything else', () => {
  const wire = encodeRing(base());
  const garbage: unknown[] = [
    'not json at all', [], null, 3, {}, { v: 2, t: 'ring', from: 'a', ring: wire }, { v: 1, t: 'nope', from: 'a' },
    { v: 1, t: 'ring', from: 'a' }, { v: 1, t: 'ring', from: 'a', ring: wire, extra: 1 }, { v: 1, t: 'ring', from: 'has space', ring: wire },
    { v: 1, t: 'ring', from: 'a', ring: { ...wire, v: 9 } }, { v: 1, t: 'ring', from: 'a', ring: { ...wire, tokens: [] } },
    { v: 1, t: 'delta', from: 'a', ring: { ...wire, peers: [['b', 0], ['a', 0]] } },
    { v: 1, t: 'ask', from: 'a', to: 'b', id: -1, g: 'x' }, { v: 1, t: 'ask', from: 'a', to: 'b', id: 1.5, g: 'x' }, { v: 1, t: 'ask', from: 'a', to: 'b', id: 2 ** 32, g: 'x' },
    { v: 1, t: 'ask', from: 'a', to: 'b', id: 1, g: '' }, { v: 1, t: 'ask', from: 'a', id: 1, g: 'x' },
    { v: 1, t: 'claim', from: 'a', to: 'b', id: 1, g: 'x', addr: '0x1' }, { v: 1, t: 'claim', from: 'a', to: 'b', id: 1, g: 'x', addr: '01' },
    { v: 1, t: 'claim', from: 'a', to: 'b', id: 1, g: 'x', addr: 'F' }, { v: 1, t: 'claim', from: 'a', to: 'b', id: 1, g: 'x', addr: 5 },
    { v: 1, t: 'grant', from: 'a', to: 'b', id: 1, first: '9', last: '8', ring: wire }, { v: 1, t: 'grant', from: 'a', to: 'b', id: 1, first: '8', last: '9' },
    { v: 1, t: 'refuse', from: 'a', to: 'b', id: 1, reason: 'because' }, { v: 1, t: 'reset-ack', from: 'a', to: 'b', id: 1, ring: wire },
  ];
  for (const g of garbage) {
    const bytes = typeof g === 'string' ? Buffer.from(g) : enc(g);
    assert.throws(() => decodeRingMessage(bytes), MeshMalformedError, JSON.stringify(g)?.slice(0, 80));
  }
  assert.throws(() => decodeRingMessage(Uint8Array.of(0xff, 0xfe)), MeshMalformedError, 'invalid UTF-8');
});

test('payload codec: a payload over one frame is RingTooLargeError; gossip data of that size sends nothing and is reported', () => {
  const founders = Array.from({ length: 300 }, (_, i) => `peer-${String(i).padStart(3, '0')}`);
  const ring = seedRing(parseCidr('10.0.0.0/16'), founders);
  fails(() => encodeRingMessage({ t: 'ring', from: 'peer-000', ring }, 4096), RingTooLargeError, /^ipam\.ring ring payload of \d+ bytes \(300 tokens, 300 peers\) exceeds one mesh frame \(4096 bytes\)$/);
  const errors: string[] = [];
  const g = new RingGossip(ring, false, 'peer-000', 4096, (e) => errors.push(e.code));
  assert.deepEqual(g.encode(), []);
  assert.deepEqual(errors, ['RING_TOO_LARGE']);
  assert.equal(new RingGossip(ring, false, 'peer-000').encode().length, 1, 'fits the default budget');
});

// ---------------------------------------------------------------- deltas

test('deltas: applying the delta of a change equals applying the whole new ring, on any replica at least as new as the base', () => {
  const rand = prng(41);
  const ids = ['a', 'b', 'c', 'd', 'e'];
  for (let run = 0; run < 60; run++) {
    let ring = seedRing(RANGE, ids.slice(0, 3));
    for (const id of ids) ring = join(ring, id);
    const step = (r: Ring): Ring => {
      const me = pick(rand, ids.filter((x) => !r.peers.get(x)?.retired));
      const k = rand();
      try {
        if (k < 0.35) return heartbeat(r, me);
        if (k < 0.55) {
          const mine = ownedRanges(r, me);
          if (mine.length === 0) return r;
          const o = pick(rand, mine);
          const first = o.first + BigInt(Math.floor(rand() * Number(o.last - o.first + 1n)));
          const last = first + BigInt(Math.floor(rand() * 8)) > o.last ? o.last : first + BigInt(Math.floor(rand() * 8));
          const to = pick(rand, ids.filter((x) => x !== me && !r.peers.get(x)?.retired));
          return to === undefined ? r : grant(r, me, to, first, last);
        }
        if (k < 0.7) return voteExpired(r, me, [pick(rand, ids)]);
        if (k < 0.8) return reportFree(r, me, () => BigInt(Math.floor(rand() * 20)));
        if (k < 0.85) { const t = pick(rand, ids); return t === me ? r : removePeer(r, me, t); }
      } catch { /* not allowed in this state: skip */ }
      return r;
    };
    for (let i = 0; i < 25; i++) ring = step(ring);
    const before = ring;
    let after = before;
    for (let i = 0; i < 1 + Math.floor(rand() * 6); i++) after = step(after);
    let other = before; // another replica that saw more
    for (let i = 0; i < 4; i++) other = step(other);
    const delta = ringDelta(before, after);
    if (after === before || canon(after) === canon(before)) { assert.equal(delta === undefined || canon(merge(before, delta)) === canon(before), true); continue; }
    assert.ok(delta, 'something changed');
    assert.ok(canApplyDelta(before, delta));
    assert.equal(canon(merge(before, delta)), canon(after), `run ${run}: base + delta = new`);
    assert.equal(canon(merge(other, delta)), canon(merge(other, after)), `run ${run}: on a newer replica too`);
    assert.deepEqual(ringViolations(merge(other, delta)), []);
    assert.ok(delta.entries.length <= after.entries.length);
  }
});

test('deltas: a delta never applies across geneses or without a ring; heartbeat-only changes are recognised', () => {
  const a = base();
  const other = seedRing(RANGE, ['x']);
  const d = ringDelta(a, heartbeat(a, 'a'))!;
  assert.equal(canApplyDelta(undefined, d), false);
  assert.equal(canApplyDelta(other, d), false);
  assert.throws(() => ringDelta(a, other), RangeError);
  assert.equal(onlyHeartbeatsDiffer(a, heartbeat(heartbeat(a, 'a'), 'b')), true);
  assert.equal(onlyHeartbeatsDiffer(a, grant(a, 'a', 'b', a.first, a.first + 3n)), false);
  assert.equal(onlyHeartbeatsDiffer(a, voteExpired(a, 'a', ['b'])), false);
  assert.equal(onlyHeartbeatsDiffer(a, join(a, 'z')), false);
});

// ---------------------------------------------------------------- a fake bus

interface Harness {
  node: RingNode;
  events: RingNodeEvent[];
  changes: RingChange[];
  persisted: PersistedRingState[];
  allocs: Set<bigint>;
  mesh: string;
}

/** Nodes on a synchronous, lossless fake router: sends queue up, `flush()` delivers them. */
class Bus {
  now = 0;
  readonly hosts = new Map<string, Harness>();
  private readonly receivers = new Map<string, Map<string, GossipReceiver<never>>>();
  queue: { to: string; channel: string; src: string; payload: Uint8Array; how: 'broadcast' | 'unicast' }[] = [];
  readonly rand = prng(7);

  add(nick: string, init: string, extra: Partial<RingNodeOptions> = {}, persisted?: unknown): Harness {
    const mesh = `${(this.hosts.size + 1).toString(16).padStart(16, '0')}`;
    const h: Harness = { node: undefined as unknown as RingNode, events: [], changes: [], persisted: [], allocs: new Set(), mesh };
    const count = (ivs: readonly Interval[]): bigint => BigInt([...h.allocs].filter((x) => ivs.some((i) => x >= i.first && x <= i.last)).length);
    const opts: RingNodeOptions = {
      nickname: nick, range: RANGE, init: parseIpallocInit(init), now: () => this.now, random: this.rand, heartbeatMs: 100, leaseTimeoutMs: 1000, requestTimeoutMs: 500, blockSize: 16n,
      ...(persisted !== undefined ? { persisted } : {}),
      meshPeerOf: (id) => [...this.hosts.values()].find((x) => x.node?.me === id || nicknameCandidates(id).includes(x.node?.nickname))?.mesh,
      freeOf: (ivs) => ivs.reduce((s, i) => s + i.last - i.first + 1n, 0n) - count(ivs),
      isUnused: (f, l) => count([{ first: f, last: l }]) === 0n,
      allocatedIn: (ivs) => [...h.allocs].filter((x) => ivs.some((i) => x >= i.first && x <= i.last)),
      persist: (s) => h.persisted.push(JSON.parse(JSON.stringify(s)) as PersistedRingState),
      onChange: (_r, c) => h.changes.push(c),
      onEvent: (e) => h.events.push(e),
      ...extra,
    };
    h.node = new RingNode(opts);
    this.hosts.set(mesh, h);
    const mine = new Map<string, GossipReceiver<never>>();
    this.receivers.set(mesh, mine);
    h.node.register({
      registerChannel: <D extends GossipData<D>>(name: string, receiver: GossipReceiver<D>): GossipSender<D> => {
        mine.set(name, receiver as unknown as GossipReceiver<never>);
        const all = (d: D, how: 'broadcast' | 'unicast'): void => {
          for (const to of this.hosts.keys()) if (to !== mesh) for (const payload of d.encode()) this.queue.push({ to, channel: name, src: mesh, payload, how });
        };
        return {
          gossipUnicast: (dst, payload) => { if (!this.hosts.has(dst)) return false; this.queue.push({ to: dst, channel: name, src: mesh, payload, how: 'unicast' }); return true; },
          gossipBroadcast: (d) => all(d, 'broadcast'),
          gossipNeighbourSubset: (d) => all(d, 'broadcast'),
        };
      },
    });
    return h;
  }

  deliver(m: Bus['queue'][number]): void {
    const r = this.receivers.get(m.to)?.get(m.channel);
    if (!r) return;
    if (m.how === 'unicast') r.onGossipUnicast(m.src, m.payload);
    else r.onGossipBroadcast(m.src, m.payload);
  }

  flush(filter: (m: Bus['queue'][number]) => boolean = () => true): void {
    for (let i = 0; i < 1000 && this.queue.length > 0; i++) {
      const q = this.queue;
      this.queue = [];
      for (const m of q) if (filter(m)) this.deliver(m);
    }
  }

  /** What the router does every gossip interval: each channel's full state to the others. */
  antiEntropy(): void {
    for (const [mesh, chans] of this.receivers) {
      for (const [name, r] of chans) {
        const d = (r as unknown as GossipReceiver<RingGossip>).gossip();
        if (!d) continue;
        for (const to of this.hosts.keys()) if (to !== mesh) for (const payload of d.encode()) this.queue.push({ to, channel: name, src: mesh, payload, how: 'broadcast' });
      }
    }
  }

  /** Advances time in 50 ms steps, ticking every node and delivering everything; anti-entropy every 200 ms. */
  run(ms: number): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + 50);
      for (const h of this.hosts.values()) h.node.tick(this.now);
      if (this.now % 200 === 0) this.antiEntropy();
      this.flush();
    }
  }
}

function pair(): { bus: Bus; a: Harness; b: Harness } {
  const bus = new Bus();
  const a = bus.add('a', 'seed=a,b');
  const b = bus.add('b', 'seed=a,b');
  bus.run(300);
  assert.equal(a.node.state(), 'ready');
  return { bus, a, b };
}

test('channels: malformed payloads on either channel throw MeshMalformedError and change nothing', () => {
  const { a } = pair();
  const before = a.node.currentRing();
  const persists = a.persisted.length;
  const bad = [Buffer.from('{'), enc({ v: 1, t: 'ring', from: 'x', ring: { v: 1 } }), enc({ v: 1, t: 'grant', from: 'b', to: 'a', id: 1, first: '1', last: '0', ring: {} })];
  for (const p of bad) {
    assert.throws(() => a.node.ringChannel.onGossip(p), MeshMalformedError);
    assert.throws(() => a.node.ringChannel.onGossipBroadcast('00000000000000ff', p), MeshMalformedError);
    assert.throws(() => a.node.ringChannel.onGossipUnicast('00000000000000ff', p), MeshMalformedError);
  }
  for (const p of [Buffer.from('[]'), enc({ v: 1 }), enc({ v: 1, c: { v: 1, n: 0, rows: [] } }), enc({ v: 1, c: { v: 1, n: 2, rows: [['b'], ['a']] } })]) {
    assert.throws(() => a.node.consensusChannel.onGossip(p), MeshMalformedError);
  }
  assert.equal(a.node.currentRing(), before);
  assert.equal(a.persisted.length, persists);
  assert.equal(a.node.state(), 'ready');
});

test('requests: a duplicated ask is answered once (one grant), stray or late answers are ignored, a silent donor times out', () => {
  const { bus, a, b } = pair();
  for (let x = a.node.ownedRanges()[0]!.first; x <= a.node.ownedRanges()[0]!.last; x++) a.allocs.add(x);
  bus.run(200);
  const r = a.node.askForSpace();
  assert.equal(r.status, 'sent');
  const ask = bus.queue.find((m) => m.how === 'unicast')!;
  bus.queue.push({ ...ask }); // delivered twice
  bus.flush();
  const replies = a.events.filter((e) => e.type === 'reply');
  assert.equal(replies.length, 1);
  assert.equal(replies[0]!.type === 'reply' && replies[0]!.outcome, 'granted');
  const grants = b.changes.filter((c) => c.cause === 'grant');
  assert.equal(grants.length, 1, 'the donor granted one block only');
  // An answer for an unknown request, or from someone we did not ask, changes nothing.
  const ringBefore = a.node.currentRing();
  a.node.ringChannel.onGossipUnicast(b.mesh, encodeRingMessage({ t: 'refuse', from: 'b', to: 'a', id: 12345, reason: 'no-space' }));
  a.node.ringChannel.onGossipUnicast(b.mesh, encodeRingMessage({ t: 'grant', from: 'b', to: 'a', id: 999, first: 0n, last: 0n, ring: ringDelta(base(), heartbeat(base(), 'b'))! }));
  assert.equal(a.node.currentRing(), ringBefore);
  assert.equal(a.events.filter((e) => e.type === 'reply').length, 1);
  // A donor that never answers: timeout after requestTimeoutMs.
  const r2 = a.node.askForSpace();
  assert.equal(r2.status, 'sent');
  assert.ok(a.node.nextWakeup()! <= bus.now + 500);
  bus.queue = [];
  bus.now += 499;
  a.node.tick();
  assert.equal(a.events.filter((e) => e.type === 'reply').length, 1);
  bus.now += 1;
  a.node.tick();
  const last = a.events.at(-1)!;
  assert.ok(last.type === 'reply' && last.outcome === 'timeout' && r2.status === 'sent' && last.id === r2.id && last.peer === 'b');
});

test('requests: asks naming someone else, from another genesis, or to a donor at risk are refused with the reason', () => {
  const { bus, a, b } = pair();
  const ask = (m: object): string => {
    b.node.ringChannel.onGossipUnicast(a.mesh, encodeRingMessage({ t: 'ask', from: 'a', to: 'b', id: 1, genesis: 'seed:a,b', ...m } as never));
    const out = bus.queue.pop()!;
    bus.queue = [];
    return (decodeRingMessage(out.payload) as { reason?: string; t: string }).reason ?? 'granted';
  };
  assert.equal(ask({ to: 'c', id: 10 }), 'not-me');
  assert.equal(ask({ genesis: 'seed:x', id: 11 }), 'genesis-mismatch');
  assert.equal(ask({ id: 12 }), 'granted');
  assert.equal(ask({ id: 12 }), 'granted', 'a repeated request gets the same answer');
  // b no longer hears a: it is at risk and refuses to give space away.
  bus.now += 600;
  b.node.tick(bus.now);
  bus.queue = [];
  assert.equal(b.node.state(), 'at-risk');
  assert.equal(ask({ id: 13 }), 'at-risk');
  fails(() => a.node.claimAddress(RANGE.base + 300n), BadRequestError, 'address 168362284 is outside the cluster range 10.9.0.0/24');
});

// ---------------------------------------------------------------- start-up and stored state

test('start-up: seed peers and outsiders, observer, consensus=1 eager, deferred consensus waits, states for CNI STATUS', () => {
  const bus = new Bus();
  const s = bus.add('s', 'seed=s');
  assert.equal(s.node.state(), 'ready', 'alone and owning everything: not at risk');
  assert.equal(s.node.ownedRanges().length, 1);
  const out = bus.add('out', 'seed=s');
  assert.equal(out.node.currentRing()!.genesis.id, 'seed:s');
  assert.deepEqual(out.node.ownedRanges(), []);
  const obs = bus.add('obs', 'observer');
  assert.equal(obs.node.state(), 'observer');
  assert.equal(obs.node.nextWakeup(), undefined, 'nothing to do until a ring arrives');
  bus.run(300);
  assert.equal(obs.node.currentRing()!.genesis.id, 'seed:s', 'adopted by gossip');
  assert.ok(['ready', 'at-risk'].includes(obs.node.state()));

  const bus2 = new Bus();
  const solo = bus2.add('solo', 'consensus=1', { consensusStart: 'eager' });
  assert.equal(solo.node.state(), 'waiting-for-consensus');
  bus2.run(100);
  assert.equal(solo.node.currentRing()!.genesis.id, 'consensus:1.solo');
  assert.equal(solo.node.state(), 'ready');
  assert.ok(solo.events.some((e) => e.type === 'consensus-decided'));
  const lazy = new Bus().add('lazy', 'consensus=1');
  assert.equal(lazy.node.status().consensus, null);
  assert.equal(lazy.node.askForSpace().status, 'not-ready');
  assert.notEqual(lazy.node.currentRing(), undefined, 'consensus=1 decides on the first need');
});

test('start-up: a stored consensus row is restored; the stored state must match range and N; a stored retired id rejoins as the next generation', () => {
  const bus = new Bus();
  const p = bus.add('p', 'consensus=3', { consensusStart: 'eager' });
  bus.run(100);
  const stored = p.persisted.at(-1)!;
  assert.ok(stored.consensus && !stored.ring, 'the row is stored before the ring exists');
  const again = new Bus().add('p', 'consensus=3', {}, stored);
  assert.deepEqual(again.node.status().consensus, { n: 3, rows: 1, decided: false }, 'resumed at once, with its row');
  fails(() => new Bus().add('p', 'consensus=5', {}, stored), InvalidConfigError, 'the stored consensus ran with consensus=3, this peer was launched with consensus=5');
  fails(() => new Bus().add('p', 'seed=p', { range: parseCidr('10.8.0.0/24') }, { v: 1, me: 'p', ring: encodeRing(seedRing(RANGE, ['p'])) }), RingRangeMismatchError,
    'the stored ring covers 10.9.0.0/24, this peer runs --ipalloc-range 10.8.0.0/24');
  fails(() => decodePersistedState({ v: 1, me: 'p', ring: { v: 1 } }), RingInvalidError, 'invalid ring: ring lacks "range"');
  fails(() => decodePersistedState({ v: 1, me: 'p', extra: 1 }), RingInvalidError, 'stored ring state has unknown key "extra"');
  fails(() => new Bus().add('p', 'seed=p', { me: 'q' }, { v: 1, me: 'p' }), InvalidConfigError, 'ring id q differs from the stored one (p)');

  // Stored: we are web.2, and the stored ring already says web.2 was reclaimed by web3.
  let ring = seedRing(RANGE, ['web.2', 'web3']);
  ring = removePeer(join(ring, 'web3'), 'web3', 'web.2');
  const h = new Bus().add('web', 'seed=web.2,web3', {}, { v: 1, me: 'web.2', ring: encodeRing(ring) });
  assert.equal(h.node.me, 'web.3');
  assert.deepEqual(h.events[0], { type: 'rejoined', previousId: 'web.2', me: 'web.3' });
  assert.equal(h.persisted.at(-1)!.me, 'web.3', 'the new id is stored before it is used');
  assert.equal(h.changes[0]!.previousId, 'web.2');
  fails(() => new Bus().add('web', 'seed=web', { heartbeatMs: 1000, leaseTimeoutMs: 4000 }), InvalidConfigError,
    'ipam ring heartbeat (1000 ms) must be shorter than the clock-gap limit (1000 ms, lease/4 by default)');
});

test('gossip: a heartbeat goes out as a small delta; persist skips heartbeat-only changes; nextWakeup follows the heartbeat', () => {
  const { bus, a } = pair();
  const persists = a.persisted.length;
  const sent: Uint8Array[] = [];
  a.node.ringChannel.setSender({ gossipUnicast: () => true, gossipBroadcast: (d) => { sent.push(...d.encode()); }, gossipNeighbourSubset: () => undefined });
  const wake = a.node.nextWakeup()!;
  assert.ok(wake > bus.now && wake <= bus.now + 100);
  bus.now = wake;
  a.node.tick();
  assert.equal(sent.length, 1);
  const m = decodeRingMessage(sent[0]!);
  assert.equal(m.t, 'delta');
  assert.ok(sent[0]!.length < 200, `${sent[0]!.length} bytes`);
  assert.equal(a.persisted.length, persists, 'nothing but a heartbeat changed');
  assert.equal(a.node.nextWakeup(), wake + 100);
  assert.equal(a.node.ringChannel.gossip()!.partial, false, 'anti-entropy sends the whole ring');
  assert.equal(RING_CHANNEL, 'ipam.ring');
  assert.equal(CONSENSUS_CHANNEL, 'ipam.consensus');
});
