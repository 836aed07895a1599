/**
 * podman 4.3 (CNI backend, runc) driving weft for real: `weft install-cni`
 * into a temp bin/conf dir, a private podman store under a temp dir, every
 * podman command run in the test's host namespace (nsenter --net=), the
 * weft router in that same namespace. Checks what a user sees: addresses
 * from weft, container-to-container traffic, reservations and sticky
 * addresses following the container name (podman sends
 * K8S_POD_NAME=<container name>), published ports reachable from another
 * machine (a client namespace on 198.51.100.0/24) both with weft's builtin
 * publishing and with the reference portmap plugin chained, and that
 * `podman rm -f` gives every address back and leaves no netns behind.
 *
 * Podman is slow (hundreds of ms per command, seconds on a busy box): the
 * timeouts are generous and nothing asserts a duration; durations are
 * reported as test diagnostics.
 */
import assert from 'node:assert/strict';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { hostIfnameFor } from '../../src/core/dataplane/names.js';
import { exec } from '../helpers/exec.js';
import { TestRouter } from '../helpers/router.js';
import { type Netns, World, canCreateNetns, cleanupLeftovers } from '../helpers/world.js';
import { HOST_OUTSIDE_IP, connectClient, httpGet, iptablesNat, linkNames } from '../helpers/clients/net.js';
import { Podman, havePodman } from '../helpers/clients/podman.js';
import { CgroupLeftovers } from '../helpers/clients/cgroups.js';
import { haveBusybox } from '../helpers/clients/rootfs.js';
import { type Allocation, installCni, ipList, ipv4Of, weftOk } from '../helpers/clients/weft.js';

const skip = !canCreateNetns() ? 'needs root on Linux (creates network namespaces)'
  : !havePodman() ? 'podman and runc are not installed (apt-get install podman runc containernetworking-plugins)'
    : !haveBusybox() ? 'busybox-static is not installed' : false;

const RANGE = '10.77.0.0/24';
const GATEWAY = '10.77.0.1';
const RESERVED = '10.77.0.50';
const PM_CIDR = '10.77.1.0/24';
const STICKY_CIDR = '10.77.2.0/24';

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!(await cond())) assert.fail(`timed out after ${ms} ms waiting for: ${what}`);
}

