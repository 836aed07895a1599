/**
 * containerd 1.6 driving weft through `ctr run --cni`: a private containerd
 * (root, state, sockets in a temp dir) in the test's host namespace, the
 * conflist and plugins from `weft install-cni` made visible at
 * /etc/cni/net.d and /opt/cni/bin in a private mount namespace only.
 *
 * What containerd does differently from podman, and what this proves weft
 * copes with: no VERSION call, CNI_CONTAINERID=<namespace>-<id>, CNI_NETNS
 * a /proc/PID/ns/net path, an empty CNI_ARGS (no identity), and a DEL sent
 * after the task has exited with an EMPTY CNI_NETNS (the /proc path is gone
 * by then). ctr only logs a failed DEL ("network review"), so the tests
 * check the address really was released. A one-line sh shim in front of
 * each installed launcher records the CNI_* environment of every call.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { hostIfnameFor } from '../../src/core/dataplane/names.js';
import type { ExecResult } from '../helpers/exec.js';
import { TestRouter } from '../helpers/router.js';
import { type Netns, World, canCreateNetns, cleanupLeftovers } from '../helpers/world.js';
import { CgroupLeftovers } from '../helpers/clients/cgroups.js';
import { Containerd, haveContainerd } from '../helpers/clients/containerd.js';
import { linkNames } from '../helpers/clients/net.js';
import { buildBusyboxRootfs, haveBusybox } from '../helpers/clients/rootfs.js';
import { type Allocation, installCni, ipList, ipv4Of, weftOk } from '../helpers/clients/weft.js';

const skip = !canCreateNetns() ? 'needs root on Linux (creates network namespaces)'
  : !haveContainerd() ? 'containerd, ctr, runc or /etc/cni/net.d missing (apt-get install containerd runc containernetworking-plugins)'
    : !haveBusybox() ? 'busybox-static is not installed' : false;

const RANGE = '10.77.0.0/24';

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 60_000, abort?: () => string | undefined): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    const why = abort?.();
    if (why) assert.fail(`gave up waiting for ${what}: ${why}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!(await cond())) assert.fail(`timed out after ${ms} ms waiting for: ${what}`);
}

interface Attachment { containerId: string; ifname: string; netns?: string; network: string; ips: { address: string }[] }

describe('containerd (ctr run --cni) on weft', { skip, timeout: 10 * 60_000 }, () => {
  let world: World;
  let host: Netns;
  let router: TestRouter;
  let containerd: Containerd;
  /** What ctr sees as /opt/cni/bin: a recording shim per plugin that execs weft's installed launcher. */
  let binDir: string;
  let confDir: string;
  let rootfs: string;
  let callLog: string;
  let cgroups: CgroupLeftovers | undefined;

  before(async () => {
    await cleanupLeftovers();
    cgroups = new CgroupLeftovers(['default']);
    world = new World();
    host = await world.netns('ctd');
    router = new TestRouter(world, host, { ipallocRange: RANGE });
    await router.start();
    const dir = world.tempDir('weft-containerd');
    const installed = join(dir, 'cni', 'bin');
    confDir = join(dir, 'cni', 'net.d');
    await installCni(router, installed, confDir);
    // Instrumentation only: record the environment ctr gives each call, then run the real plugin.
    binDir = join(dir, 'cni', 'shim');
    callLog = join(dir, 'cni', 'calls.log');
    mkdirSync(binDir, { recursive: true });
    for (const kind of ['weft', 'weft-ipam']) {
      writeFileSync(join(binDir, kind), `#!/bin/sh\nprintf '%s id=[%s] netns=[%s] args=[%s]\\n' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_ARGS" >> '${callLog}'\nexec '${join(installed, kind)}' "$@"\n`);
      chmodSync(join(binDir, kind), 0o755);
    }
    rootfs = buildBusyboxRootfs(join(dir, 'rootfs'));
    containerd = new Containerd(world, join(dir, 'containerd'), host);
    await containerd.start();
  });

  after(async () => {
    await containerd?.stop();
    await router?.stop();
    await world?.cleanup();
    cgroups?.removeNew();
  });

  /**
   * Starts `ctr run --rm --cni` with a task that prints `ip -4 addr` then
   * waits for /tmp/go-<id> (a file the test creates in the shared rootfs),
   * so the test can look at weft's state while the container lives.
   */
  function startHeld(id: string): { done: Promise<ExecResult>; finished: () => ExecResult | undefined; release: () => void } {
    let result: ExecResult | undefined;
    const done = containerd.runCni({ confDir, binDir, rootfs, id, cmd: ['/bin/sh', '-c', `/sbin/ip -4 addr; while [ ! -e /tmp/go-${id} ]; do sleep 0.1; done`] });
    void done.then((r) => { result = r; });
    return { done, finished: () => result, release: () => writeFileSync(join(rootfs, 'tmp', `go-${id}`), '') };
  }

  async function allocationOf(containerId: string): Promise<Allocation | undefined> {
    return (await ipList(router)).allocations.find((a) => a.containerId === containerId);
  }

  async function attachments(): Promise<Attachment[]> {
    return JSON.parse(await weftOk(router, 'ps', '-o', 'json')) as Attachment[];
  }

  function assertRanClean(r: ExecResult, what: string): void {
    assert.doesNotMatch(r.stderr, /network review|failed to|error/i, `${what}: ctr reported a problem (a failed CNI DEL is only logged):\n${r.stderr}`);
  }

  test('ctr run --cni: the container gets its address from weft; the DEL with an empty CNI_NETNS frees it', async (t: TestContext) => {
    const id = 'wtctr1';
    const cid = `default-${id}`;
    const t0 = performance.now();
    const run = startHeld(id);
    const failed = (): string | undefined => { const r = run.finished(); return r ? `ctr exited ${String(r.code)}: ${r.stderr}` : undefined; };
    await waitFor('weft has an allocation for the container', async () => (await allocationOf(cid)) !== undefined, 120_000, failed);
    t.diagnostic(`ctr run --cni until the address was allocated: ${Math.round(performance.now() - t0)} ms`);
    const alloc = (await allocationOf(cid))!;
    assert.ok(alloc.ip.startsWith('10.77.0.'), `address from ${RANGE}: ${alloc.ip}`);
    assert.equal(alloc.state, 'bound');
    assert.equal(alloc.identity, undefined, 'ctr sends no K8S_POD_NAME: no identity');
    const att = (await attachments()).find((a) => a.containerId === cid);
    assert.ok(att, 'weft ps lists the attachment');
    assert.match(att.netns ?? '', /^\/proc\/\d+\/ns\/net$/, 'ctr hands a /proc/PID/ns/net path');
    assert.ok((await linkNames(host.name)).includes(hostIfnameFor(cid, 'eth0')), 'the host end of the veth exists');

    run.release();
    const r = await run.done;
    t.diagnostic(`ctr run --cni total: ${Math.round(performance.now() - t0)} ms`);
    assert.equal(r.code, 0, `ctr run exited ${String(r.code)}: ${r.stderr}`);
    assertRanClean(r, 'ctr run');
    assert.equal(ipv4Of(r.stdout), alloc.ip, `the container's eth0 has weft's address:\n${r.stdout}`);

    // ctr ran the DEL (CNI_NETNS="") before exiting.
    assert.equal(await allocationOf(cid), undefined, 'the address is released');
    assert.deepEqual(await attachments(), [], 'no attachment left');
    assert.ok(!(await linkNames(host.name)).includes(hostIfnameFor(cid, 'eth0')), 'no veth left in the host netns');
    assert.ok(!existsSync(join(containerd.dir, 'cni-cache', 'results', `weft-${cid}-eth0`)), 'libcni dropped its cached result');
    const calls = readFileSync(callLog, 'utf8').split('\n').filter((l) => l.includes(`id=[${cid}]`));
    assert.equal(calls.length, 2, `one ADD and one DEL:\n${calls.join('\n')}`);
    assert.match(calls[0]!, /^ADD id=\[default-wtctr1\] netns=\[\/proc\/\d+\/ns\/net\] args=\[\]$/);
    assert.equal(calls[1], `DEL id=[${cid}] netns=[] args=[]`, 'the DEL came with an empty CNI_NETNS');
  });

  test('two ctr containers on the weft network reach each other', async () => {
    const server = startHeld('wtctr2');
    const failed = (): string | undefined => { const r = server.finished(); return r ? `ctr exited ${String(r.code)}: ${r.stderr}` : undefined; };
    await waitFor('the first container has an address', async () => (await allocationOf('default-wtctr2')) !== undefined, 120_000, failed);
    const target = (await allocationOf('default-wtctr2'))!.ip;
    const ping = await containerd.runCni({ confDir, binDir, rootfs, id: 'wtctr3', cmd: ['/bin/ping', '-c', '3', '-W', '2', target] });
    assert.equal(ping.code, 0, `ping from wtctr3 to ${target}:\n${ping.stdout}${ping.stderr}`);
    assertRanClean(ping, 'ctr run wtctr3');
    server.release();
    const r = await server.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ipv4Of(r.stdout), target);
    assert.deepEqual((await ipList(router)).allocations, [], 'both addresses released');
  });

  test('a task that fails still gets its DEL: the address is released', async () => {
    const r = await containerd.runCni({ confDir, binDir, rootfs, id: 'wtctr4', cmd: ['/bin/sh', '-c', '/sbin/ip -4 addr; exit 3'] });
    assert.equal(r.code, 3, `ctr passes the task's exit status through: ${r.stderr}`);
    assert.ok(ipv4Of(r.stdout)?.startsWith('10.77.0.'), `the task had an address:\n${r.stdout}`);
    assert.deepEqual((await ipList(router)).allocations, []);
    assert.deepEqual(await attachments(), []);
  });
});
