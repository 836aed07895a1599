/**
 * Partial connectivity (docs/overlay.md "Relay"): h1 and h3 cannot reach
 * each other on the underlay (the test's switch drops their traffic), both
 * reach h2. With "h3 via h2" / "h1 via h2" in the plans, containers on h1
 * and h3 talk through h2's relay device, in the kernel. Broadcasts stay
 * bounded, and hosts with inconsistent views of where a MAC lives do not
 * loop frames between them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { vxlanNameFor, vxlanRelayNameFor } from '../../src/core/dataplane/names.js';
import { execOk } from '../helpers/exec.js';
import { World, canCreateNetns } from '../helpers/world.js';
import {
  NETWORK, type SimWorld, addContainer, buildHosts, inputFor, linkPackets, pingEventually, pingOk, program, rootSnapshot, tcpRoundTrip,
} from './overlay-kit.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

describe('overlay relay through a third host', { skip }, () => {
  const world = new World();
  let sim: SimWorld;
  let root = '';

  before(async () => {
    root = await rootSnapshot();
    sim = await buildHosts(world, 3, 'or');
    for (let i = 1; i <= 3; i++) await addContainer(sim, sim.hosts[i - 1]!, i);
    // the test's own switch drops everything between h1 and h3
    await execOk('nft', ['-f', '-'], {
      netns: sim.sw.name,
      input: 'table bridge partition {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n    iifname "u1" oifname "u3" drop\n    iifname "u3" oifname "u1" drop\n  }\n}\n',
    });
  });
  after(async () => {
    await world.cleanup();
    assert.equal(await rootSnapshot(), root, 'the root netns is unchanged');
  });

  const c = (i: number) => sim.containers[i - 1]!;
  const h = (i: number) => sim.hosts[i - 1]!;
  const consistent = async (): Promise<void> => {
    await program(h(1), inputFor(sim, h(1), { via: { h3: 'h2' } }));
    await program(h(2), inputFor(sim, h(2)));
    await program(h(3), inputFor(sim, h(3), { via: { h1: 'h2' } }));
  };
  const relayCounters = async () => (await h(2).overlay.read()).counters;

  test('the underlay is partitioned: h1 reaches h2 but not h3', async () => {
    assert.ok(await pingOk(h(1).ns, h(2).ip));
    assert.ok(await pingOk(h(3).ns, h(2).ip));
    assert.equal(await pingOk(h(1).ns, h(3).ip), false);
  });

  test('h1 and h3 containers talk through h2 (ping, full-size DF ping, TCP)', { timeout: 60_000 }, async () => {
    await consistent();
    assert.ok(await pingEventually(c(1), c(3).ip), 'c1 -> c3');
    assert.ok(await pingEventually(c(3), c(1).ip), 'c3 -> c1');
    assert.ok(await pingOk(c(1), c(2).ip) && await pingOk(c(3), c(2).ip), 'direct peers still direct');
    assert.ok(await pingOk(c(1), c(3).ip, { size: 1422, df: true, count: 2 }), 'full-size frames cross the relay');
    assert.equal(await tcpRoundTrip(sim, c(3), c(1), 7201), 'pong:200000');
    const k = await relayCounters();
    assert.ok(k.relayed > 10, `h2 relayed ${k.relayed} frames`);
    assert.equal(k.relayLoopDrops, 0);
    // h1 sends h3's frames on its relay device, to h2
    const st = (await h(1).overlay.read()).state;
    assert.deepEqual(st.fdb.filter((e) => e.mac === c(3).mac), [{ dev: vxlanRelayNameFor(NETWORK), mac: c(3).mac, dst: h(2).ip, permanent: true }]);
  });

  test('broadcasts do not storm: each host sees a bounded number of packets', { timeout: 30_000 }, async () => {
    const ports = ['u1', 'u2', 'u3'];
    const before = await Promise.all(ports.map((p) => linkPackets(sim.sw, p)));
    // 15 broadcast pings from a host's container, and from the relay host's container
    await pingOk(c(1), '10.77.0.255', { broadcast: true, count: 15, waitS: 1 });
    await pingOk(c(2), '10.77.0.255', { broadcast: true, count: 15, waitS: 1 });
    await new Promise((r) => setTimeout(r, 1000));
    const after = await Promise.all(ports.map((p) => linkPackets(sim.sw, p)));
    const delta = after.map((a, i) => a - before[i]!);
    // c1's 15 go to h2 once each; c2's 15 go to h1 and h3 once each: ~30 per port. A loop would be thousands.
    for (const [i, d] of delta.entries()) assert.ok(d < 150, `${ports[i]}: ${d} packets`);
    assert.ok(delta[1]! >= 15, `the broadcasts did cross the underlay (${delta[1]} packets on u2)`);
    assert.equal((await relayCounters()).groupDrops, 0, 'no group-addressed frame even tried to re-enter the overlay');
  });

  test('inconsistent views (h1: "c3 lives on h2", h2: "h3 via h1") do not loop frames between hosts', { timeout: 30_000 }, async () => {
    const stale = sim.containers.map((x) => ({ network: NETWORK, peer: x === c(3) ? 'h2' : x.host.name, mac: x.mac, ips: [x.ip] }));
    await program(h(1), inputFor(sim, h(1), { via: { h3: 'h2' }, endpoints: stale }));
    await program(h(2), inputFor(sim, h(2), { via: { h3: 'h1' } }));
    const drops0 = (await relayCounters()).relayLoopDrops;
    const before = await linkPackets(sim.sw, 'u2');
    assert.equal(await pingOk(c(1), c(3).ip, { count: 5, waitS: 1 }), false);
    await new Promise((r) => setTimeout(r, 1000));
    const delta = (await linkPackets(sim.sw, 'u2')) - before;
    assert.ok(delta < 60, `${delta} packets on h2's underlay port (a loop would be ~100k/s)`);
    assert.ok((await relayCounters()).relayLoopDrops > drops0, 'h2 dropped the frame that would have gone back into the overlay');
    // the reverse inconsistency: both relay devices point at each other
    await program(h(1), inputFor(sim, h(1), { via: { h3: 'h2' } }));
    const before2 = await linkPackets(sim.sw, 'u2');
    assert.equal(await pingOk(c(1), c(3).ip, { count: 5, waitS: 1 }), false);
    await new Promise((r) => setTimeout(r, 1000));
    const delta2 = (await linkPackets(sim.sw, 'u2')) - before2;
    assert.ok(delta2 < 60, `${delta2} packets on u2`);
    await consistent();
    assert.ok(await pingEventually(c(1), c(3).ip), 'consistent again: works');
  });

  test('with relaying off (no nftables bridge filtering) relayed peers are reported, not programmed', async () => {
    const plan = await program(h(1), inputFor(sim, h(1), { via: { h3: 'h2' } }), false);
    assert.deepEqual(plan.notes.map((n) => n.code), ['RELAY_DISABLED']);
    const st = (await h(1).overlay.read()).state;
    assert.deepEqual(st.devices.map((d) => d.name), [vxlanNameFor(NETWORK)]);
    assert.equal(st.filter, null);
    assert.equal(await pingOk(c(1), c(3).ip), false);
    assert.ok(await pingOk(c(1), c(2).ip));
    await consistent();
    assert.ok(await pingEventually(c(1), c(3).ip));
  });
});
