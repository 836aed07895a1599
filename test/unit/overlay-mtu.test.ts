import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_PATH_MTU_POLICY, duePathMtuProbes, mergePathMtuResults, pathMtuTargets, pathMtuVerdict, pingPayloadFor,
} from '../../src/core/dataplane/overlay-mtu.js';
import type { PathMtuResult } from '../../src/core/dataplane/overlay-types.js';

const T0 = 1_700_000_000_000;

test('targets: direct peers only, full encapsulated size per family, sorted', () => {
  const t = pathMtuTargets([
    { peer: 'c', ip: '192.0.2.3', nextHop: '192.0.2.3' },
    { peer: 'b', ip: 'fd00::2', nextHop: 'fd00::2' },
    { peer: 'd', ip: '192.0.2.4', nextHop: '192.0.2.3', via: 'c' },
  ], 1450);
  assert.deepEqual(t, [
    { peer: 'b', address: 'fd00::2', size: 1520 },
    { peer: 'c', address: '192.0.2.3', size: 1500 },
  ]);
});

test('ping payload for an IP packet size', () => {
  assert.equal(pingPayloadFor(1500, 4), 1472);
  assert.equal(pingPayloadFor(1500, 6), 1452);
});

const targets = [
  { peer: 'b', address: '192.0.2.2', size: 1500 },
  { peer: 'c', address: '192.0.2.3', size: 1500 },
  { peer: 'd', address: '192.0.2.4', size: 1500 },
];
const res = (peer: string, ok: boolean, checkedAt: number, over: Partial<PathMtuResult> = {}): PathMtuResult => ({
  peer, address: targets.find((t) => t.peer === peer)!.address, size: 1500, ok, checkedAt, ...over,
});

test('due: never-checked first, failed ones after failIntervalMs, passing ones after okIntervalMs', () => {
  assert.deepEqual(duePathMtuProbes(targets, [], T0).map((t) => t.peer), ['b', 'c', 'd']);
  const results = [res('b', true, T0), res('c', false, T0), res('d', true, T0 - DEFAULT_PATH_MTU_POLICY.okIntervalMs)];
  assert.deepEqual(duePathMtuProbes(targets, results, T0).map((t) => t.peer), ['d']);
  assert.deepEqual(duePathMtuProbes(targets, results, T0 + 30_000).map((t) => t.peer), ['d', 'c']);
  assert.deepEqual(duePathMtuProbes(targets, results, T0 + 600_000).map((t) => t.peer), ['d', 'b', 'c']);
});

test('due: a changed address or size is probed at once; a clock that went back too', () => {
  const results = [res('b', true, T0, { size: 1400 }), res('c', true, T0, { address: '192.0.2.99' }), res('d', true, T0 + 3_600_000)];
  assert.deepEqual(duePathMtuProbes(targets, results, T0 + 1).map((t) => t.peer), ['b', 'c', 'd']);
});

test('due: at most maxPerRound, oldest first', () => {
  const results = [res('b', true, T0 - 900_000), res('c', true, T0 - 2_000_000), res('d', true, T0 - 700_000)];
  assert.deepEqual(duePathMtuProbes(targets, results, T0, { ...DEFAULT_PATH_MTU_POLICY, maxPerRound: 2 }).map((t) => t.peer), ['c', 'b']);
  assert.deepEqual(duePathMtuProbes(targets, results, T0, { ...DEFAULT_PATH_MTU_POLICY, maxPerRound: 0 }), []);
});

test('merge: fresh results win, departed peers are dropped', () => {
  const departed: PathMtuResult = { peer: 'x', address: '192.0.2.9', size: 1500, ok: true, checkedAt: T0 };
  const merged = mergePathMtuResults([res('b', true, T0), res('c', true, T0), departed], [res('c', false, T0 + 5)], targets);
  assert.deepEqual(merged.map((r) => `${r.peer}:${r.ok}`), ['b:true', 'c:false']);
});

test('verdict: ok; local MTU too small; path MTU too small; peer unreachable', () => {
  const t = targets[0]!;
  assert.deepEqual(pathMtuVerdict(t, { code: 0, stdout: '', stderr: '' }, undefined, T0), { peer: 'b', address: '192.0.2.2', size: 1500, checkedAt: T0, ok: true });
  const local = pathMtuVerdict(t, { code: 1, stdout: '', stderr: 'ping: local error: message too long, mtu=1400\n' }, undefined, T0);
  assert.equal(local.ok, false);
  assert.match(local.error!, /local route .* MTU 1400, below 1500/);
  const path = pathMtuVerdict(t, { code: 1, stdout: '2 packets transmitted, 0 received, 100% packet loss', stderr: '' }, { code: 0, stdout: '', stderr: '' }, T0);
  assert.match(path.error!, /path MTU is below 1500/);
  const down = pathMtuVerdict(t, { code: 1, stdout: '', stderr: '' }, { code: 1, stdout: 'From 192.0.2.1 icmp_seq=1 Destination Host Unreachable', stderr: '' }, T0);
  assert.match(down.error!, /does not answer ping on the underlay \(From 192\.0\.2\.1 icmp_seq=1 Destination Host Unreachable\)/);
});
