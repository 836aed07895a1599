/**
 * The in-process veth path (netlink + weft's setns addon) on a real kernel:
 * - it is the path in use here, in the library and in the router the tests
 *   start, so CI cannot fall back to ip(8) without failing (setup.sh builds
 *   the addon; a missing build is a failure, not a skip);
 * - it leaves exactly the kernel state the ip(8) path leaves, and both read
 *   it back the same way (CHECK's inspection, hostLink);
 * - the main thread is always back in its own netns afterwards.
 * Everything happens in namespaces this file creates.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KernelDataPlane } from '../../src/adapters/kernel/kernel-dataplane.js';
import { loadNetlinkPackage } from '../../src/adapters/kernel/netlink-socket.js';
import { loadNetnsAddon } from '../../src/adapters/kernel/netns-addon.js';
import { bridgeNameFor, hostIfnameFor } from '../../src/core/dataplane/names.js';
import type { BridgeSpec, VethAttachSpec } from '../../src/core/dataplane/types.js';
import { InterfaceExistsError, KernelError, NotFoundError } from '../../src/core/errors.js';
import type { RouterStatus } from '../../src/daemon/status.js';
import { execOk, ping } from '../helpers/exec.js';
import { hostVeths, ipList, linkInfo, linkNames } from '../helpers/robustness.js';
import { TestRouter, weftConf } from '../helpers/router.js';
import { type Netns, World, canCreateNetns, cleanupLeftovers } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

interface LogLine { level: string; msg: string; fields?: Record<string, unknown> }
function recorder(): { lines: LogLine[]; log: Record<'debug' | 'info' | 'warn' | 'error', (msg: string, fields?: Record<string, unknown>) => void> } {
  const lines: LogLine[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => { lines.push({ level, msg, ...(fields ? { fields } : {}) }); };
  return { lines, log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

const ownNetns = (): number => statSync('/proc/thread-self/ns/net').ino;

/** `ip -j route show table all` of a netns, minus what differs between two namespaces by nature (nothing, for identical specs). */
async function routes(netns: string): Promise<unknown[]> {
  return JSON.parse(await execOk('ip', ['-j', 'route', 'show', 'table', 'all'], { netns })) as unknown[];
}

async function addrs(netns: string, dev: string): Promise<unknown[]> {
  const [l] = JSON.parse(await execOk('ip', ['-j', 'addr', 'show', 'dev', dev], { netns })) as { addr_info: Record<string, unknown>[] }[];
  // Lifetimes tick, and the link-local address derives from the (different) MAC; everything else must match.
  return (l?.addr_info ?? []).filter((a) => a.scope !== 'link').map(({ valid_life_time: _v, preferred_life_time: _p, ...rest }) => rest);
}

/** The parts of `ip -d link show` that the attach decides (names, indexes and random MACs aside). */
function linkShape(l: Record<string, unknown> | undefined, opts: { mac?: boolean } = {}): Record<string, unknown> {
  assert.ok(l, 'link exists');
  const info = l.linkinfo as { info_kind?: string; info_slave_kind?: string; info_slave_data?: Record<string, unknown> } | undefined;
  const slave = info?.info_slave_data;
  return {
    flags: (l.flags as string[]).filter((f) => f !== 'LOWER_UP' && f !== 'NO-CARRIER').sort(),
    mtu: l.mtu,
    master: l.master,
    kind: info?.info_kind,
    slaveKind: info?.info_slave_kind,
    hairpin: slave?.hairpin,
    learning: slave?.learning,
    flood: slave?.flood,
    ...(opts.mac ? { mac: l.address } : {}),
    addrGenMode: l.inet6_addr_gen_mode,
    txqlen: l.txqlen,
    numTx: l.num_tx_queues,
    numRx: l.num_rx_queues,
    gso: [l.gso_max_size, l.gso_max_segs],
  };
}

