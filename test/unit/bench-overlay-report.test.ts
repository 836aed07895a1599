import assert from 'node:assert/strict';
import { test } from 'node:test';
import { overlayTargets } from '../../bench/overlay-report.js';
import type { OverlayResults, SystemSamples } from '../../bench/overlay.js';

const tcp = (gbps: number) => ({ gbps, retransmits: 0, busyCpus: 1, load1: 1 });
const sp = (p50Us: number) => ({ p50Us, p99Us: p50Us * 2, avgUs: p50Us, tps: 1e6 / p50Us, load1: 1 });

function samples(tcp1: number[], tcp4: number[], rtt: number[]): SystemSamples {
  return { tcp1: tcp1.map(tcp), tcp4: tcp4.map(tcp), ping: [], sockperf: rtt.map(sp) };
}

function results(s: OverlayResults['samples']): OverlayResults {
  return {
    config: { systems: Object.keys(s) as OverlayResults['config']['systems'], reps: 3, seconds: 10, pings: 10, warm: 0, sockperfSeconds: 1 },
    sockperf: true, pinning: { client: '0', server: '1' }, samples: s, order: [], routersBackground: { routers: 0, cpuMsPerSecond: 0 },
  };
}

test('overlay targets: the verdict is the median of same-round ratios, not the ratio of medians', () => {
  // The machine slows down in round 2 for both; weft is at parity within every round.
  const r = results({
    weft: samples([10, 5, 9.6], [10, 10, 10], [40, 80, 41]),
    hand: samples([10, 5.1, 10], [10, 10, 10], [40, 80, 40]),
  });
  const t = overlayTargets(r);
  assert.equal(t.length, 3);
  const [t1, t4, lat] = t;
  assert.match(t1!.name, /TCP 1 stream, hosts without br_netfilter: weft >= 0.95x hand/);
  assert.equal(t1!.met, true, t1!.measured); // same-round 1/0.98/0.96 -> 0.98, although the medians say 9.6/10 = 0.96
  assert.match(t1!.measured, /median of same-round ratios 0\.98x \(1\/0\.98\/0\.96\)/);
  assert.equal(t4!.met, true);
  assert.equal(lat!.met, true, lat!.measured); // hand/weft per round 1/1/0.98
  // A real gap in every round is a miss.
  const slow = overlayTargets(results({ weft: samples([8, 4, 8], [8, 8, 8], [50, 90, 50]), hand: samples([10, 5, 10], [10, 10, 10], [40, 80, 40]) }));
  assert.deepEqual(slow.map((x) => x.met), [false, false, false]);
});

test('overlay targets: each like-for-like pair is judged; nothing to judge says so', () => {
  const both = overlayTargets(results({
    weft: samples([10, 10, 10], [10, 10, 10], [40, 40, 40]), hand: samples([10, 10, 10], [10, 10, 10], [40, 40, 40]),
    'weft-brnf': samples([7, 7, 7], [7, 7, 7], [50, 50, 50]), 'hand-brnf': samples([10, 10, 10], [10, 10, 10], [40, 40, 40]),
  }));
  assert.equal(both.length, 6);
  assert.deepEqual(both.map((x) => x.met), [true, true, true, false, false, false]);
  assert.match(both[3]!.name, /hosts with br_netfilter: weft-brnf >= 0.95x hand-brnf/);
  const none = overlayTargets(results({ weft: samples([1], [1], [1]) }));
  assert.equal(none.length, 1);
  assert.equal(none[0]!.met, undefined);
});
