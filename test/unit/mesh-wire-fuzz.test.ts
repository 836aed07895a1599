import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MeshProtocolError } from '../../src/core/errors.js';
import { tryParsePeerAddress } from '../../src/core/mesh/address.js';
import { clusterFingerprint } from '../../src/core/mesh/cluster-id.js';
import { Connection, type ConnEvent } from '../../src/core/mesh/conn/connection.js';
import { seededRandom } from '../../src/core/mesh/sim/rng.js';
import { FrameDecoder } from '../../src/core/mesh/wire/frame-decoder.js';
import { decodeHello, encodeHello } from '../../src/core/mesh/wire/hello-codec.js';
import { decodeMessage, encodeMessage } from '../../src/core/mesh/wire/message-codec.js';
import type { Message } from '../../src/core/mesh/wire/messages.js';

/**
 * Fuzzing: whatever bytes arrive, the decoders either return a value or
 * throw a MeshProtocolError, never anything else, and the frame decoder
 * never buffers more than it was given.
 */

const A = '0123456789abcdef';
const B = '1111111111111111';
const CLUSTER = clusterFingerprint('10.32.0.0/12');
const ITERATIONS = 3000;

const VALID: Message[] = [
  { kind: 'accept' },
  { kind: 'heartbeat' },
  { kind: 'close', code: 7, reason: 'limit' },
  {
    kind: 'topology', broadcast: { origin: A, dst: B, spanFirst: B, spanLast: A, ttl: 5 },
    entries: [{ peer: A, version: 3, nickname: 'a', address: tryParsePeerAddress('192.0.2.9:6783'), connections: [B] }],
  },
  { kind: 'topology', broadcast: undefined, entries: [{ peer: B, version: 4, baseVersion: 3, added: [A], removed: [] }] },
  { kind: 'topology-request', wantReverse: true, partial: true, digest: [{ peer: A, version: 1 }] },
  { kind: 'gossip', channel: 'ch', payload: Buffer.from('{"c":{}}') },
  { kind: 'gossip-broadcast', envelope: { origin: A, dst: B, spanFirst: B, spanLast: B, ttl: 2 }, channel: 'ch', payload: Buffer.from([1, 2, 3]) },
  { kind: 'gossip-unicast', src: A, dst: B, ttl: 9, channel: 'ch', payload: Buffer.from([4]) },
];

const HELLO = encodeHello({
  minVersion: 1, maxVersion: 1, peer: A, nickname: 'host', cluster: CLUSTER, connSeq: 5, heartbeatMs: 1000, explicit: false, fresh: true,
  address: tryParsePeerAddress('192.0.2.1:6783'), extensions: new Map([[3, Uint8Array.of(1)]]),
});

function randomBytes(rnd: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

/** A valid payload damaged one of several ways: bit flips, cuts, insertions, byte overwrites, splices. */
function mutate(rnd: () => number, p: Buffer): Buffer {
  const b = Buffer.from(p);
  switch (Math.floor(rnd() * 5)) {
    case 0:
      for (let k = 0; k < 1 + rnd() * 3; k++) {
        const i = Math.floor(rnd() * b.length);
        b[i] = b[i]! ^ (1 << Math.floor(rnd() * 8));
      }
      return b;
    case 1:
      return b.subarray(0, Math.floor(rnd() * b.length));
    case 2: {
      const at = Math.floor(rnd() * (b.length + 1));
      return Buffer.concat([b.subarray(0, at), randomBytes(rnd, 1 + Math.floor(rnd() * 8)), b.subarray(at)]);
    }
    case 3:
      b[Math.floor(rnd() * b.length)] = [0, 0xff, 0x7f, 0x80][Math.floor(rnd() * 4)]!;
      return b;
    default: {
      const other = encodeMessage(VALID[Math.floor(rnd() * VALID.length)]!, 1 << 20).subarray(4);
      const cut = Math.floor(rnd() * b.length);
      return Buffer.concat([b.subarray(0, cut), other.subarray(Math.floor(rnd() * other.length))]);
    }
  }
}

function onlyProtocolErrors(f: () => unknown, input: Buffer): void {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof MeshProtocolError, `non-protocol error ${String(e)} for ${input.toString('hex')}`);
    assert.match(e.code, /^MESH_/);
  }
}

