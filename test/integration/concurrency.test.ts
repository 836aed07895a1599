/**
 * Many CNI plugin processes at once against one real router: what a node
 * sees when a deployment scales up or down. Every ADD is a real plugin
 * process (dist/weft-cni.cjs) started concurrently; the router runs
 * `weft launch` inside a host netns of the test's World.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { ping } from '../helpers/exec.js';
import { attachments, cniCode, globalAddrs, hostVeths, ipList, linkNames, nftRules, parallel, pooled, resultIp } from '../helpers/robustness.js';
import { TestRouter, weftConf } from '../helpers/router.js';
import { type Netns, World, canCreateNetns, cleanupLeftovers } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

describe('concurrent CNI calls against a real router', { skip }, () => {
  const world = new World();
  let host: Netns;
  let router: TestRouter;

  before(async () => {
    await cleanupLeftovers();
    host = await world.netns('cch');
    router = new TestRouter(world, host, { ipallocRange: '10.77.0.0/24' });
    await router.start();
  });

  after(async () => {
    try { await router?.stop(); } finally { await world.cleanup(); }
  });

  const args = (i: number, tag = 'p'): string => `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${tag}${i}`;

  test('64 parallel ADDs on a /24: distinct addresses, all reach the gateway; 64 parallel DELs leave nothing', async () => {
    const N = 64;
    const conts = await pooled(Array.from({ length: N }, (_, i) => i), 16, () => world.netns('c'));
    const conf = weftConf();

    const t0 = performance.now();
    const adds = await parallel(N, (i) => router.cni({ command: 'ADD', containerId: `par-${i}`, netns: conts[i]!.path, ifname: 'eth0', args: args(i) }, conf));
    const addMs = performance.now() - t0;

    const failed = adds.map((r, i) => ({ i, r })).filter((x) => x.r.code !== 0);
    assert.deepEqual(failed.map((x) => `${x.i}: ${x.r.stdout}${x.r.stderr}`), [], 'every ADD succeeds');
    const ips = adds.map((r) => resultIp(r.json));
    assert.equal(new Set(ips).size, N, `64 distinct addresses: ${ips.join(' ')}`);
    for (const ip of ips) assert.match(ip, /^10\.77\.0\.\d+\/24$/);
    assert.ok(!ips.includes('10.77.0.1/24'), 'the gateway is never handed out');

    // The store agrees with what the runtime was told, and each container has exactly its address.
    const list = await ipList(router);
    assert.equal(list.allocations.length, N);
    assert.deepEqual(new Set(list.allocations.map((a) => `${a.ip}/24`)), new Set(ips));
    const inside = await parallel(N, (i) => globalAddrs(conts[i]!.name, 'eth0'));
    for (let i = 0; i < N; i++) assert.deepEqual(inside[i], [ips[i]], `container ${i} has exactly its address`);
    assert.equal((await hostVeths(host.name)).length, N);

    const t1 = performance.now();
    const pings = await parallel(N, (i) => ping(conts[i]!.name, '10.77.0.1', { count: 1, waitS: 2 }));
    const pingMs = performance.now() - t1;
    assert.deepEqual(pings.map((ok, i) => ok ? -1 : i).filter((i) => i >= 0), [], 'every container pings the gateway');

    const t2 = performance.now();
    const dels = await parallel(N, (i) => router.cni({ command: 'DEL', containerId: `par-${i}`, netns: conts[i]!.path, ifname: 'eth0', args: args(i) }, conf));
    const delMs = performance.now() - t2;
    assert.deepEqual(dels.map((r, i) => r.code === 0 ? '' : `${i}: ${r.stdout}${r.stderr}`).filter(Boolean), [], 'every DEL succeeds');

    assert.deepEqual(await hostVeths(host.name), [], 'no veth left in the host netns');
    assert.deepEqual((await ipList(router)).allocations, [], 'no allocation left');
    assert.deepEqual(await attachments(router), [], 'no attachment left');
    const leftInside = await parallel(N, (i) => linkNames(conts[i]!.name));
    for (let i = 0; i < N; i++) assert.deepEqual(leftInside[i], ['lo'], `container ${i} is back to lo only`);

    console.log(`# 64 parallel ADDs: ${addMs.toFixed(0)} ms; 64 pings: ${pingMs.toFixed(0)} ms; 64 parallel DELs: ${delMs.toFixed(0)} ms`);
    for (const c of conts) await world.deleteNetns(c);
  });

  test('parallel ADDs on a new network, half of them failing after the bridge step: the others keep the bridge and work, the failures leave nothing', async () => {
    // The failing ADDs roll back their share of the bridge while the others are still using it.
    await router.api().post('/v1/subnets', { name: 'mixed', cidr: '10.79.0.0/24' });
    const conf = weftConf({ name: 'mixednet', subnet: 'mixed' });
    const N = 16;
    const notNs = join(world.tempDir('cc-notns'), 'netns');
    writeFileSync(notNs, '');
    const conts = await pooled(Array.from({ length: N }, (_, i) => i), 8, () => world.netns('m'));
    const good = (i: number): boolean => i % 2 === 0;
    const call = (i: number, command: 'ADD' | 'DEL') => router.cni({ command, containerId: `mixed-${i}`, netns: good(i) ? conts[i]!.path : notNs, ifname: 'eth0', args: args(i, 'm') }, conf);
    const res = await parallel(N, (i) => call(i, 'ADD'));
    for (let i = 0; i < N; i++) {
      if (good(i)) assert.equal(res[i]!.code, 0, `ADD ${i}: ${res[i]!.stdout}`);
      else assert.equal(cniCode(res[i]!.json), 4, `ADD ${i} fails with code 4: ${res[i]!.stdout}`);
    }
    const atts = await attachments(router);
    assert.deepEqual(atts.map((a) => a.containerId).sort(), Array.from({ length: N }, (_, i) => i).filter(good).map((i) => `mixed-${i}`).sort());
    assert.equal((await ipList(router, 'mixed')).allocations.length, N / 2);
    assert.equal((await hostVeths(host.name)).length, N / 2);
    const bridge = atts[0]!.bridge!;
    assert.deepEqual(await globalAddrs(host.name, bridge), ['10.79.0.1/24'], 'the bridge is there with its gateway');
    const pings = await parallel(N / 2, (k) => ping(conts[2 * k]!.name, '10.79.0.1', { waitS: 2 }));
    assert.ok(pings.every(Boolean), `every successful container reaches the gateway: ${pings.join(',')}`);
    const dels = await parallel(N, (i) => call(i, 'DEL'));
    assert.ok(dels.every((r) => r.code === 0), dels.map((r) => r.stdout).join(''));
    assert.deepEqual(await hostVeths(host.name), []);
    assert.deepEqual((await ipList(router, 'mixed')).allocations, []);
    for (const c of conts) await world.deleteNetns(c);
  });

  test('parallel ADDs publishing the same host port: exactly one wins, the others get code 105 and leave nothing', async () => {
    const N = 8;
    const conf = weftConf({ capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 9090, containerPort: 80, protocol: 'tcp' }] } });
    const conts = await pooled(Array.from({ length: N }, (_, i) => i), 8, () => world.netns('pm'));
    const call = (i: number, command: 'ADD' | 'DEL') => router.cni({ command, containerId: `pm-${i}`, netns: conts[i]!.path, ifname: 'eth0', args: args(i, 'pm') }, conf);
    const res = await parallel(N, (i) => call(i, 'ADD'));
    const won = res.map((r, i) => (r.code === 0 ? i : -1)).filter((i) => i >= 0);
    assert.equal(won.length, 1, res.map((r) => r.stdout).join(''));
    for (const [i, r] of res.entries()) if (i !== won[0]) assert.equal(cniCode(r.json), 105, r.stdout);
    const atts = await attachments(router);
    assert.deepEqual(atts.map((a) => a.containerId), [`pm-${won[0]}`]);
    assert.equal((await ipList(router)).allocations.length, 1);
    assert.equal((await hostVeths(host.name)).length, 1);
    const dnat = (await nftRules(host.name)).filter((r) => r.includes('"dnat"'));
    assert.equal(dnat.length, 1, `one DNAT rule: ${dnat.join('\n')}`);
    assert.ok(dnat[0]!.includes(`"addr":"${resultIp(res[won[0]!]!.json).split('/')[0]}"`), 'to the winner');
    const dels = await parallel(N, (i) => call(i, 'DEL'));
    assert.ok(dels.every((r) => r.code === 0));
    assert.deepEqual(await nftRules(host.name), [], 'no rule left');
    assert.deepEqual(await hostVeths(host.name), []);
    for (const c of conts) await world.deleteNetns(c);
  });

  test('reconcile passes in a loop during parallel ADDs and DELs on a new network do not disturb them', async () => {
    // The reconciler removes bridges nothing uses; a new network's bridge is "unused" until its first ADD commits.
    await router.api().post('/v1/subnets', { name: 'recon', cidr: '10.76.0.0/24' });
    const conf = weftConf({ name: 'reconnet', subnet: 'recon' });
    const N = 24;
    const conts = await pooled(Array.from({ length: N }, (_, i) => i), 8, () => world.netns('r'));
    const call = (i: number, command: 'ADD' | 'DEL') => router.cni({ command, containerId: `recon-${i}`, netns: conts[i]!.path, ifname: 'eth0', args: args(i, 'r') }, conf);
    let stop = false;
    let passes = 0;
    const errors: string[] = [];
    const reconciling = (async () => {
      while (!stop) {
        const rep = await router.api().post<{ errors: string[] }>('/v1/reconcile');
        errors.push(...rep.errors);
        passes++;
      }
    })();
    try {
      for (let round = 0; round < 2; round++) {
        const adds = await parallel(N, (i) => call(i, 'ADD'));
        assert.deepEqual(adds.map((r, i) => (r.code === 0 ? '' : `${i}: ${r.stdout}`)).filter(Boolean), [], `round ${round}: every ADD succeeds`);
        const pings = await parallel(N, (i) => ping(conts[i]!.name, '10.76.0.1', { waitS: 2 }));
        assert.ok(pings.every(Boolean), `round ${round}: every container reaches the gateway: ${pings.join(',')}`);
        const dels = await parallel(N, (i) => call(i, 'DEL'));
        assert.ok(dels.every((r) => r.code === 0), dels.map((r) => r.stdout).join(''));
      }
    } finally {
      stop = true;
      await reconciling;
    }
    assert.deepEqual(errors, [], 'reconcile passes had no errors');
    assert.ok(passes > 0);
    assert.deepEqual(await hostVeths(host.name), []);
    assert.deepEqual((await ipList(router, 'recon')).allocations, []);
    for (const c of conts) await world.deleteNetns(c);
  });

  test('parallel ADDs racing for the last free addresses: exactly the free ones succeed, the rest get code 100 and leave nothing', async () => {
    // 10.78.0.0/29: .1 is the gateway, .2-.6 are allocatable (5 addresses).
    await router.api().post('/v1/subnets', { name: 'tiny', cidr: '10.78.0.0/29' });
    const conf = weftConf({ name: 'tinynet', subnet: 'tiny' });
    const FIRST = 2;
    const RACERS = 12;
    const FREE = 5 - FIRST;
    const conts = await pooled(Array.from({ length: FIRST + RACERS }, (_, i) => i), 8, () => world.netns('t'));
    const add = (i: number) => router.cni({ command: 'ADD', containerId: `tiny-${i}`, netns: conts[i]!.path, ifname: 'eth0', args: args(i, 't') }, conf);
    const del = (i: number) => router.cni({ command: 'DEL', containerId: `tiny-${i}`, netns: conts[i]!.path, ifname: 'eth0', args: args(i, 't') }, conf);

    for (let i = 0; i < FIRST; i++) assert.equal((await add(i)).code, 0);
    const racers = Array.from({ length: RACERS }, (_, k) => FIRST + k);
    const res = await Promise.all(racers.map((i) => add(i)));
    const won = racers.filter((_, k) => res[k]!.code === 0);
    const lost = racers.filter((_, k) => res[k]!.code !== 0);
    assert.equal(won.length, FREE, `exactly ${FREE} racers win: ${res.map((r) => r.stdout.trim()).join('\n')}`);
    for (const i of lost) {
      const r = res[racers.indexOf(i)]!;
      assert.equal(r.code, 1);
      assert.equal(cniCode(r.json), 100, `a loser gets SUBNET_EXHAUSTED (100): ${r.stdout}`);
    }
    const winnerIps = won.map((i) => resultIp(res[racers.indexOf(i)]!.json));
    assert.equal(new Set(winnerIps).size, FREE);

    // The losers left nothing: no interface in their netns, no veth, no allocation, no attachment.
    for (const i of lost) assert.deepEqual(await linkNames(conts[i]!.name), ['lo'], `loser ${i} has no interface`);
    assert.equal((await hostVeths(host.name)).length, 5);
    const allocs = (await ipList(router, 'tiny')).allocations;
    assert.equal(allocs.length, 5);
    assert.deepEqual(new Set(allocs.map((a) => a.containerId)), new Set([0, 1, ...won].map((i) => `tiny-${i}`)));
    const atts = await attachments(router);
    assert.deepEqual(new Set(atts.map((a) => a.containerId)), new Set([0, 1, ...won].map((i) => `tiny-${i}`)));
    assert.ok(atts.every((a) => a.state === 'ready'));
    const subnet = await router.api().get<{ inUse: number; capacity: string }>('/v1/subnets/tiny');
    assert.equal(subnet.inUse, 5);
    assert.equal(subnet.capacity, '0');

    // A runtime DELs after a failed ADD: that must succeed and not touch the winners.
    const lostDels = await Promise.all(lost.map((i) => del(i)));
    assert.ok(lostDels.every((r) => r.code === 0), lostDels.map((r) => r.stdout).join('\n'));
    assert.equal((await ipList(router, 'tiny')).allocations.length, 5);
    for (const i of won) assert.equal(await ping(conts[i]!.name, '10.78.0.1'), true, `winner ${i} reaches the gateway`);

    const dels = await Promise.all([0, 1, ...won].map((i) => del(i)));
    assert.ok(dels.every((r) => r.code === 0));
    assert.deepEqual(await hostVeths(host.name), []);
    assert.deepEqual((await ipList(router)).allocations, []);
    assert.deepEqual(await attachments(router), []);
    for (const c of conts) await world.deleteNetns(c);
  });
});
