/**
 * Path MTU probe on a real kernel: the switch port of h3 has MTU 1400, so
 * 1500-byte underlay packets to h3 are dropped silently while small ones
 * pass. The probe reports h3 as failing at full size (and why), h2 as fine;
 * the containers show the black hole the probe warns about.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { checkPathMtu } from '../../src/adapters/kernel/overlay-mtu-probe.js';
import { pathMtuTargets } from '../../src/core/dataplane/overlay-mtu.js';
import { execOk } from '../helpers/exec.js';
import { World, canCreateNetns } from '../helpers/world.js';
import { CONTAINER_MTU, type SimWorld, addContainer, buildHosts, inputFor, pingEventually, pingOk, program, rootSnapshot } from './overlay-kit.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

describe('path MTU probe', { skip }, () => {
  const world = new World();
  let sim: SimWorld;
  let root = '';

  before(async () => {
    root = await rootSnapshot();
    sim = await buildHosts(world, 3, 'om');
    for (let i = 1; i <= 3; i++) await addContainer(sim, sim.hosts[i - 1]!, i);
    await execOk('ip', ['link', 'set', 'dev', 'u3', 'mtu', '1400'], { netns: sim.sw.name });
  });
  after(async () => {
    await world.cleanup();
    assert.equal(await rootSnapshot(), root, 'the root netns is unchanged');
  });

  const h = (i: number) => sim.hosts[i - 1]!;
  const c = (i: number) => sim.containers[i - 1]!;

  test('a peer behind a 1400-byte link fails at full size (1500), with the reason; a clean path passes', { timeout: 30_000 }, async () => {
    const plan = await program(h(1), inputFor(sim, h(1)));
    const targets = pathMtuTargets(plan.routes, CONTAINER_MTU);
    assert.deepEqual(targets.map((t) => `${t.peer}:${t.size}`), ['h2:1500', 'h3:1500']);
    const t0 = Date.now();
    const results = await h(1).overlay.checkPathMtu(targets);
    assert.deepEqual(results.map((r) => ({ peer: r.peer, ok: r.ok, size: r.size })), [{ peer: 'h2', ok: true, size: 1500 }, { peer: 'h3', ok: false, size: 1500 }]);
    assert.match(results[1]!.error!, /packets of 1500 bytes with DF set do not reach 192\.0\.2\.3 \(small ones do\): the path MTU is below 1500/);
    assert.ok(results.every((r) => r.checkedAt >= t0 && r.address === `192.0.2.${r.peer.slice(1)}`));
  });

  test('the black hole is real: small container packets to h3 pass, full-size ones with DF do not', { timeout: 30_000 }, async () => {
    await program(h(3), inputFor(sim, h(3)));
    await program(h(2), inputFor(sim, h(2)));
    assert.ok(await pingEventually(c(1), c(3).ip));
    assert.equal(await pingOk(c(1), c(3).ip, { size: 1422, df: true, count: 2 }), false);
    assert.ok(await pingOk(c(1), c(2).ip, { size: 1422, df: true, count: 2 }));
  });

  test('an unreachable peer and a size above the local MTU are told apart from a path MTU problem', { timeout: 30_000 }, async () => {
    const [gone, big] = await checkPathMtu([
      { peer: 'hx', address: '192.0.2.99', size: 1500 },
      { peer: 'h2', address: '192.0.2.2', size: 1600 },
    ], { netns: h(1).ns.path });
    assert.equal(gone!.ok, false);
    assert.match(gone!.error!, /192\.0\.2\.99 does not answer ping on the underlay/);
    assert.equal(big!.ok, false);
    assert.match(big!.error!, /local route to 192\.0\.2\.2 has MTU 1500, below 1600/);
  });
});