test('fuzz: random bytes never make the message or hello decoders throw anything but a MeshProtocolError', () => {
  const rnd = seededRandom(42);
  for (let i = 0; i < ITERATIONS; i++) {
    const b = randomBytes(rnd, Math.floor(rnd() * 80));
    onlyProtocolErrors(() => decodeMessage(b, 1), b);
    onlyProtocolErrors(() => decodeHello(b), b);
    // Random bytes that start like a real message reach deeper into the decoders.
    if (b.length > 0) {
      b[0] = [0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x20, 0x21, 0x22][Math.floor(rnd() * 9)]!;
      onlyProtocolErrors(() => decodeMessage(b, 1), b);
    }
  }
});

test('fuzz: mutated valid frames decode or fail with a MeshProtocolError', () => {
  const rnd = seededRandom(7);
  const payloads = VALID.map((m) => encodeMessage(m, 1 << 20).subarray(4));
  const hello = HELLO.subarray(4);
  for (let i = 0; i < ITERATIONS; i++) {
    const m = mutate(rnd, payloads[i % payloads.length]!);
    onlyProtocolErrors(() => decodeMessage(m, 1), m);
    const h = mutate(rnd, hello);
    onlyProtocolErrors(() => decodeHello(h), h);
  }
});

test('fuzz: the frame decoder never holds more than it was given nor throws', () => {
  const rnd = seededRandom(99);
  for (let i = 0; i < 500; i++) {
    const d = new FrameDecoder(256);
    let given = 0;
    for (let k = 0; k < 20; k++) {
      const chunk = rnd() < 0.5 ? randomBytes(rnd, Math.floor(rnd() * 40)) : mutate(rnd, encodeMessage(VALID[k % VALID.length]!, 1 << 20));
      given += chunk.length;
      const out = d.push(chunk);
      assert.ok(d.pendingBytes <= given);
      for (const f of out.frames) assert.ok(f.length >= 1 && f.length <= 256);
      if (out.error) {
        assert.ok(out.error instanceof MeshProtocolError);
        break;
      }
    }
    const e = d.end();
    if (e) assert.ok(e instanceof MeshProtocolError);
  }
});

test('fuzz: a connection fed garbage after a valid handshake closes with a reason and never throws', () => {
  const rnd = seededRandom(1234);
  for (let i = 0; i < 300; i++) {
    const conn = new Connection({
      outbound: false, connSeq: 0, maxFrameBytes: 4096, handshakeTimeoutMs: 1000, deadAfterMs: 3000, now: 0,
      local: { peer: B, nickname: 'b', cluster: CLUSTER, heartbeatMs: 1000, address: undefined, extensions: new Map() },
    });
    conn.start();
    const events: ConnEvent[] = [];
    events.push(...conn.receive(HELLO, 1, () => undefined));
    events.push(...conn.receive(encodeMessage({ kind: 'accept' }, 100), 2, () => undefined));
    assert.equal(conn.state, 'established');
    for (let k = 0; k < 10 && (conn.state as string) !== 'closed'; k++) {
      const chunk = rnd() < 0.3 ? encodeMessage(VALID[Math.floor(rnd() * VALID.length)]!, 4096) : mutate(rnd, encodeMessage(VALID[k % VALID.length]!, 4096));
      events.push(...conn.receive(chunk, 3 + k, () => undefined));
    }
    const closed = events.find((e) => e.type === 'closed');
    if (closed && closed.type === 'closed' && !closed.byPeer) {
      assert.ok(closed.reason.length > 0);
      const sent = events.filter((e) => e.type === 'send');
      assert.ok(sent.length >= 2, 'a CLOSE with the reason was written');
    }
  }
});
