/**
 * The crash loop: several workers run ADDs and DELs the way a runtime does
 * while the router is killed with SIGKILL at random moments (at least 50
 * times) and restarted each time. Workers treat a failure while the router
 * is down as expected and, like a runtime, DEL after a failed ADD (retrying
 * until the router answers). Some containers also vanish without a DEL.
 *
 * At the end the router is restarted, a CNI GC and a reconcile run, and the
 * test asserts invariants only (never timings):
 *  - no address is allocated twice, nor present in two containers;
 *  - every allocation belongs to a ready attachment whose netns exists;
 *  - every container the workers believe attached has exactly its address;
 *  - containers believed detached have no interface but lo;
 *  - host veths and attachments match one to one.
 *
 * The schedule is random but seeded: a failure prints the seed, and
 * WEFT_CRASH_SEED=<seed> replays the same random stream (how it interleaves
 * with the router still depends on timing, which is why only invariants are
 * asserted).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { hostIfnameFor } from '../../src/core/dataplane/names.js';
import { ping } from '../helpers/exec.js';
import { attachments, globalAddrs, hostVeths, ipList, linkNames, nftRules, resultIp, rng, sleep } from '../helpers/robustness.js';
import { type CniOutcome, TestRouter, weftConf } from '../helpers/router.js';
import { type Netns, World, canCreateNetns, cleanupLeftovers } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

// WEFT_CRASH_KILLS only for local debugging; the suite runs 50.
const KILLS = Number(process.env.WEFT_CRASH_KILLS ?? 50);
const WORKERS = 4;
const SLOTS_PER_WORKER = 5;
const SEED = Number(process.env.WEFT_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** True when something accepts connections on the unix socket. */
function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

interface Slot {
  ns: Netns;
  id: string;
  /** What the runtime believes: attached (with the address ADD returned), detached, or "a call failed; DEL until it succeeds". */
  state: 'detached' | 'attached' | 'dirty';
  ip?: string;
}

