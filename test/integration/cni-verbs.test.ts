/**
 * Every CNI verb against the real router and kernel, through the real
 * plugin bundle, for every cniVersion weft speaks: the exact ADD result
 * shape per version, what the container really got (address, default
 * route, reachability), CHECK, idempotent DEL (also with an empty
 * CNI_NETNS and after the netns is gone), VERSION, STATUS, and the
 * weft-ipam plugin run on its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hostIfnameFor } from '../../src/core/dataplane/names.js';
import { execOk, ping } from '../helpers/exec.js';
import { type Kit, addrs, allocationsOf, assertNothingLeft, cid, cniError, cniOk, firstIp, linkInfo, linkNames, routes, startKit } from '../helpers/it-kit.js';
import { weftConf } from '../helpers/router.js';
import { canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

const RANGE = '10.77.0.0/24';
const GATEWAY = '10.77.0.1';
const MTU = 1400;
const VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const is0x = (v: string): boolean => v.startsWith('0.');

describe('CNI verbs on a real router', { skip }, () => {
  let kit: Kit;
  before(async () => {
    kit = await startKit('vrb', { ipallocRange: RANGE, mtu: MTU });
  });
  after(async () => {
    await kit?.world.cleanup();
  });

  /** ADD through the plugin; asserts it worked and returns the container's facts. */
  async function add(config: Record<string, unknown>, name: string) {
    const ns = await kit.world.netns('c');
    const id = cid('vrb');
    const call = { command: 'ADD' as const, containerId: id, netns: ns.path, ifname: 'eth0', args: `IgnoreUnknown=1;K8S_POD_NAME=${name}` };
    const result = cniOk(await kit.router.cni(call, config))!;
    return { ns, id, call, result };
  }

  /** What the kernel says about an attachment, to compare with the result. */
  async function kernelFacts(nsName: string, id: string) {
    const [cont, hostEnd, bridge] = await Promise.all([linkInfo(nsName, 'eth0'), linkInfo(kit.host, hostIfnameFor(id, 'eth0')), linkInfo(kit.host, 'weft')]);
    assert.ok(cont, 'eth0 exists in the container');
    assert.ok(hostEnd, 'the host end of the veth exists in the host netns');
    assert.ok(bridge, 'the bridge exists in the host netns');
    return { cont, hostEnd, bridge };
  }

  const configs: { label: string; config: Record<string, unknown>; version: string }[] = [
    ...VERSIONS.map((v) => ({ label: `cniVersion ${v}`, config: weftConf({}, v), version: v })),
    // 0.3.0 results have the 0.3.1 shape (0.3.1 only fixed the spec text).
    { label: 'cniVersion 0.3.0', config: weftConf({}, '0.3.0'), version: '0.3.0' },
    { label: 'cniVersions list (highest supported wins)', config: { name: 'weft', type: 'weft', cniVersions: ['0.3.1', '1.0.0', '1.1.0'] }, version: '1.1.0' },
    { label: 'cniVersions list with versions weft does not know', config: { name: 'weft', type: 'weft', cniVersions: ['0.4.0', '1.0.0', '2.0.0'] }, version: '1.0.0' },
  ];

  for (const { label, config, version } of configs) {
    test(`ADD, CHECK, DEL with ${label}`, async () => {
      const { ns, id, call, result } = await add(config, `pod-${version.replace(/\./g, '')}`);
      const address = (result['ips'] as { address: string }[] | undefined)?.[0]?.address;
      assert.ok(address?.startsWith('10.77.0.') && address.endsWith('/24'), `address from ${RANGE}: ${JSON.stringify(result)}`);
      const { cont, hostEnd, bridge } = await kernelFacts(ns.name, id);

      // The exact result of this version: nothing more, nothing less.
      assert.deepEqual(result, {
        cniVersion: version,
        interfaces: [
          { name: 'weft', mac: bridge.address },
          { name: hostIfnameFor(id, 'eth0'), mac: hostEnd.address },
          { name: 'eth0', mac: cont.address, ...(version === '1.1.0' ? { mtu: MTU } : {}), sandbox: ns.path },
        ],
        ips: [{ ...(is0x(version) ? { version: '4' } : {}), interface: 2, address, gateway: GATEWAY }],
        routes: [{ dst: '0.0.0.0/0' }],
        ...(is0x(version) ? { dns: {} } : {}),
      });

      // The container really has it.
      assert.deepEqual(await addrs(ns, 'eth0'), [address]);
      assert.equal(cont.mtu, MTU);
      assert.equal(cont.operstate, 'UP');
      const def = (await routes(ns)).filter((r) => r.dst === 'default');
      assert.deepEqual(def.map((r) => ({ gateway: r.gateway, dev: r.dev })), [{ gateway: GATEWAY, dev: 'eth0' }]);
      const [alloc] = await allocationsOf(kit.router, id);
      assert.equal(`${alloc?.ip}/24`, address);

      // CHECK exists from 0.4.0 on.
      const check = await kit.router.cni({ ...call, command: 'CHECK' }, { ...config, prevResult: result });
      if (version === '0.3.0' || version === '0.3.1') {
        const e = cniError(check, 1);
        assert.equal(e.msg, `config version "${version}" does not allow CHECK: CHECK needs cniVersion 0.4.0 or later`);
      } else {
        assert.equal(cniOk(check), undefined, 'CHECK prints nothing on success');
      }

      // DEL, twice: both succeed and print nothing.
      for (let i = 0; i < 2; i++) {
        const del = await kit.router.cni({ ...call, command: 'DEL' }, { ...config, ...(version === '0.3.0' || version === '0.3.1' ? {} : { prevResult: result }) });
        assert.equal(cniOk(del), undefined);
        assert.equal(del.stdout, '');
      }
      assert.ok(!(await linkNames(ns)).includes('eth0'), 'eth0 is gone from the container');
      await assertNothingLeft(kit.router, id);
    });
  }

  test('two containers reach each other and the gateway', async () => {
    const conf = weftConf();
    const [a, b] = await Promise.all([add(conf, 'ping-a'), add(conf, 'ping-b')]);
    const ipA = firstIp(a.result);
    const ipB = firstIp(b.result);
    assert.notEqual(ipA, ipB);
    const [ab, ba, agw, bgw] = await Promise.all([ping(a.ns.name, ipB), ping(b.ns.name, ipA), ping(a.ns.name, GATEWAY), ping(b.ns.name, GATEWAY)]);
    assert.deepEqual({ ab, ba, agw, bgw }, { ab: true, ba: true, agw: true, bgw: true });
    for (const c of [a, b]) cniOk(await kit.router.cni({ ...c.call, command: 'DEL' }, conf));
    assert.equal(await ping(a.ns.name, ipB), false, 'no connectivity after DEL');
  });

  test('a retried ADD gets the same result; the same container/ifname from another netns is refused', async () => {
    const conf = weftConf();
    const { ns, id, call, result } = await add(conf, 'retry');
    assert.deepEqual(cniOk(await kit.router.cni(call, conf)), result);
    assert.equal((await allocationsOf(kit.router, id)).length, 1, 'no second address');
    const other = await kit.world.netns('c');
    const e = cniError(await kit.router.cni({ ...call, netns: other.path }, conf), 105);
    assert.equal(e.msg, `container ${id} already has interface eth0 attached (network "weft")`);
    assert.equal(e.details, 'hint: the runtime must DEL before it ADDs the same interface again');
    assert.deepEqual(await linkNames(other), ['lo']);
    assert.deepEqual(await addrs(ns, 'eth0'), [(result['ips'] as { address: string }[])[0]!.address], 'the first attachment is untouched');
    cniOk(await kit.router.cni({ ...call, command: 'DEL' }, conf));
    await assertNothingLeft(kit.router, id);
  });

  test('CHECK fails with a clear error once someone removed the address in the container', async () => {
    const conf = weftConf();
    const { ns, id, call, result } = await add(conf, 'check-me');
    const address = (result['ips'] as { address: string }[])[0]!.address;
    cniOk(await kit.router.cni({ ...call, command: 'CHECK' }, { ...conf, prevResult: result }));
    await execOk('ip', ['addr', 'del', address, 'dev', 'eth0'], { netns: ns.name });
    const e = cniError(await kit.router.cni({ ...call, command: 'CHECK' }, { ...conf, prevResult: result }), 108);
    assert.equal(e.msg, `interface eth0 in ${ns.path} lacks address ${address} (has none)`);
    // The runtime then tears it down; DEL must still clean everything.
    cniOk(await kit.router.cni({ ...call, command: 'DEL' }, { ...conf, prevResult: result }));
    await assertNothingLeft(kit.router, id);
  });

  test('CHECK fails when the interface is gone, and for an attachment weft does not know', async () => {
    const conf = weftConf();
    const { ns, id, call, result } = await add(conf, 'check-gone');
    await execOk('ip', ['link', 'del', 'eth0'], { netns: ns.name });
    const e = cniError(await kit.router.cni({ ...call, command: 'CHECK' }, { ...conf, prevResult: result }), 108);
    assert.equal(e.msg, `interface eth0 is missing in ${ns.path}`);
    cniOk(await kit.router.cni({ ...call, command: 'DEL' }, conf));
    await assertNothingLeft(kit.router, id);
    const unknown = cniError(await kit.router.cni({ ...call, command: 'CHECK' }, { ...conf, prevResult: result }), 3);
    assert.equal(unknown.msg, `weft has no attachment for container ${id} interface eth0`);
    const noPrev = cniError(await kit.router.cni({ ...call, command: 'CHECK' }, conf), 7);
    assert.match(noPrev.msg, /prevResult/);
  });

  test('DEL with an empty CNI_NETNS (containerd after the task exited) removes everything', async () => {
    const conf = weftConf();
    const { ns, id, call } = await add(conf, 'del-empty');
    for (let i = 0; i < 2; i++) cniOk(await kit.router.cni({ ...call, command: 'DEL', netns: '' }, conf));
    assert.ok(!(await linkNames(ns)).includes('eth0'), 'the container end went with the host end');
    await assertNothingLeft(kit.router, id);
  });

  test('DEL after the netns was deleted succeeds and frees the address', async () => {
    const conf = weftConf();
    const { ns, id, call } = await add(conf, 'del-gone');
    await kit.world.deleteNetns(ns);
    for (let i = 0; i < 2; i++) cniOk(await kit.router.cni({ ...call, command: 'DEL' }, conf));
    await assertNothingLeft(kit.router, id);
  });

  test('DEL of an attachment weft never made succeeds', async () => {
    const id = cid('never');
    cniOk(await kit.router.cni({ command: 'DEL', containerId: id, netns: '/run/netns/wt-never-existed', ifname: 'eth0' }, weftConf()));
    cniOk(await kit.router.cni({ command: 'DEL', containerId: id, ifname: 'eth0' }, weftConf({}, '0.3.1')));
  });

  test('VERSION answers for both plugins without asking the router', async () => {
    for (const kind of ['weft', 'weft-ipam'] as const) {
      for (const v of ['0.3.1', '1.1.0']) {
        const out = await kit.router.cni({ command: 'VERSION', kind }, { cniVersion: v });
        assert.deepEqual(cniOk(out), { cniVersion: '1.1.0', supportedVersions: SUPPORTED });
      }
    }
  });

  test('STATUS: ready on 1.1.0, code 1 before 1.1.0', async () => {
    const ok = await kit.router.cni({ command: 'STATUS' }, weftConf());
    assert.equal(cniOk(ok), undefined);
    assert.equal(ok.stdout, '');
    cniOk(await kit.router.cni({ command: 'STATUS' }, { name: 'weft', type: 'weft', cniVersions: ['1.0.0', '1.1.0'] }));
    cniOk(await kit.router.cni({ command: 'STATUS', kind: 'weft-ipam' }, { cniVersion: '1.1.0', name: 'podnet', type: 'bridge', ipam: { type: 'weft-ipam' } }));
    for (const v of ['1.0.0', '0.4.0']) {
      const e = cniError(await kit.router.cni({ command: 'STATUS' }, weftConf({}, v)), 1);
      assert.equal(e.msg, `config version "${v}" does not allow STATUS: STATUS needs cniVersion 1.1.0 or later`);
      assert.equal(e.cniVersion, v);
    }
  });

  test('weft-ipam ADD/CHECK/DEL return IPAM results and touch no interface', async () => {
    const ns = await kit.world.netns('ipm');
    for (const v of VERSIONS) {
      const id = cid('ipam');
      const conf = { cniVersion: v, name: 'podnet', type: 'bridge', bridge: 'cni0', ipam: { type: 'weft-ipam' } };
      const call = { command: 'ADD' as const, kind: 'weft-ipam' as const, containerId: id, netns: ns.path, ifname: 'eth0', args: 'K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=ipam-pod' };
      const result = cniOk(await kit.router.cni(call, conf))!;
      const address = (result['ips'] as { address: string }[] | undefined)?.[0]?.address;
      assert.ok(address?.startsWith('10.77.0.'), JSON.stringify(result));
      assert.deepEqual(result, {
        cniVersion: v,
        ips: [{ ...(is0x(v) ? { version: '4' } : {}), address, gateway: GATEWAY }],
        routes: [{ dst: '0.0.0.0/0' }],
        ...(is0x(v) ? { dns: {} } : {}),
      }, `IPAM result for ${v}`);
      const [alloc] = await allocationsOf(kit.router, id);
      assert.equal(alloc?.identity, 'ns1/ipam-pod');
      assert.equal(alloc?.network, 'podnet');
      if (v !== '0.3.1') cniOk(await kit.router.cni({ ...call, command: 'CHECK' }, { ...conf, prevResult: result }));
      else cniError(await kit.router.cni({ ...call, command: 'CHECK' }, { ...conf, prevResult: result }), 1);
      cniOk(await kit.router.cni({ ...call, command: 'DEL' }, conf));
      cniOk(await kit.router.cni({ ...call, command: 'DEL' }, conf));
      await assertNothingLeft(kit.router, id);
    }
    assert.deepEqual(await linkNames(ns), ['lo'], 'weft-ipam created no interface');
  });
});