describe('in-process netlink veth programming', { skip }, () => {
  const world = new World();
  let host: Netns;
  const rec = recorder();
  let nl: KernelDataPlane;
  let ipdp: KernelDataPlane;
  const bridge: BridgeSpec = { name: bridgeNameFor(`nl-${process.pid}`), network: 'nlnet', mtu: 1450, addresses: ['10.83.0.1/24', 'fd83::1/64'] };
  const spec = (c: Netns, n: number, over: Partial<VethAttachSpec> = {}): VethAttachSpec => ({
    netns: c.path,
    ifname: 'eth0',
    hostIfname: hostIfnameFor(`${c.path}-${n}`, 'eth0'),
    bridge: bridge.name,
    mtu: 1450,
    mac: `02:83:00:00:00:${n.toString(16).padStart(2, '0')}`,
    addresses: ['10.83.0.10/24', 'fd83::a/64'],
    gateways: ['10.83.0.1', 'fd83::1'],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }, { dst: '10.84.0.0/16' }, { dst: '198.51.100.0/24', gw: '10.83.0.254' }, { dst: 'fd84::/48', gw: 'fd83::fe' }],
    hairpin: true,
    ...over,
  });

  before(async () => {
    await cleanupLeftovers();
    host = await world.netns('nlh');
    nl = new KernelDataPlane(rec.log, { hostNetns: host.path });
    ipdp = new KernelDataPlane(rec.log, { hostNetns: host.path, netlink: false });
    await nl.ensureBridge(bridge);
  });

  after(async () => {
    await world.cleanup();
  });

  test('the netlink path is the one in use in this environment (CI must not silently fall back to ip(8))', () => {
    const addon = loadNetnsAddon();
    assert.ok(addon.ok, `weft's setns addon must load here: ${addon.ok ? '' : addon.reason}. scripts/setup.sh builds it (node-gyp).`);
    const pkg = loadNetlinkPackage();
    assert.ok(pkg.ok, `the netlink package must load here: ${pkg.ok ? '' : pkg.reason}`);
    assert.equal(process.env.WEFT_NETLINK === undefined || !['0', 'off', 'false', 'no'].includes(process.env.WEFT_NETLINK.toLowerCase()), true, 'WEFT_NETLINK must not turn the netlink path off in the test environment');
    // A separate host netns (this test's) is never prepared on the pool: the pool's sockets live in the router's own.
    assert.deepEqual(nl.vethProgramming(), { mode: 'netlink', prepared: false });
    assert.ok(rec.lines.some((l) => l.level === 'info' && l.msg === 'veths are programmed in process over rtnetlink'), 'logged once at construction');
    const fallback = ipdp.vethProgramming();
    assert.equal(fallback.mode, 'ip');
    assert.match(fallback.reason ?? '', /turned off/);
    assert.ok(rec.lines.some((l) => l.level === 'warn' && /spawning ip\(8\)/.test(l.msg) && /turned off/.test(String(l.fields?.reason))));
  });

  test('the router the tests start programs veths in process and `weft status` says so', async () => {
    const rh = await world.netns('nlr');
    const router = new TestRouter(world, rh, { ipallocRange: '10.82.0.0/24' });
    await router.start();
    try {
      const st = await router.api().get<RouterStatus>('/v1/status');
      assert.deepEqual(st.vethProgramming, { mode: 'netlink', prepared: true }, JSON.stringify(st));
      assert.ok(!st.warnings.some((w) => /ip\(8\)/.test(w)), st.warnings.join('; '));
      const text = await router.weft('status');
      assert.match(text.stdout, /Veth setup: {3}in process \(rtnetlink, pairs made on the thread pool during allocation\)/);
      const c = await world.netns('nlc');
      const r = await router.cni({ command: 'ADD', containerId: 'nl1', netns: c.path, ifname: 'eth0', args: 'K8S_POD_NAME=nl1' }, weftConf());
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(await ping(c.name, '10.82.0.1'), true);
      const chk = await router.cni({ command: 'CHECK', containerId: 'nl1', netns: c.path, ifname: 'eth0', args: 'K8S_POD_NAME=nl1' }, { ...weftConf(), prevResult: r.json });
      assert.equal(chk.code, 0, chk.stdout + chk.stderr);
      assert.equal((await router.cni({ command: 'DEL', containerId: 'nl1', netns: c.path, ifname: 'eth0', args: 'K8S_POD_NAME=nl1' }, weftConf())).code, 0);

      // The bridge's index is known now: the next pair is made on the pool while the address is allocated.
      const c2 = await world.netns('nlc');
      const r2 = await router.cni({ command: 'ADD', containerId: 'nl2', netns: c2.path, ifname: 'eth0', args: 'K8S_POD_NAME=nl2' }, weftConf());
      assert.equal(r2.code, 0, r2.stdout + r2.stderr);
      const attached = router.log.split('\n').filter((l) => l.includes('"veth attached"') && l.includes(hostIfnameFor('nl2', 'eth0')));
      assert.equal(attached.length, 1);
      assert.match(attached[0]!, /"prepared":1/, 'the prepared path was taken');
      assert.equal(await ping(c2.name, '10.82.0.1'), true);
      const chk2 = await router.cni({ command: 'CHECK', containerId: 'nl2', netns: c2.path, ifname: 'eth0', args: 'K8S_POD_NAME=nl2' }, { ...weftConf(), prevResult: r2.json });
      assert.equal(chk2.code, 0, chk2.stdout + chk2.stderr);

      // An ADD that fails after its pair was prepared (the requested address is outside the subnet) leaves nothing.
      const c3 = await world.netns('nlc');
      const bad = await router.cni({ command: 'ADD', containerId: 'nl3', netns: c3.path, ifname: 'eth0', args: 'IgnoreUnknown=1;K8S_POD_NAME=nl3;IP=10.99.0.9' }, weftConf());
      assert.notEqual(bad.code, 0);
      assert.equal(bad.json?.code, 101, bad.stdout);
      assert.deepEqual(await linkNames(c3.name), ['lo'], 'no interface left in the container');
      assert.ok(!(await hostVeths(rh.name)).includes(hostIfnameFor('nl3', 'eth0')), 'no host end left');
      // And one whose container already has the interface gets the spec's error, with nothing left either.
      await execOk('ip', ['-n', c3.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
      const taken = await router.cni({ command: 'ADD', containerId: 'nl3', netns: c3.path, ifname: 'eth0', args: 'K8S_POD_NAME=nl3' }, weftConf());
      assert.notEqual(taken.code, 0);
      assert.match(String(taken.json?.msg), /already exists/, taken.stdout);
      assert.ok(!(await hostVeths(rh.name)).includes(hostIfnameFor('nl3', 'eth0')), 'no host end left');
      assert.deepEqual((await ipList(router)).allocations.filter((a) => a.containerId === 'nl3'), []);
      assert.equal((await router.cni({ command: 'DEL', containerId: 'nl2', netns: c2.path, ifname: 'eth0', args: 'K8S_POD_NAME=nl2' }, weftConf())).code, 0);
    } finally {
      await router.stop();
    }
  });

  test('a router told WEFT_NETLINK=off falls back to ip(8), still works, and warns in `weft status`', async () => {
    const rh = await world.netns('nlr');
    const router = new TestRouter(world, rh, { ipallocRange: '10.81.0.0/24' });
    const saved = process.env.WEFT_NETLINK;
    process.env.WEFT_NETLINK = 'off'; // inherited by the router spawned now
    try {
      await router.start();
    } finally {
      if (saved === undefined) delete process.env.WEFT_NETLINK;
      else process.env.WEFT_NETLINK = saved;
    }
    try {
      const st = await router.api().get<RouterStatus>('/v1/status');
      assert.equal(st.vethProgramming?.mode, 'ip');
      assert.ok(st.warnings.some((w) => /spawning ip\(8\)/.test(w) && /WEFT_NETLINK=off/.test(w)), st.warnings.join('; '));
      assert.match((await router.weft('status')).stdout, /Veth setup: {3}ip\(8\) processes/);
      const c = await world.netns('nlc');
      const r = await router.cni({ command: 'ADD', containerId: 'ip1', netns: c.path, ifname: 'eth0', args: 'K8S_POD_NAME=ip1' }, weftConf());
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(await ping(c.name, '10.81.0.1'), true);
      assert.equal((await router.cni({ command: 'DEL', containerId: 'ip1', netns: c.path, ifname: 'eth0', args: 'K8S_POD_NAME=ip1' }, weftConf())).code, 0);
    } finally {
      await router.stop();
    }
  });

  test('netlink and ip(8) leave identical kernel state, and read it back identically', async () => {
    const c1 = await world.netns('nla');
    const c2 = await world.netns('nlb');
    const s1 = spec(c1, 1);
    const s2 = spec(c2, 2);
    const r1 = await nl.attachVeth(s1);
    const r2 = await ipdp.attachVeth(s2);
    assert.ok(rec.lines.some((l) => l.msg === 'veth attached' && l.fields?.via === 'netlink' && l.fields?.hostIfname === s1.hostIfname));
    assert.ok(rec.lines.some((l) => l.msg === 'veth attached' && l.fields?.via === 'ip' && l.fields?.hostIfname === s2.hostIfname));

    // What the attach returns.
    assert.equal(r1.containerMac, s1.mac);
    assert.equal(r2.containerMac, s2.mac);
    assert.equal(r1.bridgeMac, r2.bridgeMac);
    assert.equal(r1.hostMac, (await linkInfo(host.name, s1.hostIfname))?.address);

    // Host ends: master, alias (same bridge, same hairpin), mtu, flags, bridge-port flags.
    const h1 = await linkInfo(host.name, s1.hostIfname);
    const h2 = await linkInfo(host.name, s2.hostIfname);
    assert.deepEqual(linkShape(h1), linkShape(h2));
    assert.equal(h1?.ifalias, h2?.ifalias);
    assert.equal(linkShape(h1).hairpin, true);

    // Container ends: everything but the alias, which names the host end.
    const e1 = await linkInfo(c1.name, 'eth0');
    const e2 = await linkInfo(c2.name, 'eth0');
    assert.deepEqual({ ...linkShape(e1), alias: String(e1?.ifalias).replace(s1.hostIfname, 'H') }, { ...linkShape(e2), alias: String(e2?.ifalias).replace(s2.hostIfname, 'H') });
    assert.equal(e1?.ifalias, `weft:${s1.hostIfname}`);
    assert.deepEqual(await addrs(c1.name, 'eth0'), await addrs(c2.name, 'eth0'));
    assert.deepEqual(await routes(c1.name), await routes(c2.name));
    assert.deepEqual(linkShape(await linkInfo(c1.name, 'lo')), linkShape(await linkInfo(c2.name, 'lo')));

    // Reading back: CHECK's inspection and hostLink agree between the two paths, on both containers.
    for (const [c, s] of [[c1, s1], [c2, s2]] as const) {
      const a = await nl.inspectContainerIface(c.path, 'eth0');
      const b = await ipdp.inspectContainerIface(c.path, 'eth0');
      assert.ok(a);
      assert.deepEqual(a, b);
      assert.deepEqual(a.addresses, ['10.83.0.10/24', 'fd83::a/64']);
      assert.deepEqual(await nl.hostLink(s.hostIfname), await ipdp.hostLink(s.hostIfname));
    }
    assert.deepEqual(await nl.hostLink(bridge.name), await ipdp.hostLink(bridge.name));
    assert.equal(await nl.hostLink('wtnosuch'), undefined);
    assert.equal(await nl.inspectContainerIface(c1.path, 'eth9'), undefined);

    // Both detach the same way (the delete itself is an ip(8) child either way).
    await nl.detachVeth({ netns: c1.path, ifname: 'eth0', hostIfname: s1.hostIfname });
    await ipdp.detachVeth({ netns: c2.path, ifname: 'eth0', hostIfname: s2.hostIfname });
    assert.equal(await linkInfo(host.name, s1.hostIfname), undefined);
    assert.equal(await linkInfo(c2.name, 'eth0'), undefined);
  });

  test('failures: a bad route rolls back with the kernel\'s reason; a taken name is INTERFACE_EXISTS; a missing bridge is NOT_FOUND', async () => {
    const c = await world.netns('nlf');
    const bad = spec(c, 3, { routes: [{ dst: '10.99.0.0/16', gw: '203.0.113.1' }] });
    await assert.rejects(nl.attachVeth(bad), (e: unknown) => e instanceof KernelError && /Nexthop has invalid gateway/.test(e.message) && /203\.0\.113\.1/.test(e.message));
    assert.equal(await linkInfo(host.name, bad.hostIfname), undefined);
    assert.equal(await linkInfo(c.name, 'eth0'), undefined);

    await execOk('ip', ['link', 'add', 'eth0', 'type', 'dummy'], { netns: c.name }).catch(() => execOk('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1'], { netns: c.name }));
    const taken = spec(c, 4);
    await assert.rejects(nl.attachVeth(taken), InterfaceExistsError);
    assert.equal(await linkInfo(host.name, taken.hostIfname), undefined);

    const c2 = await world.netns('nlf');
    const nobr = spec(c2, 5, { bridge: 'wtnlnobr' });
    await assert.rejects(nl.attachVeth(nobr), NotFoundError);
    assert.equal(await linkInfo(host.name, nobr.hostIfname), undefined);
    assert.equal(await linkInfo(c2.name, 'eth0'), undefined);

    // A bridge deleted and re-created under a cached index: the attach still lands on the new one.
    await nl.attachVeth(spec(c2, 6));
    await nl.detachVeth({ netns: c2.path, ifname: 'eth0', hostIfname: spec(c2, 6).hostIfname });
    await execOk('ip', ['link', 'del', 'dev', bridge.name], { netns: host.name });
    await assert.rejects(nl.attachVeth(spec(c2, 7)), NotFoundError);
    await nl.ensureBridge(bridge);
    await nl.attachVeth(spec(c2, 8));
    assert.equal((await nl.hostLink(spec(c2, 8).hostIfname))?.master, bridge.name);
    await nl.detachVeth({ netns: c2.path, ifname: 'eth0', hostIfname: spec(c2, 8).hostIfname });
  });

  test('the main thread is back in its own netns after every switch; children spawned afterwards are too', async () => {
    const home = ownNetns();
    const c = await world.netns('nlt');
    const s = spec(c, 9);
    await nl.attachVeth(s);
    assert.equal(ownNetns(), home);
    await nl.inspectContainerIface(c.path, 'eth0');
    assert.equal(ownNetns(), home);
    // A path that is not a netns (setns fails after open) and one that does not exist (open fails).
    const f = join(world.tempDir('nl'), 'file');
    writeFileSync(f, '');
    assert.equal(await nl.inspectContainerIface(f, 'eth0'), undefined);
    assert.equal(await nl.hostLink('eth0'), undefined);
    assert.equal(ownNetns(), home);
    const child = spawnSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' });
    assert.equal(child.stdout.trim(), readlinkSync('/proc/thread-self/ns/net'));
    await nl.detachVeth({ netns: c.path, ifname: 'eth0', hostIfname: s.hostIfname });
  });
});
