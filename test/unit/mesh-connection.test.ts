import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterFingerprint } from '../../src/core/mesh/cluster-id.js';
import { DEFAULT_BACKOFF, meshConfig } from '../../src/core/mesh/config.js';
import { admit, preferredConnection, type AdmissionInput } from '../../src/core/mesh/conn/admission.js';
import { backoffDelay } from '../../src/core/mesh/conn/backoff.js';
import { ConnectionMaker } from '../../src/core/mesh/conn/connection-maker.js';
import { Connection, type Admit, type ConnEvent, type ConnectionOptions } from '../../src/core/mesh/conn/connection.js';
import { CloseCode } from '../../src/core/mesh/wire/constants.js';
import { decodeMessage, encodeMessage } from '../../src/core/mesh/wire/message-codec.js';
import type { Hello } from '../../src/core/mesh/wire/messages.js';
import { InvalidConfigError } from '../../src/core/errors.js';

const A = 'aaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbb';
const CLUSTER = clusterFingerprint('10.32.0.0/12');

function conn(peer: string, over: Partial<ConnectionOptions> & { nickname?: string; heartbeatMs?: number; cluster?: Uint8Array } = {}): Connection {
  return new Connection({
    outbound: false, connSeq: 0, maxFrameBytes: 1 << 20, handshakeTimeoutMs: 10_000, deadAfterMs: 60_000, now: 0,
    ...over,
    local: {
      peer, nickname: over.nickname ?? `n-${peer.slice(0, 2)}`, cluster: over.cluster ?? CLUSTER, heartbeatMs: over.heartbeatMs ?? 30_000,
      address: undefined, extensions: new Map(), ...over.local,
    },
  });
}

const accept: Admit = () => undefined;
const frames = (evs: ConnEvent[]): Buffer[] => evs.flatMap((e) => (e.type === 'send' ? [e.frame] : []));

/** Delivers everything each side sends to the other until nothing moves; returns all events per side. */
function pump(a: Connection, b: Connection, now: number, first: [Buffer[], Buffer[]], admitA: Admit = accept, admitB: Admit = accept): [ConnEvent[], ConnEvent[]] {
  const evA: ConnEvent[] = [];
  const evB: ConnEvent[] = [];
  let [toB, toA] = first;
  while (toA.length + toB.length > 0) {
    const nb = toB.flatMap((f) => b.receive(f, now, admitB));
    const na = toA.flatMap((f) => a.receive(f, now, admitA));
    evA.push(...na);
    evB.push(...nb);
    toB = frames(na);
    toA = frames(nb);
  }
  return [evA, evB];
}

function handshake(a: Connection, b: Connection, admitA?: Admit, admitB?: Admit): [ConnEvent[], ConnEvent[]] {
  return pump(a, b, 1, [frames(a.start()), frames(b.start())], admitA, admitB);
}

test('handshake: both ends establish with the negotiated version only after both ACCEPTs', () => {
  const a = conn(A, { outbound: true, connSeq: 42 });
  const b = conn(B);
  assert.equal(a.state, 'handshake');
  const [ea, eb] = handshake(a, b);
  assert.equal(a.state, 'established');
  assert.equal(b.state, 'established');
  const estA = ea.find((e) => e.type === 'established');
  const estB = eb.find((e) => e.type === 'established');
  assert.ok(estA && estA.type === 'established' && estA.remote.peer === B && estA.version === 1);
  assert.ok(estB && estB.type === 'established' && estB.remote.connSeq === 42);
});

test('handshake: one side refusing (limit, duplicate…) means neither side ever establishes', () => {
  const a = conn(A, { outbound: true });
  const b = conn(B);
  const [ea, eb] = handshake(a, b, accept, () => ({ code: CloseCode.ConnectionLimit, reason: 'full' }));
  assert.ok(!ea.some((e) => e.type === 'established'), 'the dialer saw the refusal instead of establishing');
  assert.equal(a.state, 'closed');
  assert.deepEqual(a.closed, { code: CloseCode.ConnectionLimit, reason: 'full', byPeer: true });
  const refused = ea.find((e) => e.type === 'closed');
  assert.ok(refused && refused.type === 'closed' && refused.error?.code === 'MESH_HANDSHAKE_REJECTED', 'the refusal is reportable');
  assert.equal(b.state, 'closed');
  assert.ok(!eb.some((e) => e.type === 'established'));
});

