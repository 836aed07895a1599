import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  MeshFrameTooLargeError, MeshMalformedError, MeshProtocolError, MeshTruncatedError, MeshVersionError,
} from '../../src/core/errors.js';
import { tryParsePeerAddress } from '../../src/core/mesh/address.js';
import { clusterFingerprint } from '../../src/core/mesh/cluster-id.js';
import { FRAME_HEADER_BYTES, Kind, MAX_HELLO_BYTES } from '../../src/core/mesh/wire/constants.js';
import { FrameDecoder } from '../../src/core/mesh/wire/frame-decoder.js';
import { decodeHello, encodeHello, negotiateVersion } from '../../src/core/mesh/wire/hello-codec.js';
import { decodeMessage, encodeMessage, encodeTopologyFrames } from '../../src/core/mesh/wire/message-codec.js';
import type { Hello, Message, TopologyEntry } from '../../src/core/mesh/wire/messages.js';

const A = '0123456789abcdef';
const B = '1111111111111111';
const C = 'fedcba9876543210';
const CLUSTER = clusterFingerprint('10.32.0.0/12');

function hello(over: Partial<Hello> = {}): Hello {
  return {
    minVersion: 1, maxVersion: 1, peer: A, nickname: 'host-a', cluster: CLUSTER, connSeq: 1_700_000_000_123,
    heartbeatMs: 30_000, explicit: true, fresh: false, address: tryParsePeerAddress('192.0.2.1:6783'), extensions: new Map(), ...over,
  };
}

/** Strips the 4-byte length header of an encoded frame. */
const payload = (frame: Buffer): Buffer => frame.subarray(FRAME_HEADER_BYTES);

const entry = (peer: string, version: number, connections: string[]): TopologyEntry => ({
  peer, version, nickname: `n-${peer.slice(0, 4)}`, address: tryParsePeerAddress('[2001:db8::1]:7000'), connections,
});

const SAMPLE_MESSAGES: Message[] = [
  { kind: 'accept' },
  { kind: 'heartbeat' },
  { kind: 'close', code: 2, reason: 'duplicate connection ✓' },
  { kind: 'topology', broadcast: undefined, entries: [entry(A, 5, [B, C]), entry(B, 7, [])] },
  {
    kind: 'topology',
    broadcast: { origin: A, dst: B, spanFirst: B, spanLast: C, ttl: 9 },
    entries: [{ peer: A, version: 9, baseVersion: 5, added: [B], removed: [C] }],
  },
  { kind: 'topology-request', wantReverse: true, partial: false, digest: [{ peer: A, version: 3 }, { peer: C, version: 2 ** 53 - 1 }] },
  { kind: 'topology-request', wantReverse: false, partial: true, digest: [{ peer: B, version: 0 }] },
  { kind: 'gossip', channel: 'ipam.ring', payload: Buffer.from([0, 1, 2, 255]) },
  { kind: 'gossip-broadcast', envelope: { origin: C, dst: A, spanFirst: A, spanLast: B, ttl: 64 }, channel: 'dns', payload: Buffer.alloc(0) },
  { kind: 'gossip-unicast', src: A, dst: C, ttl: 1, channel: 'x', payload: Buffer.from('hello') },
];

test('hello round-trips with every field, including extensions and IPv6 addresses', () => {
  const h = hello({ address: tryParsePeerAddress('[2001:db8::7]:6783'), extensions: new Map([[7, Uint8Array.of(1, 2, 3)]]), fresh: true, explicit: false });
  const frame = encodeHello(h);
  assert.equal(frame.readUInt32BE(0), frame.length - 4);
  const back = decodeHello(payload(frame));
  assert.deepEqual({ ...back, cluster: [...back.cluster], extensions: [...back.extensions] }, { ...h, cluster: [...h.cluster], extensions: [...h.extensions] });
  const none = decodeHello(payload(encodeHello(hello({ address: undefined }))));
  assert.equal(none.address, undefined);
});

test('hello: the layout is exactly the documented one (docs/mesh.md)', () => {
  const f = payload(encodeHello(hello({ address: undefined, nickname: 'ab' })));
  const expected = Buffer.concat([
    Buffer.from([0x01]), Buffer.from('WEFT'), Buffer.from([0, 1, 0, 1]), Buffer.from(A, 'hex'), Buffer.from(CLUSTER),
    Buffer.from('0000018bcfe5687b', 'hex'), Buffer.from([0, 0, 0x75, 0x30]), Buffer.from([0x01]), Buffer.from([2]), Buffer.from('ab'),
    Buffer.from([0]), Buffer.from([0, 0]),
  ]);
  assert.equal(f.toString('hex'), expected.toString('hex'));
});

test('every post-handshake message round-trips', () => {
  for (const m of SAMPLE_MESSAGES) {
    const frame = encodeMessage(m, 1 << 20);
    const back = decodeMessage(payload(frame), 1);
    assert.deepEqual(normalize(back), normalize(m), m.kind);
  }
});

