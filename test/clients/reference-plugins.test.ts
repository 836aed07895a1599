/**
 * weft together with Debian's reference CNI plugins (containernetworking-
 * plugins 1.1, in /usr/lib/cni), exec'd by a tiny libcni-like runtime
 * (test/helpers/clients/cni-runtime.ts) in the test's host namespace:
 *  - the reference `bridge` plugin delegating IPAM to `weft-ipam` (found
 *    through CNI_PATH, as bridge execs its ipam.type): ADD gives weft's
 *    managed address (a reservation is honoured), containers ping each
 *    other, CHECK passes, DEL releases and is idempotent;
 *  - weft first in a chain with `tuning` (sysctl + MAC change on weft's
 *    interface): ADD in order with prevResult, CHECK with the final result,
 *    DEL in reverse order with the final result;
 *  - weft chained with `portmap` (the conflist `weft install-cni --ports
 *    portmap` writes): the published port works from a client namespace
 *    and DEL removes portmap's DNAT and weft's address.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hostIfnameFor } from '../../src/core/dataplane/names.js';
import { exec, execOk, ping } from '../helpers/exec.js';
import { TestRouter } from '../helpers/router.js';
import { type Netns, World, canCreateNetns, cleanupLeftovers } from '../helpers/world.js';
import { type Conflist, type Json, MiniRuntime, type RuntimeConf } from '../helpers/clients/cni-runtime.js';
import { HOST_OUTSIDE_IP, connectClient, httpGet, iptablesNat, linkNames } from '../helpers/clients/net.js';
import { BUSYBOX, haveBusybox } from '../helpers/clients/rootfs.js';
import { installCni, ipList, weftOk } from '../helpers/clients/weft.js';

const REF = '/usr/lib/cni';
const haveReference = (): boolean => ['bridge', 'tuning', 'portmap'].every((p) => existsSync(join(REF, p)));
const skip = !canCreateNetns() ? 'needs root on Linux (creates network namespaces)'
  : !haveReference() ? `the reference CNI plugins are not in ${REF} (apt-get install containernetworking-plugins)`
    : !haveBusybox() ? 'busybox-static is not installed' : false;

const RANGE = '10.77.0.0/24';
const REF_CIDR = '10.77.3.0/24';
const REF_GW = '10.77.3.1';
const PM_CIDR = '10.77.4.0/24';

interface ResultIp { address: string; gateway?: string; interface?: number }
interface ResultIface { name: string; mac?: string; sandbox?: string }
const ipsOf = (r: Json): ResultIp[] => (r['ips'] ?? []) as ResultIp[];
const ifacesOf = (r: Json): ResultIface[] => (r['interfaces'] ?? []) as ResultIface[];

async function ipv4In(ns: Netns, dev = 'eth0'): Promise<string[]> {
  const [l] = JSON.parse(await execOk('ip', ['-j', '-4', 'addr', 'show', 'dev', dev], { netns: ns.name })) as { addr_info: { local: string; prefixlen: number }[] }[];
  return (l?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
}

async function macIn(ns: Netns, dev = 'eth0'): Promise<string> {
  const [l] = JSON.parse(await execOk('ip', ['-j', 'link', 'show', 'dev', dev], { netns: ns.name })) as { address: string }[];
  return l!.address;
}

describe('Debian reference CNI plugins with weft', { skip, timeout: 10 * 60_000 }, () => {
  let world: World;
  let host: Netns;
  let client: Netns;
  let router: TestRouter;
  let binDir: string;
  let confDir: string;
  let tuningDir: string;
  let www: string;
  let rt: MiniRuntime;

  before(async () => {
    await cleanupLeftovers();
    world = new World();
    host = await world.netns('ref');
    router = new TestRouter(world, host, { ipallocRange: RANGE });
    await router.start();
    const dir = world.tempDir('weft-refplugins');
    binDir = join(dir, 'cni', 'bin');
    confDir = join(dir, 'cni', 'net.d');
    tuningDir = join(dir, 'tuning');
    www = join(dir, 'www');
    mkdirSync(www, { recursive: true });
    writeFileSync(join(www, 'index.html'), 'hello through portmap\n');
    await installCni(router, binDir, confDir);
    await weftOk(router, 'subnet', 'create', 'ref', '--cidr', REF_CIDR);
    // CNI_PATH: weft's launchers first, then the reference plugins.
    rt = new MiniRuntime(host, [binDir, REF]);
    client = await connectClient(world, host);
  });

  after(async () => {
    await router?.stop();
    await world?.cleanup();
  });

  const rtFor = (ns: Netns, containerId: string, name?: string, capabilityArgs?: Json): RuntimeConf => ({
    containerId, netns: ns.path, ifname: 'eth0', ...(name ? { args: `IgnoreUnknown=1;K8S_POD_NAME=${name}` } : {}), ...(capabilityArgs ? { capabilityArgs } : {}),
  });

  test('reference bridge with ipam weft-ipam: managed address, ping, CHECK, DEL releases (and is idempotent)', async () => {
    const list: Conflist = {
      cniVersion: '1.0.0',
      name: 'refbr',
      plugins: [{ type: 'bridge', bridge: 'wtrefbr0', isGateway: true, ipMasq: false, hairpinMode: true, ipam: { type: 'weft-ipam', socket: router.socket, subnet: 'ref' } }],
    };
    await weftOk(router, 'ip', 'reserve', 'ref', '10.77.3.40', '--owner', 'default/refpod-a');
    const a = await world.netns('ca');
    const b = await world.netns('cb');
    const rtA = rtFor(a, 'refbr-a', 'refpod-a');
    const rtB = rtFor(b, 'refbr-b', 'refpod-b');
    const resA = await rt.add(list, rtA);
    const resB = await rt.add(list, rtB);

    assert.deepEqual(ipsOf(resA).map((i) => [i.address, i.gateway]), [['10.77.3.40/24', REF_GW]], `the reserved address, with weft's gateway: ${JSON.stringify(resA)}`);
    const addrB = ipsOf(resB)[0]?.address ?? '';
    assert.ok(addrB.startsWith('10.77.3.') && addrB !== '10.77.3.40/24', `B got another address of subnet ref: ${addrB}`);
    assert.deepEqual(await ipv4In(a), ['10.77.3.40/24'], 'bridge configured the address weft gave');
    assert.deepEqual(await ipv4In(b), [addrB]);

    // weft's view: bound to the container, identity from K8S_POD_NAME, weft-ipam did not build any interface itself.
    const allocs = (await ipList(router)).allocations;
    const allocA = allocs.find((x) => x.containerId === 'refbr-a');
    assert.equal(allocA?.ip, '10.77.3.40');
    assert.equal(allocA?.identity, 'default/refpod-a');
    assert.equal(allocA?.subnet, 'ref');
    assert.ok(!(await linkNames(host.name)).includes(hostIfnameFor('refbr-a', 'eth0')), 'no weft veth: the bridge plugin made its own');
    assert.ok((await linkNames(host.name)).includes('wtrefbr0'), 'the reference bridge exists in the host netns');

    assert.ok(await ping(a.name, addrB.split('/')[0]!, { count: 2, waitS: 2 }), 'A reaches B over the reference bridge');
    assert.ok(await ping(b.name, '10.77.3.40', { count: 2, waitS: 2 }), 'B reaches A');
    assert.ok(await ping(a.name, REF_GW, { count: 1, waitS: 2 }), 'the gateway (on the bridge) answers');

    await rt.check(list, rtA, resA);
    await rt.check(list, rtB, resB);

    await rt.del(list, rtA, resA);
    await rt.del(list, rtB, resB);
    assert.deepEqual((await ipList(router)).allocations, [], 'both addresses released');
    assert.deepEqual(await ipv4In(a).catch(() => []), [], 'bridge removed the container interface');
    // A runtime may repeat DEL (and libcni does on cleanup paths): still success.
    await rt.del(list, rtA, resA);
    await rt.del(list, { ...rtA, netns: '' }, resA);
    const left = await ipList(router);
    assert.deepEqual(left.reservations.map((r) => r.ip), ['10.77.3.40'], 'the reservation stays until released');
    await weftOk(router, 'ip', 'release', 'ref', '10.77.3.40');
  });

  test('weft chained with tuning (sysctl and MAC): ADD in order, CHECK, DEL in reverse order', async () => {
    const list: Conflist = {
      cniVersion: '1.0.0',
      name: 'weft',
      plugins: [
        { type: 'weft', socket: router.socket, ipMasq: false },
        { type: 'tuning', mac: '02:77:00:00:00:42', sysctl: { 'net.ipv4.conf.eth0.arp_notify': '1' }, dataDir: tuningDir },
      ],
    };
    const c = await world.netns('ct');
    const rtC = rtFor(c, 'tuned-c', 'tuned');
    const before = (await execOk('cat', ['/proc/sys/net/ipv4/conf/default/arp_notify'], { netns: c.name })).trim();
    assert.equal(before, '0');
    const res = await rt.add(list, rtC);

    // tuning got weft's result as prevResult and returned it with the new MAC.
    const tuningAdd = rt.runs.filter((r) => r.type === 'tuning' && r.command === 'ADD').pop()!;
    const weftAdd = rt.runs.filter((r) => r.type === 'weft' && r.command === 'ADD').pop()!;
    assert.deepEqual(tuningAdd.stdin['prevResult'], JSON.parse(weftAdd.stdout), 'prevResult is exactly weft\'s ADD result');
    const eth0 = ifacesOf(res).find((i) => i.name === 'eth0' && i.sandbox);
    assert.equal(eth0?.mac, '02:77:00:00:00:42', `the final result carries the tuned MAC: ${JSON.stringify(res)}`);
    assert.equal(await macIn(c), '02:77:00:00:00:42', 'tuning changed the MAC of weft\'s interface');
    assert.equal((await execOk('cat', ['/proc/sys/net/ipv4/conf/eth0/arp_notify'], { netns: c.name })).trim(), '1', 'tuning set the sysctl');
    const addr = ipsOf(res)[0]?.address;
    assert.ok(addr?.startsWith('10.77.0.'), `weft's address: ${addr}`);
    assert.deepEqual(await ipv4In(c), [addr]);
    assert.ok(await ping(c.name, '10.77.0.1', { count: 1, waitS: 2 }), 'the tuned interface still works');

    // CHECK runs every plugin with the final (tuned) result.
    await rt.check(list, rtC, res);

    await rt.del(list, rtC, res);
    const dels = rt.runs.filter((r) => r.command === 'DEL').slice(-2).map((r) => r.type);
    assert.deepEqual(dels, ['tuning', 'weft'], 'DEL runs in reverse order');
    for (const r of rt.runs.slice(-2)) assert.deepEqual(r.stdin['prevResult'], res, `${r.type} DEL got the cached final result`);
    assert.deepEqual((await ipList(router)).allocations, [], 'weft released the address');
    assert.deepEqual(await linkNames(c.name), ['lo'], 'the interface is gone from the container');
    assert.deepEqual(existsSync(tuningDir) ? readdirSync(tuningDir) : [], [], 'tuning dropped its saved state');
  });

  test('weft chained with portmap (install-cni --ports portmap): published port works, DEL removes the DNAT and the address', async () => {
    await weftOk(router, 'subnet', 'create', 'pm', '--cidr', PM_CIDR);
    const list = await installCni(router, binDir, confDir, { network: 'weftpm', subnet: 'pm', ports: 'portmap' }) as unknown as Conflist;
    assert.deepEqual(list.plugins.map((p) => p['type']), ['weft', 'portmap']);
    const c = await world.netns('cp');
    const rtC = rtFor(c, 'pm-c', 'web', { portMappings: [{ hostPort: 18090, containerPort: 80, protocol: 'tcp' }] });
    const res = await rt.add(list, rtC);
    const ip = ipsOf(res)[0]!.address.split('/')[0]!;
    assert.ok(ip.startsWith('10.77.4.'), `address from subnet pm: ${ip}`);

    const weftAdd = rt.runs.filter((r) => r.type === 'weft' && r.command === 'ADD').pop()!;
    assert.equal((weftAdd.stdin['runtimeConfig'] as Json | undefined)?.['portMappings'], undefined, 'weft does not claim portMappings in portmap mode');
    const pmAdd = rt.runs.filter((r) => r.type === 'portmap' && r.command === 'ADD').pop()!;
    assert.deepEqual((pmAdd.stdin['runtimeConfig'] as Json)['portMappings'], [{ hostPort: 18090, containerPort: 80, protocol: 'tcp' }]);

    world.spawnIn(c, BUSYBOX, ['httpd', '-f', '-p', '80', '-h', www]);
    assert.equal(await httpGet(client.name, `http://${HOST_OUTSIDE_IP}:18090/`), 'hello through portmap\n');
    assert.match(await iptablesNat(host.name), new RegExp(`--dport 18090 -j DNAT --to-destination ${ip.replace(/\./g, '\\.')}:80`));
    const nft = await exec('nft', ['list', 'table', 'inet', 'weft'], { netns: host.name });
    assert.doesNotMatch(nft.stdout, /dport 18090/, 'weft itself publishes nothing');

    // CHECK of weft with the final result. Not the whole list: Debian's portmap 1.1.1
    // fails CHECK when it made no IPv6 rules (containernetworking/plugins#819).
    await rt.exec('CHECK', 'weft', MiniRuntime.pluginConfig(list, list.plugins[0]!, rtC, res), rtC);
    await rt.del(list, rtC, res);
    assert.deepEqual(rt.runs.slice(-2).map((r) => r.type), ['portmap', 'weft']);
    assert.doesNotMatch(await iptablesNat(host.name), /18090/, 'portmap removed its DNAT');
    assert.deepEqual((await ipList(router)).allocations, [], 'weft released the address');
    assert.ok(!(await linkNames(host.name)).includes(hostIfnameFor('pm-c', 'eth0')), 'weft removed its veth');
  });
});