test('handshake: no common version closes with VersionMismatch and a typed error', () => {
  const a = conn(A, { outbound: true, local: { peer: A, nickname: 'a', cluster: CLUSTER, heartbeatMs: 1000, address: undefined, extensions: new Map(), minVersion: 2, maxVersion: 3 } });
  const b = conn(B);
  const [ea] = handshake(a, b);
  const closed = ea.find((e) => e.type === 'closed');
  assert.ok(closed && closed.type === 'closed');
  assert.equal(closed.code, CloseCode.VersionMismatch);
  assert.equal(closed.error?.code, 'MESH_VERSION_MISMATCH');
  assert.equal(b.state, 'closed');
});

test('handshake timeout, heartbeats and the dead timer follow the injected clock', () => {
  const lonely = conn(A, { handshakeTimeoutMs: 5000 });
  lonely.start();
  assert.equal(lonely.nextDeadline(), 5000);
  assert.deepEqual(lonely.tick(4999), []);
  const t = lonely.tick(5000);
  assert.ok(t.some((e) => e.type === 'closed' && e.code === CloseCode.HandshakeTimeout));

  const a = conn(A, { outbound: true, heartbeatMs: 1000, deadAfterMs: 3000 });
  const b = conn(B, { heartbeatMs: 1000, deadAfterMs: 3000 });
  handshake(a, b);
  // Heartbeat once nothing was sent for an interval.
  assert.deepEqual(a.tick(500), []);
  const hb = frames(a.tick(1001));
  assert.equal(hb.length, 1);
  assert.equal(decodeMessage(hb[0]!.subarray(4), 1).kind, 'heartbeat');
  // b hears it: alive. Then silence: dead after 3 s (2 × the peer's 1 s is less).
  b.receive(hb[0]!, 1001, accept);
  assert.ok(!b.tick(3999).some((e) => e.type === 'closed'));
  const dead = b.tick(4001);
  assert.ok(dead.some((e) => e.type === 'closed' && e.code === CloseCode.HeartbeatTimeout));
});

test('the dead timer respects a slower peer: never before two of its heartbeat intervals', () => {
  const a = conn(A, { outbound: true, heartbeatMs: 20_000 });
  const b = conn(B, { deadAfterMs: 15_000, heartbeatMs: 5_000 });
  handshake(a, b);
  assert.ok(!b.tick(39_000).some((e) => e.type === 'closed'));
  assert.ok(b.tick(40_001).some((e) => e.type === 'closed'));
});

test('garbage after the handshake closes with ProtocolError, sending the reason; a peer CLOSE is reported as by peer', () => {
  const a = conn(A, { outbound: true });
  const b = conn(B);
  handshake(a, b);
  const evs = b.receive(Buffer.from([0, 0, 0, 1, 0x66]), 5, accept);
  const closed = evs.find((e) => e.type === 'closed');
  assert.ok(closed && closed.type === 'closed' && closed.code === CloseCode.ProtocolError && !closed.byPeer);
  assert.equal(closed.error?.code, 'MESH_MALFORMED');
  const close = frames(evs)[0]!;
  const back = a.receive(close, 6, accept);
  assert.ok(back.some((e) => e.type === 'closed' && e.byPeer && e.code === CloseCode.ProtocolError));
  assert.deepEqual(b.receive(encodeMessage({ kind: 'heartbeat' }, 10), 7, accept), [], 'nothing after close');
});