function normalize(m: Message): unknown {
  return JSON.parse(JSON.stringify(m, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? [...v] : v)));
}

test('version negotiation picks the highest common version or refuses', () => {
  assert.equal(negotiateVersion({ min: 1, max: 3 }, { min: 2, max: 5 }), 3);
  assert.equal(negotiateVersion({ min: 1, max: 1 }, { min: 1, max: 9 }), 1);
  assert.throws(() => negotiateVersion({ min: 1, max: 1 }, { min: 2, max: 3 }), (e: unknown) => e instanceof MeshVersionError && e.code === 'MESH_VERSION_MISMATCH');
  assert.throws(() => decodeMessage(payload(encodeMessage({ kind: 'heartbeat' }, 100)), 2), MeshVersionError);
});

test('frame decoder: any chunking yields the same frames', () => {
  const frames = SAMPLE_MESSAGES.map((m) => encodeMessage(m, 1 << 20));
  const stream = Buffer.concat(frames);
  for (let seed = 1; seed <= 50; seed++) {
    const d = new FrameDecoder(1 << 20);
    const got: Buffer[] = [];
    let off = 0;
    let r = seed;
    while (off < stream.length) {
      r = (r * 1103515245 + 12345) & 0x7fffffff;
      const n = Math.min(stream.length - off, r % 7);
      const out = d.push(stream.subarray(off, off + n));
      assert.equal(out.error, undefined);
      got.push(...out.frames);
      off += n;
    }
    assert.equal(d.end(), undefined);
    assert.deepEqual(got.map((g) => g.toString('hex')), frames.map((f) => payload(f).toString('hex')));
  }
});

test('frame decoder: an oversized length is refused from its 4-byte header, without buffering for it', () => {
  const d = new FrameDecoder(1024);
  const first = d.push(Buffer.concat([encodeMessage({ kind: 'heartbeat' }, 10), Buffer.from([0xff, 0xff, 0xff, 0xf0])]));
  assert.equal(first.frames.length, 1, 'the good frame before it is still delivered');
  assert.ok(first.error instanceof MeshFrameTooLargeError);
  assert.equal(first.error.code, 'MESH_FRAME_TOO_LARGE');
  assert.equal(d.pendingBytes, 0);
  // Poisoned: nothing more comes out.
  const again = d.push(encodeMessage({ kind: 'heartbeat' }, 10));
  assert.deepEqual(again.frames, []);
  assert.ok(again.error instanceof MeshFrameTooLargeError);
  // Header split across chunks is checked as soon as it is complete.
  const d2 = new FrameDecoder(MAX_HELLO_BYTES);
  assert.equal(d2.push(Buffer.from('GE')).error, undefined);
  assert.ok(d2.push(Buffer.from('T / HTTP/1.1\r\n')).error instanceof MeshFrameTooLargeError, 'an HTTP client is refused at once');
});

test('frame decoder: empty frames are garbage; a stream cut inside a frame is truncated', () => {
  assert.ok(new FrameDecoder(100).push(Buffer.alloc(4)).error instanceof MeshMalformedError);
  const d = new FrameDecoder(100);
  const f = encodeMessage({ kind: 'close', code: 1, reason: 'bye' }, 100);
  assert.equal(d.push(f.subarray(0, f.length - 1)).frames.length, 0);
  const e = d.end();
  assert.ok(e instanceof MeshTruncatedError && e.code === 'MESH_TRUNCATED');
  assert.equal(new FrameDecoder(100).end(), undefined);
});

test('encoder refuses to build a frame over the limit; topology splits across frames instead', () => {
  assert.throws(() => encodeMessage({ kind: 'gossip', channel: 'x', payload: Buffer.alloc(2000) }, 1000), MeshFrameTooLargeError);
  const many: TopologyEntry[] = [];
  for (let i = 1; i <= 300; i++) many.push(entry(i.toString(16).padStart(16, '0'), i, [C]));
  const frames = encodeTopologyFrames(undefined, many, 4096);
  assert.ok(frames.length > 1);
  const seen: string[] = [];
  for (const f of frames) {
    assert.ok(f.length - 4 <= 4096);
    const m = decodeMessage(payload(f), 1);
    assert.equal(m.kind, 'topology');
    if (m.kind === 'topology') for (const e of m.entries) seen.push(e.peer);
  }
  assert.deepEqual(seen, many.map((e) => e.peer));
});

/** Expects decoding `p` to fail with exactly this error class. */
function rejects(p: Buffer, cls: new (...a: never[]) => MeshProtocolError, what: string, decode: (p: Buffer) => unknown = (x) => decodeMessage(x, 1)): void {
  assert.throws(() => decode(p), (e: unknown) => e instanceof cls, what);
}

