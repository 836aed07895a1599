/**
 * macvlan mode against the real router and kernel: containers get a
 * macvlan on a master link of the host netns (a veth end here: not every
 * test kernel has the dummy driver), reach each other, and DEL removes
 * everything; a missing master is a clear error at ADD and at STATUS.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { execOk, ping } from '../helpers/exec.js';
import { type Kit, addrs, allocationsOf, assertNothingLeft, cid, cniError, cniOk, firstIp, linkInfo, linkNames, routes, startKit } from '../helpers/it-kit.js';
import { type CniCall, weftConf } from '../helpers/router.js';
import { type Netns, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const MASTER = 'mvup0';

describe('macvlan mode on a real router', { skip }, () => {
  let kit: Kit;
  let victim: Netns;
  const conf = weftConf({ name: 'mvnet', mode: 'macvlan', master: MASTER, subnet: 'mv' });

  before(async () => {
    kit = await startKit('mv', { ipallocRange: '10.81.0.0/24' });
    const h = kit.host.name;
    await execOk('ip', ['link', 'add', MASTER, 'type', 'veth', 'peer', 'name', `${MASTER}p`], { netns: h });
    await execOk('ip', ['link', 'set', MASTER, 'up'], { netns: h });
    await execOk('ip', ['link', 'set', `${MASTER}p`, 'up'], { netns: h });
    const r = await kit.router.weft('subnet', 'create', 'mv', '--cidr', '10.92.1.0/24');
    assert.equal(r.code, 0, r.stderr);
    victim = await kit.world.netns('v');
  });
  after(async () => {
    await kit?.world.cleanup();
  });

  async function add(name: string) {
    const ns = await kit.world.netns('c');
    const call: CniCall & { containerId: string } = { command: 'ADD', containerId: cid('mv'), netns: ns.path, ifname: 'eth0', args: `K8S_POD_NAME=${name}` };
    const result = cniOk(await kit.router.cni(call, conf))!;
    return { ns, call, result, ip: firstIp(result) };
  }

  test('two containers on macvlan reach each other; CHECK passes; DEL removes everything, twice', async () => {
    const [a, b] = await Promise.all([add('mv-a'), add('mv-b')]);
    for (const x of [a, b]) {
      const link = JSON.parse(await execOk('ip', ['-j', '-d', 'link', 'show', 'dev', 'eth0'], { netns: x.ns.name })) as { address: string; mtu: number; linkinfo?: { info_kind?: string; info_data?: { mode?: string } } }[];
      assert.equal(link[0]?.linkinfo?.info_kind, 'macvlan');
      assert.equal(link[0]?.linkinfo?.info_data?.mode, 'bridge');
      assert.deepEqual(x.result, {
        cniVersion: '1.1.0',
        interfaces: [{ name: 'eth0', mac: link[0]!.address, mtu: 1450, sandbox: x.ns.path }],
        ips: [{ interface: 0, address: `${x.ip}/24`, gateway: '10.92.1.1' }],
        routes: [{ dst: '0.0.0.0/0' }],
      });
      assert.deepEqual(await addrs(x.ns, 'eth0'), [`${x.ip}/24`]);
      assert.deepEqual((await routes(x.ns)).filter((r) => r.dst === 'default').map((r) => r.gateway), ['10.92.1.1']);
      cniOk(await kit.router.cni({ ...x.call, command: 'CHECK' }, { ...conf, prevResult: x.result }));
    }
    assert.deepEqual(await Promise.all([ping(a.ns.name, b.ip), ping(b.ns.name, a.ip)]), [true, true]);
    assert.ok(!(await linkNames(kit.host)).some((n) => n.startsWith('wv')), 'no veth in the host netns in macvlan mode');
    for (const x of [a, b]) {
      for (let i = 0; i < 2; i++) cniOk(await kit.router.cni({ ...x.call, command: 'DEL' }, conf));
      assert.deepEqual(await linkNames(x.ns), ['lo']);
      await assertNothingLeft(kit.router, x.call.containerId);
    }
    assert.equal((await linkInfo(kit.host, MASTER))?.operstate, 'UP', 'the master is left as it was');
  });

  test('DEL after the container netns is gone succeeds', async () => {
    const a = await add('mv-gone');
    await kit.world.deleteNetns(a.ns);
    cniOk(await kit.router.cni({ ...a.call, command: 'DEL' }, conf));
    await assertNothingLeft(kit.router, a.call.containerId);
  });

  test('a missing master is a clear error at ADD (nothing left) and at STATUS', async () => {
    const bad = { ...conf, master: 'nosuch0' };
    const call: CniCall & { containerId: string } = { command: 'ADD', containerId: cid('mv'), netns: victim.path, ifname: 'eth0', args: 'K8S_POD_NAME=mv-bad' };
    const e = cniError(await kit.router.cni(call, bad), 7);
    assert.equal(e.msg, 'macvlan master "nosuch0" does not exist in the host network namespace');
    assert.equal(e.details, 'hint: set "master" to an existing interface of the host');
    await assertNothingLeft(kit.router, call.containerId);
    assert.deepEqual(await allocationsOf(kit.router, call.containerId), []);
    assert.deepEqual(await linkNames(victim), ['lo']);
    cniOk(await kit.router.cni({ ...call, command: 'DEL' }, bad));

    cniOk(await kit.router.cni({ command: 'STATUS' }, conf));
    const st = cniError(await kit.router.cni({ command: 'STATUS' }, bad), 50);
    assert.equal(st.msg, 'macvlan master interface nosuch0 does not exist');
  });

  test('an ifname that exists in the container, or the host netns as CNI_NETNS: refused, nothing touched', async () => {
    const ns = await kit.world.netns('x');
    await execOk('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'own-peer'], { netns: ns.name });
    const before = await linkInfo(ns, 'eth0');
    const call: CniCall & { containerId: string } = { command: 'ADD', containerId: cid('mv'), netns: ns.path, ifname: 'eth0', args: 'K8S_POD_NAME=mv-x' };
    assert.equal(cniError(await kit.router.cni(call, conf), 106).msg, `interface "eth0" already exists in ${ns.path}`);
    cniOk(await kit.router.cni({ ...call, command: 'DEL' }, conf));
    assert.deepEqual(await linkInfo(ns, 'eth0'), before, 'the runtime\'s own eth0 survives ADD and DEL');
    await assertNothingLeft(kit.router, call.containerId);
    const hostLinks = await linkNames(kit.host);
    const own = cniError(await kit.router.cni({ ...call, netns: kit.host.path }, conf), 4);
    assert.equal(own.msg, `CNI_NETNS "${kit.host.path}" is the weft router's own network namespace, not a container's`);
    assert.deepEqual(await linkNames(kit.host), hostLinks);
    await assertNothingLeft(kit.router, call.containerId);
  });

  test('macvlan configuration errors', async () => {
    const call: CniCall & { containerId: string } = { command: 'ADD', containerId: cid('mv'), netns: victim.path, ifname: 'eth0', args: 'K8S_POD_NAME=mv-cfg' };
    const { master: _m, ...noMaster } = conf;
    assert.equal(cniError(await kit.router.cni(call, noMaster), 7).msg, 'master: mode "macvlan" needs "master", the host interface to attach to');
    assert.equal(cniError(await kit.router.cni(call, { ...conf, bridge: 'br0' }), 7).msg, 'bridge: only valid with mode "bridge", but mode is "macvlan"');
    assert.equal(cniError(await kit.router.cni(call, { ...conf, macvlanMode: 'fast' }), 7).msg, 'macvlanMode: expected "bridge", "private", "vepa", "passthru", got "fast"');
    const pm = cniError(await kit.router.cni(call, { ...conf, capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80 }] } }), 2);
    assert.equal(pm.msg, 'runtimeConfig.portMappings: port publishing needs mode "bridge" (macvlan traffic bypasses the host)');
    await assertNothingLeft(kit.router, call.containerId);
    assert.deepEqual(await linkNames(victim), ['lo']);
  });
});