describe('podman (CNI backend) on weft', { skip, timeout: 20 * 60_000 }, () => {
  let world: World;
  let host: Netns;
  let client: Netns;
  let router: TestRouter;
  let podman: Podman;
  let binDir: string;
  let confDir: string;
  /** Every netns podman made for our containers: all must be gone at the end. */
  const sandboxes = new Set<string>();
  let rootCniRulesBefore = 0;
  let cgroups: CgroupLeftovers | undefined;

  const rootCniRules = async (): Promise<number> => {
    const r = await exec('iptables-save', []);
    return r.code === 0 ? r.stdout.split('\n').filter((l) => l.includes('CNI-')).length : 0;
  };

  /** Times `fn` and reports the duration as a test diagnostic. */
  async function timed<T>(t: TestContext, label: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      t.diagnostic(`${label}: ${Math.round(performance.now() - t0)} ms`);
    }
  }

  async function start(t: TestContext, name: string, options: string[], cmd?: string[]): Promise<{ id: string; ip: string; network: string }> {
    const network = options[options.indexOf('--network') + 1] ?? 'weft';
    const id = await timed(t, `podman run -d --name ${name}`, () => podman.startDetached(name, options, cmd));
    const info = await podman.inspect(name);
    if (info.NetworkSettings.SandboxKey) sandboxes.add(info.NetworkSettings.SandboxKey);
    const ip = await podman.addressOn(name, network);
    return { id, ip, network };
  }

  async function allocationOf(containerId: string): Promise<Allocation | undefined> {
    return (await ipList(router)).allocations.find((a) => a.containerId === containerId);
  }

  /** `podman rm -f NAME`, then: the allocation of `id` is gone (or held, on a sticky subnet), the host veth and the netns too. */
  async function remove(t: TestContext, name: string, id: string, sandbox?: string): Promise<void> {
    await timed(t, `podman rm -f ${name}`, () => podman.ok(['rm', '-f', '-t', '0', name]));
    await waitFor(`weft released the address of ${name}`, async () => (await allocationOf(id)) === undefined);
    await waitFor(`host veth of ${name} is gone`, async () => !(await linkNames(host.name)).includes(hostIfnameFor(id, 'eth0')));
    if (sandbox) await waitFor(`podman removed ${sandbox}`, async () => !existsSync(sandbox));
  }

  before(async () => {
    await cleanupLeftovers();
    rootCniRulesBefore = await rootCniRules();
    cgroups = new CgroupLeftovers(['libpod_parent/conmon', 'libpod_parent']);
    world = new World();
    host = await world.netns('pod');
    router = new TestRouter(world, host, { ipallocRange: RANGE });
    await router.start();
    const dir = world.tempDir('weft-podman');
    binDir = join(dir, 'cni', 'bin');
    confDir = join(dir, 'cni', 'net.d');
    // The default network with builtin port publishing, a second one on its own
    // subnet chaining Debian's portmap, a third on a sticky subnet.
    await installCni(router, binDir, confDir);
    await weftOk(router, 'subnet', 'create', 'pm', '--cidr', PM_CIDR);
    await installCni(router, binDir, confDir, { network: 'weftpm', subnet: 'pm', ports: 'portmap' });
    await weftOk(router, 'subnet', 'create', 'stick', '--cidr', STICKY_CIDR, '--sticky');
    await installCni(router, binDir, confDir, { network: 'weftstick', subnet: 'stick' });
    podman = new Podman(join(dir, 'podman'), host, { cniPluginDirs: [binDir, '/usr/lib/cni'], confDir, defaultNetwork: 'weft' });
    writeFileSync(join(podman.rootfs, 'www', 'index.html'), 'hello from a weft container\n');
    client = await connectClient(world, host);
  });

  after(async () => {
    const problems = podman ? await podman.cleanup() : [];
    await router?.stop();
    await world?.cleanup();
    cgroups?.removeNew();
    const leftNetns = [...sandboxes].filter((p) => existsSync(p));
    assert.deepEqual(leftNetns, [], 'podman removed the network namespaces of our containers');
    assert.deepEqual(problems, [], 'podman storage cleaned up');
    assert.equal(await rootCniRules(), rootCniRulesBefore, 'no iptables rules of the portmap plugin in the root netns');
  });

  test('podman uses the CNI backend with runc and lists the weft networks', async (t) => {
    assert.equal(await podman.ok(['info', '--format', '{{.Host.NetworkBackend}} {{.Host.OCIRuntime.Name}}']), 'cni runc');
    // podman sends VERSION to every plugin of every network here; the launcher answers it.
    const ls = await timed(t, 'podman network ls', () => podman.ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']));
    const lines = ls.split('\n').map((l) => l.trim());
    for (const n of ['weft', 'weftpm', 'weftstick']) assert.ok(lines.includes(`${n} weft`), `network ${n} listed with driver weft:\n${ls}`);
    const [inspect] = JSON.parse(await podman.ok(['network', 'inspect', 'weftpm'])) as { name: string; driver: string }[];
    assert.equal(inspect?.name, 'weftpm');
    assert.equal(inspect?.driver, 'weft');

    // The VERSION podman sends is answered by the sh launcher alone: with the Node
    // bundle moved away, podman still validates and lists the networks.
    const bundle = join(binDir, '.weft-plugin.cjs');
    renameSync(bundle, `${bundle}.away`);
    try {
      const again = await timed(t, 'podman network ls without the Node bundle', () => podman.ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']));
      assert.deepEqual(again.split('\n').map((l) => l.trim()).sort(), lines.slice().sort(), 'same networks without Node');
    } finally {
      renameSync(`${bundle}.away`, bundle);
    }
  });

  test('podman run --rm: the container has its weft address, and it is freed when the container exits', async (t) => {
    const r = await timed(t, 'podman run --rm ip -4 addr', () => podman.runContainer(['--rm', '--network', 'weft'], ['/sbin/ip', '-4', 'addr']));
    assert.equal(r.code, 0, `podman run --rm failed: ${r.stderr}`);
    const ip = ipv4Of(r.stdout);
    assert.ok(ip?.startsWith('10.77.0.'), `eth0 has an address from ${RANGE}:\n${r.stdout}`);
    await waitFor('the --rm container\'s address is released', async () => !(await ipList(router)).allocations.some((a) => a.ip === ip));
  });

  test('two containers get weft addresses and ping each other; podman rm -f releases them', async (t) => {
    const a = await start(t, 'wtping1', ['--network', 'weft']);
    const b = await start(t, 'wtping2', ['--network', 'weft']);
    assert.notEqual(a.ip, b.ip);
    for (const [name, c] of [['wtping1', a], ['wtping2', b]] as const) {
      assert.ok(c.ip.startsWith('10.77.0.'), `${name} got ${c.ip}`);
      const alloc = await allocationOf(c.id);
      assert.ok(alloc, `weft has an allocation for ${name}`);
      assert.equal(alloc.ip, c.ip, 'weft and podman agree on the address');
      assert.equal(alloc.state, 'bound');
      assert.equal(alloc.identity, `default/${name}`, 'identity is default/<container name> (podman sends K8S_POD_NAME)');
      assert.equal(alloc.network, 'weft');
      const inside = await podman.ok(['exec', name, '/sbin/ip', '-4', 'addr', 'show', 'eth0']);
      assert.equal(ipv4Of(inside), c.ip, 'the container really has it');
      const route = await podman.ok(['exec', name, '/sbin/ip', 'route']);
      assert.match(route, new RegExp(`default via ${GATEWAY.replace(/\./g, '\\.')}`), 'default route via the weft gateway');
    }
    const ping1 = await timed(t, 'ping wtping1 -> wtping2', () => podman.run(['exec', 'wtping1', '/bin/ping', '-c', '3', '-W', '2', b.ip]));
    assert.equal(ping1.code, 0, `wtping1 reaches wtping2:\n${ping1.stdout}${ping1.stderr}`);
    const ping2 = await podman.run(['exec', 'wtping2', '/bin/ping', '-c', '3', '-W', '2', a.ip]);
    assert.equal(ping2.code, 0, `wtping2 reaches wtping1:\n${ping2.stdout}${ping2.stderr}`);
    const gw = await podman.run(['exec', 'wtping1', '/bin/ping', '-c', '1', '-W', '2', GATEWAY]);
    assert.equal(gw.code, 0, 'the gateway answers');

    const sa = (await podman.inspect('wtping1')).NetworkSettings.SandboxKey;
    const sb = (await podman.inspect('wtping2')).NetworkSettings.SandboxKey;
    await remove(t, 'wtping1', a.id, sa);
    await remove(t, 'wtping2', b.id, sb);
    assert.deepEqual((await ipList(router)).allocations, [], 'nothing allocated any more');
  });

  test('a reserved address follows the container name across podman rm and a new podman run', async (t) => {
    await weftOk(router, 'ip', 'reserve', 'default', RESERVED, '--owner', 'default/wtres');
    const first = await start(t, 'wtres', ['--network', 'weft']);
    assert.equal(first.ip, RESERVED, 'the first run gets the reserved address');
    await remove(t, 'wtres', first.id);
    const list = await ipList(router);
    assert.ok(list.reservations.some((r) => r.ip === RESERVED && r.owner === 'default/wtres'), 'the reservation outlives the container');

    // Another container must not get it while its owner is away.
    const other = await start(t, 'wtresother', ['--network', 'weft']);
    assert.notEqual(other.ip, RESERVED);

    const again = await start(t, 'wtres', ['--network', 'weft']);
    assert.notEqual(again.id, first.id, 'a new container with the same name');
    assert.equal(again.ip, RESERVED, 'the re-created container gets the reserved address again');
    assert.equal((await allocationOf(again.id))?.identity, 'default/wtres');

    await remove(t, 'wtres', again.id);
    await remove(t, 'wtresother', other.id);
    await weftOk(router, 'ip', 'release', 'default', RESERVED);
    assert.deepEqual(await ipList(router), { allocations: [], reservations: [] });
  });

  test('on a --sticky subnet a container name keeps its first address after podman rm', async (t) => {
    const first = await start(t, 'wtstk', ['--network', 'weftstick']);
    assert.ok(first.ip.startsWith('10.77.2.'), `address from the sticky subnet: ${first.ip}`);
    await timed(t, 'podman rm -f wtstk', () => podman.ok(['rm', '-f', '-t', '0', 'wtstk']));
    await waitFor('the address is held for default/wtstk', async () => {
      const a = (await ipList(router)).allocations.find((x) => x.ip === first.ip);
      return a?.state === 'held' && a.identity === 'default/wtstk' && a.containerId === undefined;
    });

    const other = await start(t, 'wtstk2', ['--network', 'weftstick']);
    assert.notEqual(other.ip, first.ip, 'a held address is not given to another name');

    const again = await start(t, 'wtstk', ['--network', 'weftstick']);
    assert.equal(again.ip, first.ip, 'the same name gets its first address back');
    const alloc = await allocationOf(again.id);
    assert.equal(alloc?.state, 'bound');

    for (const [name, c] of [['wtstk', again], ['wtstk2', other]] as const) {
      await podman.ok(['rm', '-f', '-t', '0', name]);
      await waitFor(`${name}'s address is held`, async () => (await ipList(router)).allocations.find((x) => x.ip === c.ip)?.state === 'held');
    }
    await weftOk(router, 'ip', 'release', 'stick', first.ip);
    await weftOk(router, 'ip', 'release', 'stick', other.ip);
    assert.deepEqual((await ipList(router)).allocations, []);
  });

  test('podman run -p with weft\'s builtin port publishing is reachable from another machine', async (t) => {
    const web = await start(t, 'wtweb', ['--network', 'weft', '-p', '18080:80'], ['/usr/sbin/httpd', '-f', '-p', '80', '-h', '/www']);
    const ports = (await podman.inspect('wtweb')).NetworkSettings.Ports?.['80/tcp'];
    assert.equal(ports?.[0]?.HostPort, '18080');
    const body = await timed(t, 'first GET through the published port', () => httpGet(client.name, `http://${HOST_OUTSIDE_IP}:18080/`));
    assert.equal(body, 'hello from a weft container\n');
    const nft = await exec('nft', ['list', 'table', 'inet', 'weft'], { netns: host.name });
    assert.match(nft.stdout, new RegExp(`tcp dport 18080 dnat ip to ${web.ip.replace(/\./g, '\\.')}:80`), 'weft published the port');
    assert.doesNotMatch(await iptablesNat(host.name), /18080/, 'no portmap plugin involved');

    await remove(t, 'wtweb', web.id);
    const after = await exec('nft', ['list', 'table', 'inet', 'weft'], { netns: host.name });
    assert.doesNotMatch(after.stdout, /18080/, 'the mapping is gone with the container');
  });

  test('podman run -p with the reference portmap plugin chained after weft (--ports portmap)', async (t) => {
    const web = await start(t, 'wtwebpm', ['--network', 'weftpm', '-p', '18081:80'], ['/usr/sbin/httpd', '-f', '-p', '80', '-h', '/www']);
    assert.ok(web.ip.startsWith('10.77.1.'), `address from subnet pm: ${web.ip}`);
    const body = await timed(t, 'first GET through portmap', () => httpGet(client.name, `http://${HOST_OUTSIDE_IP}:18081/`));
    assert.equal(body, 'hello from a weft container\n');
    const nat = await iptablesNat(host.name);
    assert.match(nat, new RegExp(`--dport 18081 -j DNAT --to-destination ${web.ip.replace(/\./g, '\\.')}:80`), `portmap installed the DNAT in the host netns:\n${nat}`);
    const nft = await exec('nft', ['list', 'table', 'inet', 'weft'], { netns: host.name });
    assert.doesNotMatch(nft.stdout, /dport 18081/, 'weft left port publishing to portmap');

    await remove(t, 'wtwebpm', web.id);
    assert.doesNotMatch(await iptablesNat(host.name), /18081/, 'portmap removed its rules on DEL');
  });

  test('nothing is left allocated or attached', async () => {
    assert.deepEqual((await ipList(router)).allocations, []);
    const ps = JSON.parse(await weftOk(router, 'ps', '-o', 'json')) as unknown[];
    assert.deepEqual(ps, [], 'no attachments');
    const links = (await linkNames(host.name)).filter((l) => l.startsWith('wv'));
    assert.deepEqual(links, [], 'no veth host ends left');
  });
});