test('hello: garbage and lies are refused with typed errors', () => {
  const good = payload(encodeHello(hello()));
  const dh = (p: Buffer) => decodeHello(p);
  const mut = (i: number, v: number): Buffer => {
    const b = Buffer.from(good);
    b[i] = v;
    return b;
  };
  rejects(mut(0, Kind.Heartbeat), MeshMalformedError, 'first frame not a hello', dh);
  rejects(mut(1, 0x58), MeshMalformedError, 'bad magic', dh);
  rejects(Buffer.concat([good.subarray(0, 5), Buffer.from([0, 3, 0, 2]), good.subarray(9)]), MeshMalformedError, 'min > max', dh);
  rejects(Buffer.concat([good.subarray(0, 9), Buffer.alloc(8), good.subarray(17)]), MeshMalformedError, 'zero peer ID', dh);
  rejects(Buffer.concat([good, Buffer.from([0])]), MeshMalformedError, 'trailing byte', dh);
  rejects(good.subarray(0, good.length - 1), MeshTruncatedError, 'cut short', dh);
  rejects(good.subarray(0, 3), MeshTruncatedError, 'cut in the magic', dh);
  rejects(payload(encodeHello(hello({ heartbeatMs: 5 }))), MeshMalformedError, 'heartbeat too small', dh);
  const badNick = Buffer.from(payload(encodeHello(hello({ nickname: 'abc' }))));
  badNick.write('a c', 47, 'latin1');
  rejects(badNick, MeshMalformedError, 'nickname with a space', dh);
  badNick.write('\xff\xfe\xfd', 47, 'latin1');
  rejects(badNick, MeshMalformedError, 'nickname not UTF-8', dh);
  const ext = payload(encodeHello(hello({ extensions: new Map([[1, Uint8Array.of(9)], [2, Uint8Array.of(8)]]) })));
  const dupExt = Buffer.from(ext);
  dupExt.writeUInt16BE(1, ext.length - 5);
  rejects(dupExt, MeshMalformedError, 'repeated extension tag', dh);
});

test('messages: garbage, truncation and out-of-range fields are refused with typed errors', () => {
  rejects(Buffer.from([0x7e]), MeshMalformedError, 'unknown kind');
  rejects(Buffer.from([Kind.Hello, 1, 2]), MeshMalformedError, 'a second hello');
  rejects(Buffer.from([Kind.Heartbeat, 0]), MeshMalformedError, 'trailing bytes');
  rejects(Buffer.from([Kind.Close, 0]), MeshTruncatedError, 'truncated close');
  rejects(Buffer.concat([Buffer.from([Kind.Close, 0, 1]), Buffer.from([0x07, 0xd0]), Buffer.alloc(2000)]), MeshMalformedError, 'reason too long');
  rejects(Buffer.from([Kind.Gossip, 3, 0x41, 0x42, 0x43]), MeshMalformedError, 'channel name with capitals');
  rejects(Buffer.from([Kind.Gossip, 9, 0x61]), MeshTruncatedError, 'channel name cut short');
  const uni = payload(encodeMessage({ kind: 'gossip-unicast', src: A, dst: B, ttl: 3, channel: 'x', payload: Buffer.alloc(0) }, 100));
  const zeroTtl = Buffer.from(uni);
  zeroTtl[17] = 0;
  rejects(zeroTtl, MeshMalformedError, 'ttl 0');
  const topo = payload(encodeMessage({ kind: 'topology', broadcast: undefined, entries: [entry(A, 5, [B, C])] }, 1000));
  const swapped = Buffer.from(topo);
  // connections at the end: B then C; swap them so they are not ascending.
  Buffer.from(C, 'hex').copy(swapped, swapped.length - 16);
  Buffer.from(B, 'hex').copy(swapped, swapped.length - 8);
  rejects(swapped, MeshMalformedError, 'connections not ascending');
  const self = Buffer.from(topo);
  Buffer.from(A, 'hex').copy(self, self.length - 8);
  rejects(self, MeshMalformedError, 'connection to itself');
  const hugeCount = Buffer.from(topo);
  hugeCount.writeUInt16BE(0xffff, 2);
  rejects(hugeCount, MeshTruncatedError, 'entry count larger than the frame');
  const bigVersion = Buffer.from(topo);
  bigVersion.writeUInt32BE(0x00200000, 4 + 8);
  rejects(bigVersion, MeshMalformedError, 'version above 2^53');
  rejects(Buffer.from([Kind.TopologyRequest, 4, 0, 0, 0, 0]), MeshMalformedError, 'unknown request flag');
  rejects(Buffer.from([Kind.TopologyRequest, 0, 0xff, 0xff, 0xff, 0xff]), MeshTruncatedError, 'digest count larger than the frame');
  const delta = payload(encodeMessage(SAMPLE_MESSAGES[4]!, 1000));
  const badBase = Buffer.from(delta);
  // kind, flags, 33-byte envelope, count: the item starts at 37; its base version at 37 + 8 + 8 + 1.
  badBase.writeUInt32BE(0, 54);
  badBase.writeUInt32BE(99, 58);
  rejects(badBase, MeshMalformedError, 'delta base not below its version');
});
