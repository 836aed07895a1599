/**
 * Stopping, crashing and restarting the real router: containers keep their
 * connectivity while it is down, its state survives, damage done while it
 * was away (a deleted bridge, a vanished container) is repaired or
 * collected, the data dir lock admits exactly one router, and an ADD cut
 * off between `creating` and `ready` is completed at start when the kernel
 * has all of it (its answer may have gone out: `ready` is committed after
 * the answer) and rolled back otherwise.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LmdbStore } from '../../src/adapters/store/lmdb-store.js';
import type { Attachment } from '../../src/core/ipam/attachment.js';
import { hostIfnameFor } from '../../src/core/dataplane/names.js';
import { exec, execOk, ping, wrapNetns } from '../helpers/exec.js';
import { attachments, globalAddrs, hostVeths, ipList, linkInfo, linkNames, resultIp, sleep } from '../helpers/robustness.js';
import { TestRouter, WEFT_BIN, weftConf } from '../helpers/router.js';
import { type Netns, World, canCreateNetns, cleanupLeftovers } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

describe('router restarts', { skip }, () => {
  const world = new World();
  let host: Netns;
  let router: TestRouter;
  const conf = weftConf();
  let seq = 0;

  before(async () => {
    await cleanupLeftovers();
    host = await world.netns('rsh');
    router = new TestRouter(world, host, { ipallocRange: '10.85.0.0/24' });
    await router.start();
  });

  after(async () => {
    try { await router?.stop(); } finally { await world.cleanup(); }
  });

  interface Cont { ns: Netns; id: string; ip: string; result: unknown }

  async function addContainer(): Promise<Cont> {
    const ns = await world.netns('rs');
    const id = `rs-${++seq}`;
    const r = await router.cni({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', args: `K8S_POD_NAME=${id}` }, conf);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return { ns, id, ip: resultIp(r.json).split('/')[0]!, result: r.json };
  }

  async function delContainer(c: Cont): Promise<void> {
    const r = await router.cni({ command: 'DEL', containerId: c.id, netns: c.ns.path, ifname: 'eth0', args: `K8S_POD_NAME=${c.id}` }, conf);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }

  /** Pings until it works or `ms` passed (ARP and bridge learning after a repair take a moment). */
  async function pingsWithin(from: Netns, to: string, ms = 5000): Promise<boolean> {
    const end = Date.now() + ms;
    do { if (await ping(from.name, to, { waitS: 1 })) return true; } while (Date.now() < end);
    return false;
  }

  function attachmentsSummary(atts: Attachment[]): string[] {
    return atts.map((a) => `${a.containerId} ${a.state} ${a.ips.map((i) => i.address).join(',')} ${a.hostIfname ?? ''}`).sort();
  }

  test('SIGTERM stops cleanly; containers keep talking while the router is down; attachments survive the restart', async () => {
    const a = await addContainer();
    const b = await addContainer();
    assert.equal(await ping(a.ns.name, b.ip), true);
    const before = attachmentsSummary(await attachments(router));

    const code = await router.stop();
    assert.equal(code, 0, `weft launch exits 0 on SIGTERM:\n${router.log.slice(-2000)}`);
    assert.equal(existsSync(router.socket), false, 'the socket is removed');
    assert.equal(existsSync(join(router.dataDir, 'weft.lock')), false, 'the lock is released');
    // Kernel state stays: the containers still reach each other and the gateway.
    assert.equal(await ping(a.ns.name, b.ip), true, 'a reaches b while the router is down');
    assert.equal(await ping(b.ns.name, a.ip), true, 'b reaches a while the router is down');
    assert.equal(await ping(a.ns.name, '10.85.0.1'), true);

    await router.start();
    assert.deepEqual(attachmentsSummary(await attachments(router)), before, 'attachments are as before');
    assert.equal(await ping(a.ns.name, b.ip), true);
    // CHECK with the cached result passes after the restart.
    const again = await router.cni({ command: 'ADD', containerId: a.id, netns: a.ns.path, ifname: 'eth0', args: `K8S_POD_NAME=${a.id}` }, conf);
    assert.equal(again.code, 0, 'a retried ADD gets the same answer');
    assert.equal(resultIp(again.json).split('/')[0], a.ip);
    const check = await router.cni({ command: 'CHECK', containerId: a.id, netns: a.ns.path, ifname: 'eth0', args: `K8S_POD_NAME=${a.id}` }, { ...conf, prevResult: again.json });
    assert.equal(check.code, 0, check.stdout);
    await delContainer(a);
    await delContainer(b);
  });

  test('a bridge deleted by hand is recreated by POST /v1/reconcile, with its ports, and connectivity returns', async () => {
    const a = await addContainer();
    const b = await addContainer();
    assert.equal(await ping(a.ns.name, b.ip), true);
    await execOk('ip', ['link', 'del', 'dev', 'weft'], { netns: host.name });
    assert.equal(await ping(a.ns.name, b.ip, { waitS: 1 }), false, 'no bridge, no connectivity');

    const rep = await router.api().post<{ bridgesEnsured: number; errors: string[] }>('/v1/reconcile');
    assert.deepEqual(rep.errors, []);
    const br = await linkInfo(host.name, 'weft');
    assert.ok(br, 'the bridge is back');
    assert.deepEqual(await globalAddrs(host.name, 'weft'), ['10.85.0.1/24'], 'with its gateway address');
    for (const c of [a, b]) assert.equal((await linkInfo(host.name, hostIfnameFor(c.id, 'eth0')))?.master, 'weft', `${c.id}'s veth is a port of the bridge again`);
    assert.equal(await pingsWithin(a.ns, b.ip), true, 'a reaches b again');
    assert.equal(await pingsWithin(b.ns, '10.85.0.1'), true, 'b reaches the gateway again');
    await delContainer(a);
    await delContainer(b);
  });

  test('a veth with weft\'s port alias (or weft\'s host-end name and no alias) that no attachment owns is removed by the reconcile; its container loses the address, other veths stay', async () => {
    const a = await addContainer();
    // An orphan as a data dir restored from an older copy leaves it: a weft port on the bridge, an address in a container, no record.
    const orphanNs = await world.netns('ro');
    await execOk('ip', ['link', 'add', 'wvorphan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', orphanNs.name], { netns: host.name });
    await execOk('ip', ['link', 'set', 'wvorphan0', 'alias', 'weft-port:weft', 'master', 'weft', 'up'], { netns: host.name });
    await execOk('ip', ['addr', 'add', '10.85.0.200/24', 'dev', 'eth0'], { netns: orphanNs.name });
    await execOk('ip', ['link', 'set', 'eth0', 'up'], { netns: orphanNs.name });
    // A pair made ahead of its ADD (on the pool, before the record) whose alias a crash cut off: weft's host-end name, no alias.
    const unlabelled = hostIfnameFor('never-recorded', 'eth0');
    const cutNs = await world.netns('ro');
    await execOk('ip', ['link', 'add', unlabelled, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', cutNs.name], { netns: host.name });
    // Not weft's: no alias, and not a name weft makes.
    await execOk('ip', ['link', 'add', 'other0', 'type', 'veth', 'peer', 'name', 'other1'], { netns: host.name });
    const rep = await router.api().post<{ portsRemoved: number; errors: string[] }>('/v1/reconcile');
    assert.deepEqual(rep.errors, []);
    assert.equal(rep.portsRemoved, 2);
    assert.equal(await linkInfo(host.name, 'wvorphan0'), undefined, 'the orphan is gone');
    assert.equal(await linkInfo(orphanNs.name, 'eth0'), undefined, 'and its container end with it');
    assert.equal(await linkInfo(host.name, unlabelled), undefined, 'the unlabelled pair is gone');
    assert.equal(await linkInfo(cutNs.name, 'eth0'), undefined, 'and its container end with it');
    assert.ok(await linkInfo(host.name, 'other0'), 'a veth without weft\'s alias stays');
    assert.equal((await linkInfo(host.name, hostIfnameFor(a.id, 'eth0')))?.master, 'weft', 'the attached container keeps its veth');
    assert.equal(await ping(a.ns.name, '10.85.0.1'), true);
    const status = await router.api().get<{ lastReconcile?: { summary: string } }>('/v1/status');
    assert.match(status.lastReconcile?.summary ?? '', /2 veth\(s\) no attachment owned removed/);
    await execOk('ip', ['link', 'del', 'other0'], { netns: host.name });
    await delContainer(a);
  });

  test('a bridge deleted while the router is down is recreated at start', async () => {
    const a = await addContainer();
    const b = await addContainer();
    assert.equal(await router.stop(), 0);
    await execOk('ip', ['link', 'del', 'dev', 'weft'], { netns: host.name });
    await router.start();
    assert.ok(await linkInfo(host.name, 'weft'), 'the bridge is back');
    assert.equal(await pingsWithin(a.ns, b.ip), true, 'a reaches b again');
    assert.equal(await pingsWithin(b.ns, '10.85.0.1'), true);
    await delContainer(a);
    await delContainer(b);
  });

  test('a container whose netns was deleted while the router was down is collected at start: address freed', async () => {
    const keep = await addContainer();
    const gone = await addContainer();
    assert.equal(await router.stop(), 0);
    await world.deleteNetns(gone.ns);
    await router.start();
    const atts = await attachments(router);
    assert.deepEqual(atts.map((x) => x.containerId), [keep.id], 'only the living container is still attached');
    const allocs = (await ipList(router)).allocations;
    assert.deepEqual(allocs.map((x) => x.ip), [keep.ip], 'the vanished container\'s address is free');
    assert.deepEqual(await hostVeths(host.name), [hostIfnameFor(keep.id, 'eth0')]);
    const status = await router.api().get<{ lastReconcile?: { summary: string } }>('/v1/status');
    assert.match(status.lastReconcile?.summary ?? '', /1 attachment\(s\) of vanished containers released/);
    // The runtime's late DEL for it still succeeds.
    await delContainer(gone);
    assert.equal(await ping(keep.ns.name, '10.85.0.1'), true);
    await delContainer(keep);
  });

  test('a second weft launch on the same data dir is refused with a clear message while the first runs', async () => {
    const other = join(world.tempDir('weft-second'), 'weft.sock');
    const args = [WEFT_BIN, 'launch', '--data-dir', router.dataDir, '--socket', other, '--reconcile-interval', '0', '--ipalloc-range', '10.85.0.0/24'];
    const r = await exec(process.execPath, args, { netns: host.name, timeoutMs: 20_000 });
    assert.equal(r.code, 1, `refused: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`another weft router \\(pid ${router.pid}\\) is using data dir ${router.dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.equal(existsSync(other), false, 'the refused router did not serve anything');
    // Same socket too: still refused, and the first router keeps serving.
    const r2 = await exec(process.execPath, [...args.slice(0, 5), router.socket, ...args.slice(6)], { netns: host.name, timeoutMs: 20_000 });
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /another weft router/);
    assert.equal((await router.api().get<{ ready: boolean; pid: number }>('/v1/status')).pid, router.pid);
    assert.equal(readFileSync(join(router.dataDir, 'weft.lock'), 'utf8').trim(), String(router.pid), 'the lock still names the first router');
  });

  test('a stale lock (router killed with SIGKILL, or a lock naming a live process that is not weft) does not block the restart', async () => {
    const c = await addContainer();
    const oldPid = router.pid;
    await router.kill9();
    const lock = join(router.dataDir, 'weft.lock');
    assert.equal(readFileSync(lock, 'utf8').trim(), String(oldPid), 'the killed router left its lock');
    await router.start();
    assert.notEqual(router.pid, oldPid);
    assert.equal(readFileSync(lock, 'utf8').trim(), String(router.pid));
    assert.deepEqual((await attachments(router)).map((x) => x.containerId), [c.id]);

    // A lock naming a PID that now belongs to something else (PID reuse after a reboot).
    await router.kill9();
    const sleeper: ChildProcess = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(lock, `${sleeper.pid}\n`);
      await router.start();
      assert.equal(readFileSync(lock, 'utf8').trim(), String(router.pid));
    } finally {
      sleeper.kill('SIGKILL');
      await once(sleeper, 'exit').catch(() => undefined);
    }
    // A garbage lock file.
    await router.kill9();
    writeFileSync(lock, 'not a pid\n');
    await router.start();
    assert.equal(await ping(c.ns.name, '10.85.0.1'), true);
    await delContainer(c);
  });

  /** Puts an attachment back into the state a crash right after the answer leaves: `creating`, no result, no MAC. */
  async function rewindToCreating(id: string): Promise<Attachment> {
    await router.kill9();
    const store = new LmdbStore(router.dataDir);
    try {
      const att = store.read((tx) => tx.getAttachment(id, 'eth0'))!;
      assert.equal(att.state, 'ready');
      const { result: _r, mac: _m, ...rest } = att;
      store.write((tx) => tx.putAttachment({ ...rest, state: 'creating' }));
      return att;
    } finally {
      await store.close();
    }
  }

  test('an ADD answered just before a crash (no "ready" commit yet) is completed at start, with the same result', { timeout: 60_000 }, async () => {
    const c = await addContainer();
    const before = await rewindToCreating(c.id);
    await router.start();
    const status = await router.api().get<{ lastReconcile?: { summary: string } }>('/v1/status');
    assert.match(status.lastReconcile?.summary ?? '', /1 interrupted ADD\(s\) completed/);
    const after = (await attachments(router)).find((a) => a.containerId === c.id)!;
    assert.equal(after.state, 'ready');
    assert.equal(after.mac, before.mac, 'the MAC is read back from the kernel');
    assert.deepEqual(after.result, before.result, 'the rebuilt result is the one the runtime got');
    // The runtime's CHECK with its cached result passes, and the container still works.
    const check = await router.cni({ command: 'CHECK', containerId: c.id, netns: c.ns.path, ifname: 'eth0', args: `K8S_POD_NAME=${c.id}` }, { ...conf, prevResult: c.result });
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.equal(await ping(c.ns.name, '10.85.0.1'), true);
    await delContainer(c);
    assert.deepEqual((await ipList(router)).allocations.filter((a) => a.containerId === c.id), []);
  });

  test('an interrupted ADD whose kernel state is incomplete is rolled back at start', { timeout: 60_000 }, async () => {
    const c = await addContainer();
    await rewindToCreating(c.id);
    // As if the crash came before the container side got its address.
    await execOk('ip', ['-n', c.ns.name, 'addr', 'flush', 'dev', 'eth0']);
    await router.start();
    const status = await router.api().get<{ lastReconcile?: { summary: string } }>('/v1/status');
    assert.match(status.lastReconcile?.summary ?? '', /1 interrupted ADD\(s\) rolled back/);
    assert.deepEqual((await attachments(router)).filter((a) => a.containerId === c.id), [], 'no attachment');
    assert.deepEqual((await ipList(router)).allocations.filter((a) => a.containerId === c.id), [], 'no allocation');
    assert.ok(!(await hostVeths(host.name)).includes(hostIfnameFor(c.id, 'eth0')), 'no host veth');
    assert.deepEqual(await linkNames(c.ns.name), ['lo'], 'no interface in the container');
    await delContainer(c);
  });

  test('an ADD killed mid-way is settled at start: completed or rolled back, never half', { timeout: 120_000 }, async (t) => {
    // Kill the router the moment its veth shows up in the host netns: the
    // attachment is `creating` then, and stays so if the kill beat the
    // `ready` commit (checked by reading the store of the dead router).
    let caught: { cont: Netns; id: string; answered: boolean } | undefined;
    for (let attempt = 0; attempt < 15 && !caught; attempt++) {
      const cont = await world.netns('rs');
      const id = `rs-cut-${attempt}`;
      const hostEnd = hostIfnameFor(id, 'eth0');
      const [cmd, margs] = wrapNetns(host.name, 'ip', ['-o', 'monitor', 'link']);
      const mon = spawn(cmd, margs, { stdio: ['ignore', 'pipe', 'ignore'] });
      try {
        await sleep(100); // let the monitor subscribe
        const pid = router.pid!;
        const seen = new Promise<void>((resolve) => {
          mon.stdout.setEncoding('utf8').on('data', (s: string) => { if (s.includes(hostEnd)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } resolve(); } });
        });
        const add = router.cni({ command: 'ADD', containerId: id, netns: cont.path, ifname: 'eth0', args: `K8S_POD_NAME=${id}` }, conf);
        const res = await add;
        await Promise.race([seen, sleep(2000)]);
        await router.kill9();
        const store = new LmdbStore(router.dataDir);
        let state: string | undefined;
        try { state = store.read((tx) => tx.getAttachment(id, 'eth0'))?.state; } finally { await store.close(); }
        t.diagnostic(`attempt ${attempt}: ADD exit ${res.code}, attachment ${state ?? 'absent'} in the store of the killed router`);
        if (state === 'creating') {
          caught = { cont, id, answered: res.code === 0 };
        } else {
          await router.start();
          await router.cni({ command: 'DEL', containerId: id, netns: cont.path, ifname: 'eth0', args: `K8S_POD_NAME=${id}` }, conf);
          await world.deleteNetns(cont);
        }
      } finally {
        mon.kill('SIGKILL');
      }
    }
    assert.ok(caught, 'an ADD was caught between "creating" and "ready" within 15 attempts');

    await router.start();
    const status = await router.api().get<{ lastReconcile?: { summary: string } }>('/v1/status');
    const summary = status.lastReconcile?.summary ?? '';
    const completed = /1 interrupted ADD\(s\) completed/.test(summary);
    assert.ok(completed || /1 interrupted ADD\(s\) rolled back/.test(summary), summary);
    t.diagnostic(`the interrupted ADD was ${completed ? 'completed' : 'rolled back'}; the runtime saw it ${caught.answered ? 'succeed' : 'fail'}`);
    // An answered ADD is never rolled back: the runtime believes it.
    if (caught.answered) assert.ok(completed, 'an ADD whose answer went out is completed');
    if (completed) {
      assert.equal((await attachments(router)).find((a) => a.containerId === caught!.id)?.state, 'ready');
      assert.equal(await ping(caught.cont.name, '10.85.0.1'), true);
    } else {
      assert.deepEqual((await attachments(router)).filter((a) => a.containerId === caught!.id), [], 'no attachment');
      assert.deepEqual((await ipList(router)).allocations.filter((a) => a.containerId === caught!.id), [], 'no allocation');
      assert.ok(!(await hostVeths(host.name)).includes(hostIfnameFor(caught.id, 'eth0')), 'no host veth');
      assert.deepEqual(await linkNames(caught.cont.name), ['lo'], 'no interface in the container');
    }
    // The runtime's DEL (after a failed ADD, or when the container stops) succeeds, and a new ADD works.
    const del = await router.cni({ command: 'DEL', containerId: caught.id, netns: caught.cont.path, ifname: 'eth0', args: `K8S_POD_NAME=${caught.id}` }, conf);
    assert.equal(del.code, 0);
    const again = await router.cni({ command: 'ADD', containerId: caught.id, netns: caught.cont.path, ifname: 'eth0', args: `K8S_POD_NAME=${caught.id}` }, conf);
    assert.equal(again.code, 0, again.stdout);
    assert.equal(await ping(caught.cont.name, '10.85.0.1'), true);
    await router.cni({ command: 'DEL', containerId: caught.id, netns: caught.cont.path, ifname: 'eth0', args: `K8S_POD_NAME=${caught.id}` }, conf);
    assert.deepEqual((await ipList(router)).allocations, []);
    assert.deepEqual(await hostVeths(host.name), []);
  });
});