describe('crash loop: SIGKILL at random moments during ADD/DEL traffic', { skip }, () => {
  const world = new World();
  let host: Netns;
  let router: TestRouter;
  // Masquerade and one published port per container (a fresh port for every new container), so the
  // nftables table has to follow the crashes too.
  const conf = weftConf({ ipMasq: true, capabilities: { portMappings: true } });
  const hostPort = (s: Slot): number => 20000 + Number(s.id.slice('crash-'.length));

  before(async () => {
    await cleanupLeftovers();
    host = await world.netns('crh');
    router = new TestRouter(world, host, { ipallocRange: '10.90.0.0/24' });
    await router.start();
  });

  after(async () => {
    try { await router?.stop(); } finally { await world.cleanup(); }
  });

  test(`${KILLS} kills under ${WORKERS} concurrent workers leave a consistent store and kernel`, { timeout: 360_000 }, async (t) => {
    t.after(() => { if (process.env.WEFT_CRASH_LOG) console.log(router.log); });
    t.diagnostic(`seed ${SEED} (replay with WEFT_CRASH_SEED=${SEED})`);
    const random = rng(SEED);
    const stats = { restartMs: 0, okCalls: 0, interrupted: 0, adds: 0, addOk: 0, dels: 0, delOk: 0, vanished: 0, restarts: 0, codes: new Map<number, number>() };
    const unexpected: string[] = [];
    /** Distinct TRY_AGAIN messages, for the diagnostics. */
    const tryAgain = new Set<string>();
    let stopping = false;
    let serial = 0;

    const call = (s: Slot, command: 'ADD' | 'DEL'): Promise<CniOutcome> =>
      router.cni({ command, containerId: s.id, netns: s.ns.path, ifname: 'eth0', args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=crash;K8S_POD_NAME=${s.id}` },
        { ...conf, runtimeConfig: { portMappings: [{ hostPort: hostPort(s), containerPort: 80, protocol: 'tcp' }] } });
    const noteFailure = (s: Slot, command: string, r: CniOutcome): void => {
      const code = typeof r.json?.code === 'number' ? r.json.code : -1;
      stats.codes.set(code, (stats.codes.get(code) ?? 0) + 1);
      // 11 (try again) is what a runtime sees while the router is down or restarting;
      // anything else would be the router failing on state a crash left behind.
      if (code !== 11) unexpected.push(`${command} ${s.id}: ${r.stdout.trim()} ${r.stderr.trim()}`);
      else if (tryAgain.size < 8) tryAgain.add(String(r.json?.msg).replace(/crash-\d+/g, 'crash-N'));
      if (/closed the connection/.test(String(r.json?.msg))) stats.interrupted++;
    };
    const freshSlot = async (s: Slot): Promise<void> => {
      s.ns = await world.netns('cr');
      s.id = `crash-${++serial}`;
      s.state = 'detached';
      delete s.ip;
    };

    // After a failure a runtime retries once the router is back. Waiting for the socket to accept
    // (cheap, in-process) instead of spawning plugin after plugin keeps the CPUs for the router.
    const backoff = async (): Promise<void> => {
      await sleep(20 + Math.floor(random() * 200));
      while (!stopping && !(await socketAccepts(router.socket))) await sleep(50);
    };

    /** DEL until it succeeds (the router may be down): what a runtime does after a failed call. */
    const cleanUp = async (s: Slot): Promise<void> => {
      for (;;) {
        stats.dels++;
        const r = await call(s, 'DEL');
        if (r.code === 0) { stats.okCalls++; stats.delOk++; s.state = 'detached'; delete s.ip; return; }
        noteFailure(s, 'DEL', r);
        await backoff();
      }
    };

    const worker = async (): Promise<void> => {
      const slots: Slot[] = [];
      for (let i = 0; i < SLOTS_PER_WORKER; i++) {
        const s = { state: 'detached' } as Slot;
        await freshSlot(s);
        slots.push(s);
      }
      while (!stopping) {
        const s = slots[Math.floor(random() * slots.length)]!;
        if (s.state === 'dirty') { await cleanUp(s); continue; }
        if (s.state === 'detached') {
          stats.adds++;
          const r = await call(s, 'ADD');
          if (r.code === 0) { stats.okCalls++; stats.addOk++; s.state = 'attached'; s.ip = resultIp(r.json); } else { noteFailure(s, 'ADD', r); s.state = 'dirty'; await backoff(); }
          continue;
        }
        if (random() < 0.15) {
          // The container dies and nobody calls DEL: reconcile must collect it.
          stats.vanished++;
          await world.deleteNetns(s.ns);
          await freshSlot(s);
          continue;
        }
        stats.dels++;
        const r = await call(s, 'DEL');
        if (r.code === 0) { stats.okCalls++; stats.delOk++; s.state = 'detached'; delete s.ip; } else { noteFailure(s, 'DEL', r); s.state = 'dirty'; await backoff(); }
      }
      for (const s of slots) if (s.state === 'dirty') await cleanUp(s);
      allSlots.push(...slots);
    };

    const killer = async (): Promise<void> => {
      for (let k = 0; k < KILLS; k++) {
        // Let traffic through first (a Node plugin process takes longer to start than the
        // 50-400 ms below), then kill at a random moment, usually with calls in flight.
        const goal = stats.okCalls + 1 + Math.floor(random() * 3);
        for (let waited = 0; stats.okCalls < goal && waited < 5000; waited += 20) await sleep(20);
        await sleep(50 + Math.floor(random() * 350));
        await router.kill9();
        const r0 = performance.now();
        await router.start();
        stats.restartMs += performance.now() - r0;
        stats.restarts++;
      }
    };

    const allSlots: Slot[] = [];
    const t0 = performance.now();
    const workers = Array.from({ length: WORKERS }, () => worker());
    try {
      await killer();
    } finally {
      stopping = true;
      await Promise.all(workers);
    }
    const loopMs = performance.now() - t0;

    // The end: one more restart (the start-up reconcile), a CNI GC with what the runtime believes, a reconcile.
    await router.stop();
    await router.start();
    const believed = allSlots.filter((s) => s.state === 'attached');
    const gc = await router.cni({ command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': believed.map((s) => ({ containerID: s.id, ifname: 'eth0' })) });
    assert.equal(gc.code, 0, `GC: ${gc.stdout}${gc.stderr}`);
    const rec = await router.api().post<{ errors: string[] }>('/v1/reconcile');
    assert.deepEqual(rec.errors, [], 'the reconcile had no errors');

    t.diagnostic(`loop ${(loopMs / 1000).toFixed(1)} s, ${stats.restarts} kills+restarts (restart ${(stats.restartMs / Math.max(1, stats.restarts)).toFixed(0)} ms on average); ADD ${stats.addOk}/${stats.adds} ok, DEL ${stats.delOk}/${stats.dels} ok, ${stats.vanished} vanished, ${stats.interrupted} calls cut by a kill; failure codes ${JSON.stringify([...stats.codes])}`);
    // How often a kill hit an ADD between "creating" and "ready" (completed or rolled back at start) and how many vanished containers were collected.
    let completed = 0;
    let rolledBack = 0;
    let collected = 0;
    for (const line of router.log.split('\n')) {
      if (!line.includes('"reconciled"')) continue;
      try { const o = JSON.parse(line) as { completed?: number; rolledBack?: number; collected?: number }; completed += o.completed ?? 0; rolledBack += o.rolledBack ?? 0; collected += o.collected ?? 0; } catch { /* partial line of a killed router */ }
    }
    t.diagnostic(`reconciles completed ${completed} and rolled back ${rolledBack} interrupted ADD(s), and collected ${collected} attachment(s) of vanished containers`);
    t.diagnostic(`TRY_AGAIN messages: ${[...tryAgain].join(' | ')}`);
    console.log(`# crash loop seed ${SEED}: ${(loopMs / 1000).toFixed(1)} s, ${stats.restarts} kills, ADD ${stats.addOk}/${stats.adds}, DEL ${stats.delOk}/${stats.dels}, vanished ${stats.vanished}, cut ${stats.interrupted}, codes ${JSON.stringify([...stats.codes])}`);
    assert.equal(stats.restarts, KILLS);
    // Sanity only (the schedule waits for successful calls before each kill, so there are far more).
    assert.ok(stats.addOk >= 10 && stats.delOk >= 10, `traffic got through (${stats.addOk} ADDs, ${stats.delOk} DELs succeeded)`);
    assert.deepEqual(unexpected, [], `only TRY_AGAIN (11) failures while the router was down (seed ${SEED})`);

    // Kernel cleanup of a deleted netns (and so of its veth) is asynchronous: give it a moment.
    const atts = await attachments(router);
    const wantVeths = atts.map((a) => a.hostIfname!).sort();
    for (let i = 0; i < 100 && JSON.stringify(await hostVeths(host.name)) !== JSON.stringify(wantVeths); i++) await sleep(100);

    const allocs = (await ipList(router)).allocations;
    // No address allocated twice.
    const keys = allocs.map((a) => `${a.subnet}/${a.ip}`);
    assert.equal(new Set(keys).size, keys.length, 'no allocation key twice');
    const attIps = atts.flatMap((a) => a.ips.map((i) => i.address));
    assert.equal(new Set(attIps).size, attIps.length, `no address in two attachments: ${attIps.join(' ')}`);

    // Every allocation belongs to a ready attachment whose netns still exists, and every attachment's address is allocated to it.
    assert.ok(atts.every((a) => a.state === 'ready'), `no attachment left in "creating": ${JSON.stringify(atts.filter((a) => a.state !== 'ready'))}`);
    for (const al of allocs) {
      assert.equal(al.state, 'bound');
      const a = atts.find((x) => x.containerId === al.containerId && x.ifname === al.ifname);
      assert.ok(a, `allocation ${al.ip} (${al.containerId}) has an attachment`);
      assert.ok(a.ips.some((i) => i.address.split('/')[0] === al.ip), `attachment of ${al.containerId} lists ${al.ip}`);
      assert.ok(a.netns && existsSync(a.netns), `netns ${a.netns} of ${al.containerId} exists`);
    }
    for (const a of atts) for (const i of a.ips) assert.ok(allocs.some((al) => al.ip === i.address.split('/')[0] && al.containerId === a.containerId), `${i.address} of ${a.containerId} is allocated to it`);

    // The store says exactly what the runtime believes.
    assert.deepEqual(atts.map((a) => a.containerId).sort(), believed.map((s) => s.id).sort(), 'attachments = containers the runtime believes attached');
    const seen = new Map<string, string>();
    for (const s of allSlots) {
      const addrs = await globalAddrs(s.ns.name);
      if (s.state === 'attached') {
        assert.deepEqual(addrs, [s.ip], `${s.id} has exactly its address ${s.ip}`);
        const a = atts.find((x) => x.containerId === s.id)!;
        assert.deepEqual(a.ips.map((i) => i.address), [s.ip]);
      } else {
        assert.deepEqual(await linkNames(s.ns.name), ['lo'], `${s.id} (detached) has no interface`);
      }
      for (const ad of addrs) {
        assert.ok(!seen.has(ad), `${ad} is in both ${seen.get(ad)} and ${s.id}`);
        seen.set(ad, s.id);
      }
    }

    // Host veths and attachments match one to one.
    assert.deepEqual(await hostVeths(host.name), wantVeths, 'host veths = attachments');
    assert.deepEqual(wantVeths, believed.map((s) => hostIfnameFor(s.id, 'eth0')).sort());

    // The nftables table matches: one DNAT per attached container, to its address; masquerade iff anything is attached.
    const rules = await nftRules(host.name);
    const dnat = rules.filter((r) => r.includes('"dnat":{')).map((r) => {
      const port = /"field":"dport"}},"right":(\d+)/.exec(r)?.[1];
      const addr = /"dnat":{[^}]*"addr":"([^"]+)"/.exec(r)?.[1];
      return `${port} ${addr}`;
    }).sort();
    assert.deepEqual(dnat, believed.map((s) => `${hostPort(s)} ${s.ip!.split('/')[0]}`).sort(), 'DNAT rules = published ports of attached containers');
    assert.equal(rules.some((r) => r.includes('"masquerade"')), believed.length > 0, 'masquerade iff containers are attached');

    // And the survivors work.
    const pings = await Promise.all(believed.map((s) => ping(s.ns.name, '10.90.0.1', { waitS: 2 })));
    assert.deepEqual(believed.filter((_, i) => !pings[i]).map((s) => s.id), [], 'every attached container reaches the gateway');

    // Finally everything can be removed.
    for (const s of believed) assert.equal((await call(s, 'DEL')).code, 0);
    assert.deepEqual((await ipList(router)).allocations, []);
    assert.deepEqual(await hostVeths(host.name), []);
    assert.deepEqual(await nftRules(host.name), [], 'no nftables rule left');
  });
});
