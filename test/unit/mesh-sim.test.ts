import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MeshConfigInput } from '../../src/core/mesh/config.js';
import { simAddress, type SimNetwork } from '../../src/core/mesh/sim/sim-network.js';
import { buildNetwork, converged, simulateConvergence, type SimApp } from '../../src/core/mesh/sim/simulate.js';

/**
 * Whole meshes in one process over the in-memory transport, in virtual
 * time: convergence under loss, partitions that heal, routers killed and
 * restarted. Each run replays exactly from its seed.
 */

const FAST: MeshConfigInput = {
  heartbeatIntervalMs: 1000, deadAfterMs: 3000, gossipIntervalMs: 5000, unreachableRemoveAfterMs: 60_000, backoff: { initialMs: 500, maxMs: 4000 },
};

function keysEverywhere(sim: SimNetwork<SimApp>, key: string): boolean {
  return sim.alive().every((n) => n.app.map.get(key) !== undefined);
}

test('100 routers with 2 % frame loss and reordering converge: same topology, everyone reachable, same map', () => {
  const sim = buildNetwork({ peers: 100, seed: 7, loss: 0.02, link: { reorder: 0.05, delayMinMs: 1, delayMaxMs: 20 }, config: FAST });
  const took = sim.runUntil(() => converged(sim, 100), { maxMs: 120_000, checkEveryMs: 100 });
  assert.ok(took !== undefined, 'converged');
  const first = sim.alive()[0]!;
  assert.equal(first.router.freshRoutes().members.length, 100);
  assert.equal(first.app.map.entries().length, 100);
  // A write after convergence reaches everyone through the broadcast tree.
  first.app.map.set('late', 'news');
  sim.poke(first.spec.address);
  assert.ok(sim.runUntil(() => keysEverywhere(sim, 'late'), { maxMs: 30_000, checkEveryMs: 20 }) !== undefined);
  for (const n of sim.alive()) assert.equal(n.router.getStats().protocolErrors, 0, 'loss and reordering are not protocol errors');
});

test('a partition splits the mesh, each side keeps working, and after healing everything converges', () => {
  const n = 24;
  const sim = buildNetwork({ peers: n, seed: 3, config: FAST });
  assert.ok(sim.runUntil(() => converged(sim, n), { maxMs: 60_000 }) !== undefined, 'initial convergence');
  const left = Array.from({ length: n / 2 }, (_, i) => simAddress(i));
  const right = Array.from({ length: n / 2 }, (_, i) => simAddress(i + n / 2));
  sim.partition(left, right);
  // Heartbeats time out across the cut (3 s) and each side soon sees only itself.
  const split = sim.runUntil(() => sim.alive().every((x) => x.router.freshRoutes().members.length === n / 2), { maxMs: 10_000, checkEveryMs: 100 });
  assert.ok(split !== undefined && split >= 3000, `each side sees only itself after the dead timer (${split} ms)`);
  // Both sides keep accepting writes.
  sim.node(left[0]!).app.map.set('left', 'L');
  sim.node(right[0]!).app.map.set('right', 'R');
  sim.poke(left[0]!);
  sim.poke(right[0]!);
  sim.run(2000);
  assert.ok(left.every((a) => sim.node(a).app.map.get('left') === 'L'));
  assert.ok(right.every((a) => sim.node(a).app.map.get('left') === undefined));
  sim.heal();
  const took = sim.runUntil(() => converged(sim, n) && keysEverywhere(sim, 'left') && keysEverywhere(sim, 'right'), { maxMs: 60_000 });
  assert.ok(took !== undefined, 'converged after heal');
  for (const x of sim.alive()) assert.equal(x.router.freshRoutes().members.length, n);
});

test('a router killed (-9) and restarted with the same identity rejoins and catches up', () => {
  const n = 16;
  const sim = buildNetwork({ peers: n, seed: 5, config: FAST });
  assert.ok(sim.runUntil(() => converged(sim, n), { maxMs: 60_000 }) !== undefined);
  const victim = sim.node(simAddress(5));
  const before = victim.router.topologyEntry(victim.spec.peer)!.version;
  sim.kill(victim.spec.address);
  sim.run(2000);
  const other = sim.node(simAddress(0));
  assert.equal(other.router.status().peers.find((p) => p.peer === victim.spec.peer)!.reachable, false, 'the FIN made it unreachable at once');
  // Life goes on without it.
  other.app.map.set('while-away', 'x');
  sim.poke(other.spec.address);
  sim.run(1000);
  sim.restart(victim.spec.address);
  const took = sim.runUntil(() => converged(sim, n) && keysEverywhere(sim, 'while-away'), { maxMs: 60_000 });
  assert.ok(took !== undefined, 'rejoined');
  const after = victim.router.topologyEntry(victim.spec.peer)!.version;
  assert.ok(after > before, 'its new topology versions win over the ones from before the crash');
  assert.equal(other.router.topologyEntry(victim.spec.peer)!.version, after);
});

test('a router restarted with a clock behind its old versions still wins over its own stale entry', () => {
  const n = 8;
  const sim = buildNetwork({ peers: n, seed: 9, config: FAST });
  assert.ok(sim.runUntil(() => converged(sim, n), { maxMs: 60_000 }) !== undefined);
  const victim = sim.node(simAddress(3));
  const old = victim.router.topologyEntry(victim.spec.peer)!;
  sim.kill(victim.spec.address);
  sim.run(1000);
  // It comes back on a host whose clock reads about zero: its first
  // versions are far below the ones the others still hold for it.
  sim.setClockOffset(victim.spec.address, -sim.now);
  sim.restart(victim.spec.address);
  sim.run(1);
  assert.ok(victim.router.topologyEntry(victim.spec.peer)!.version < old.version);
  const took = sim.runUntil(() => converged(sim, n), { maxMs: 60_000 });
  assert.ok(took !== undefined);
  assert.ok(victim.router.topologyEntry(victim.spec.peer)!.version > old.version);
});

test('simulateConvergence reports virtual time, bytes and messages for the benchmark', () => {
  const r = simulateConvergence({ peers: 30, loss: 0, seed: 2 });
  assert.equal(r.converged, true);
  assert.equal(r.peers, 30);
  assert.ok(r.virtualMs > 0 && r.virtualMs < 60_000);
  assert.ok(r.bytes > 0 && r.messages > 0);
  assert.ok(r.connections >= 29);
  const again = simulateConvergence({ peers: 30, loss: 0, seed: 2 });
  assert.deepEqual({ ...again, wallMs: 0 }, { ...r, wallMs: 0 }, 'replays exactly from the seed');
});