test('messages before ACCEPT, a second ACCEPT, and a truncated end are protocol errors', () => {
  const a = conn(A, { outbound: true });
  a.start();
  const b = conn(B);
  const helloB = frames(b.start())[0]!;
  a.receive(helloB, 1, accept);
  const early = a.receive(encodeMessage({ kind: 'gossip', channel: 'x', payload: Buffer.alloc(0) }, 100), 2, accept);
  assert.ok(early.some((e) => e.type === 'closed' && e.code === CloseCode.ProtocolError));

  const c = conn(A, { outbound: true });
  const d = conn(B);
  handshake(c, d);
  const twice = d.receive(encodeMessage({ kind: 'accept' }, 100), 3, accept);
  assert.ok(twice.some((e) => e.type === 'closed' && e.code === CloseCode.ProtocolError));

  const e = conn(A);
  e.start();
  e.receive(Buffer.from([0, 0]), 1, accept);
  const cut = e.transportClosed();
  assert.ok(cut.some((x) => x.type === 'closed' && x.error?.code === 'MESH_TRUNCATED'));
});

// ---------------------------------------------------------------- admission

function input(over: Partial<Omit<AdmissionInput, 'remote'>> & { remote?: Partial<Hello> } = {}): AdmissionInput {
  const remote: Hello = {
    minVersion: 1, maxVersion: 1, peer: B, nickname: 'b', cluster: CLUSTER, connSeq: 10, heartbeatMs: 1000, explicit: false, fresh: false,
    address: undefined, extensions: new Map(), ...over.remote,
  };
  return {
    self: { peer: A, nickname: 'a', cluster: CLUSTER }, candidate: { initiator: B, connSeq: 10 }, existing: [], nicknameOwner: () => undefined,
    otherConnections: 0, connLimit: 3, candidateIsOurs: false, ...over, remote,
  };
}

test('admission: cluster, self, name collision, limit, duplicates', () => {
  assert.deepEqual(admit(input()), { accept: true, replaces: [] });
  const other = admit(input({ remote: { cluster: clusterFingerprint('10.0.0.0/8') } }));
  assert.ok(!other.accept && other.code === CloseCode.ClusterMismatch);
  const self = admit(input({ remote: { peer: A } }));
  assert.ok(!self.accept && self.code === CloseCode.Self);
  const sameNick = admit(input({ remote: { nickname: 'a' } }));
  assert.ok(!sameNick.accept && sameNick.code === CloseCode.NameCollision);
  const taken = admit(input({ nicknameOwner: (n) => (n === 'b' ? 'cccccccccccccccc' : undefined) }));
  assert.ok(!taken.accept && taken.code === CloseCode.NameCollision);
  assert.ok(admit(input({ nicknameOwner: () => B })).accept, 'its own nickname is no collision');
  const full = admit(input({ otherConnections: 3 }));
  assert.ok(!full.accept && full.code === CloseCode.ConnectionLimit);
  assert.ok(admit(input({ otherConnections: 3, remote: { explicit: true } })).accept, 'operator-requested dials may exceed the limit…');
  const hard = admit(input({ otherConnections: 6, remote: { explicit: true } }));
  assert.ok(!hard.accept && hard.code === CloseCode.ConnectionLimit, '…up to twice it');
  assert.ok(admit(input({ otherConnections: 3, candidateIsOurs: true })).accept);
  assert.ok(admit(input({ otherConnections: 3, existing: [{ initiator: B, connSeq: 1 }] })).accept, 'a replacement adds nothing');
});

test('duplicates: both ends keep the connection dialed by the lower ID, else the newer one', () => {
  const byA = { initiator: A, connSeq: 5 };
  const byB = { initiator: B, connSeq: 9 };
  assert.equal(preferredConnection(byA, byB), byA);
  assert.equal(preferredConnection(byB, byA), byA);
  const older = { initiator: B, connSeq: 1 };
  const newer = { initiator: B, connSeq: 2 };
  assert.equal(preferredConnection(older, newer), newer);
  assert.equal(preferredConnection(newer, older), newer);
  // At A (lower ID), B's dial loses to A's existing one; at B, A's dial replaces B's own.
  const atA = admit(input({ existing: [byA], candidate: byB }));
  assert.ok(!atA.accept && atA.code === CloseCode.Duplicate);
  const atB = admit(input({ self: { peer: B, nickname: 'b', cluster: CLUSTER }, remote: { peer: A, nickname: 'a' }, existing: [byB], candidate: byA }));
  assert.ok(atB.accept && atB.replaces.length === 1);
});

// ---------------------------------------------------------------- backoff and targets

test('backoff: 2 s × 1.5 per failure, capped at 6 min, jitter within ±20 % from the injected RNG', () => {
  const mid = () => 0.5;
  const seq = [1, 2, 3, 4, 20, 100].map((n) => backoffDelay(n, DEFAULT_BACKOFF, mid));
  assert.deepEqual(seq, [2000, 3000, 4500, 6750, 360_000, 360_000]);
  assert.equal(backoffDelay(1, DEFAULT_BACKOFF, () => 0), 1600);
  assert.equal(backoffDelay(1, DEFAULT_BACKOFF, () => 0.999999), 2400);
  assert.equal(backoffDelay(50, DEFAULT_BACKOFF, () => 0.999999), 360_000, 'jitter never exceeds the cap');
});

test('config: defaults like Weave, contradictions refused', () => {
  const c = meshConfig();
  assert.equal(c.heartbeatIntervalMs, 30_000);
  assert.equal(c.deadAfterMs, 60_000);
  assert.equal(c.maxFrameBytes, 1 << 20);
  assert.throws(() => meshConfig({ heartbeatIntervalMs: 5000, deadAfterMs: 5000 }), InvalidConfigError);
  assert.throws(() => meshConfig({ backoff: { jitter: 1 } }), InvalidConfigError);
  assert.throws(() => meshConfig({ maxFrameBytes: 100 }), InvalidConfigError);
});

test('connection maker: dial, back off, reset after a long connection, skip connected peers, never redial self', () => {
  const m = new ConnectionMaker({ ...DEFAULT_BACKOFF, jitter: 0 }, () => 0.5);
  const never = () => false;
  const yes = () => true;
  m.addExplicit('192.0.2.1:6783', 0);
  assert.deepEqual(m.due(0, never, yes), ['192.0.2.1:6783']);
  assert.deepEqual(m.due(0, never, yes), [], 'already connecting');
  m.failed('192.0.2.1:6783', 10, 'refused');
  assert.equal(m.nextDeadline(), 2010);
  assert.deepEqual(m.due(2009, never, yes), []);
  assert.deepEqual(m.due(2010, never, yes), ['192.0.2.1:6783']);
  m.failed('192.0.2.1:6783', 2010, 'refused');
  assert.equal(m.nextDeadline(), 5010);
  m.due(5010, never, yes);
  m.connected('192.0.2.1:6783', B, 5020);
  m.disconnected('192.0.2.1:6783', 5030, 'reset');
  assert.equal(m.get('192.0.2.1:6783')!.failures, 3, 'dying right away keeps backing off');
  m.due(20_000, never, yes);
  m.connected('192.0.2.1:6783', B, 20_000);
  m.disconnected('192.0.2.1:6783', 90_000, 'reset');
  assert.equal(m.get('192.0.2.1:6783')!.failures, 1, 'a minute up resets the schedule');
  assert.equal(m.nextDeadline(), 92_000);

  // A peer connected through another connection is not dialed; it is once that one ends.
  assert.deepEqual(m.due(92_000, (p) => p === B, yes), []);
  assert.equal(m.get('192.0.2.1:6783')!.state, 'satisfied');
  m.peerDisconnected(B, 93_000);
  assert.deepEqual(m.due(93_000, never, yes), ['192.0.2.1:6783']);

  // Self: never again.
  m.failed('192.0.2.1:6783', 93_001, 'connection to self', CloseCode.Self);
  assert.equal(m.get('192.0.2.1:6783')!.state, 'self');
  assert.equal(m.nextDeadline(), undefined);

  // Discovered targets wait while we are at the limit, without spinning.
  m.addDiscovered('192.0.2.2:6783', 'cccccccccccccccc', 100_000);
  assert.deepEqual(m.due(100_000, never, () => false), []);
  assert.ok(m.nextDeadline()! > 100_000);
  m.pruneDiscovered(() => false);
  assert.equal(m.get('192.0.2.2:6783'), undefined);
});
