/**
 * CNI 1.1 GC and STATUS against the real router: GC releases exactly the
 * attachments of its network that the runtime no longer lists (under the
 * current `cni.dev/valid-attachments` key or only the legacy
 * `cni.dev/attachments`), refuses to run without a list, and STATUS answers
 * 50 when the configured subnet cannot serve an ADD.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hostIfnameFor } from '../../src/core/dataplane/names.js';
import { ping } from '../helpers/exec.js';
import { type Kit, allocationsOf, assertNothingLeft, cid, cniError, cniOk, firstIp, linkNames, ps, startKit } from '../helpers/it-kit.js';
import { type CniCall, weftConf } from '../helpers/router.js';
import { type Netns, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

interface Added { ns: Netns; call: CniCall & { containerId: string }; ip: string; config: Record<string, unknown> }

describe('GC and STATUS on a real router', { skip }, () => {
  let kit: Kit;
  const gcConf = weftConf({ name: 'gcnet', subnet: 'gc' });
  const otherConf = weftConf({ name: 'othernet', subnet: 'oth' });

  before(async () => {
    kit = await startKit('gc', { ipallocRange: '10.80.0.0/24' });
    for (const s of [['gc', '10.91.1.0/24'], ['oth', '10.91.2.0/24'], ['full', '10.91.3.0/30'], ['capped', '10.91.4.0/24', '--quota', '1'], ['ipgc', '10.91.5.0/24']]) {
      const r = await kit.router.weft('subnet', 'create', s[0]!, '--cidr', ...s.slice(1));
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    await kit?.world.cleanup();
  });

  async function add(config: Record<string, unknown>, name: string): Promise<Added> {
    const ns = await kit.world.netns('c');
    const call = { command: 'ADD' as const, containerId: cid('gc'), netns: ns.path, ifname: 'eth0', args: `K8S_POD_NAME=${name}` };
    const ip = firstIp(cniOk(await kit.router.cni(call, config)));
    return { ns, call, ip, config };
  }

  /** The attachment is fully there: veth both ends, address bound to it, attachment listed, reachable. */
  async function assertIntact(a: Added, gateway: string): Promise<void> {
    assert.ok((await linkNames(kit.host)).includes(hostIfnameFor(a.call.containerId, 'eth0')), 'host veth end present');
    assert.ok((await linkNames(a.ns)).includes('eth0'), 'container interface present');
    const allocs = await allocationsOf(kit.router, a.call.containerId);
    assert.deepEqual(allocs.map((x) => `${x.ip} ${x.state}`), [`${a.ip} bound`]);
    assert.ok((await ps(kit.router)).some((x) => x.containerId === a.call.containerId && x.state === 'ready'));
    assert.equal(await ping(a.ns.name, gateway), true, `${a.call.containerId} still reaches its gateway`);
  }

  async function assertReleased(a: Added): Promise<void> {
    await assertNothingLeft(kit.router, a.call.containerId);
    assert.ok(!(await linkNames(a.ns)).includes('eth0'), 'container interface gone');
  }

  const gcCall: CniCall = { command: 'GC' };
  const list = (...xs: Added[]): { containerID: string; ifname: string }[] => xs.map((x) => ({ containerID: x.call.containerId, ifname: 'eth0' }));

  test('GC with cni.dev/valid-attachments releases only the unlisted attachments of its network', async () => {
    const [a, b, c, x] = await Promise.all([add(gcConf, 'gc-a'), add(gcConf, 'gc-b'), add(gcConf, 'gc-c'), add(otherConf, 'other-x')]);
    cniOk(await kit.router.cni(gcCall, { ...gcConf, 'cni.dev/valid-attachments': list(a) }));
    await Promise.all([assertReleased(b), assertReleased(c)]);
    await assertIntact(a, '10.91.1.1');
    await assertIntact(x, '10.91.2.1');
    // The freed addresses can be handed out again.
    const ips = new Set((await Promise.all([add(gcConf, 'gc-d'), add(gcConf, 'gc-e')])).map((d) => d.ip));
    assert.ok(!ips.has(a.ip));
    // Clean up through GC with an empty list: nothing of gcnet is valid any more.
    cniOk(await kit.router.cni(gcCall, { ...gcConf, 'cni.dev/valid-attachments': [] }));
    assert.deepEqual((await ps(kit.router)).filter((p) => p.network === 'gcnet'), []);
    await assertReleased(a);
    await assertIntact(x, '10.91.2.1');
    cniOk(await kit.router.cni({ ...x.call, command: 'DEL' }, otherConf));
  });

  test('GC with only the legacy cni.dev/attachments key works the same', async () => {
    const [a, b] = await Promise.all([add(gcConf, 'legacy-a'), add(gcConf, 'legacy-b')]);
    cniOk(await kit.router.cni(gcCall, { ...gcConf, 'cni.dev/attachments': list(b) }));
    await assertReleased(a);
    await assertIntact(b, '10.91.1.1');
    // Both keys together (what libcni sends): the union is valid.
    const c = await add(gcConf, 'legacy-c');
    cniOk(await kit.router.cni(gcCall, { ...gcConf, 'cni.dev/valid-attachments': list(b), 'cni.dev/attachments': list(c) }));
    await assertIntact(b, '10.91.1.1');
    await assertIntact(c, '10.91.1.1');
    for (const d of [b, c]) cniOk(await kit.router.cni({ ...d.call, command: 'DEL' }, gcConf));
  });

  test('GC without any list is an error and removes nothing; GC before 1.1.0 is code 1', async () => {
    const a = await add(gcConf, 'nolist-a');
    const e = cniError(await kit.router.cni(gcCall, gcConf), 7);
    assert.equal(e.msg, 'GC needs "cni.dev/valid-attachments" (or the older "cni.dev/attachments") in the configuration');
    const bad = cniError(await kit.router.cni(gcCall, { ...gcConf, 'cni.dev/valid-attachments': 'all' }), 7);
    assert.equal(bad.msg, 'cni.dev/valid-attachments: expected an array of {containerID, ifname}, got "all"');
    const old = cniError(await kit.router.cni(gcCall, { ...weftConf({ name: 'gcnet', subnet: 'gc' }, '1.0.0'), 'cni.dev/valid-attachments': [] }), 1);
    assert.equal(old.msg, 'config version "1.0.0" does not allow GC: GC needs cniVersion 1.1.0 or later');
    cniOk(await kit.router.cni(gcCall, { ...gcConf, disableGC: true, 'cni.dev/valid-attachments': [] }));
    await assertIntact(a, '10.91.1.1');
    cniOk(await kit.router.cni({ ...a.call, command: 'DEL' }, gcConf));
  });

  test('GC through weft-ipam releases unlisted IPAM allocations of its network', async () => {
    const ns = await kit.world.netns('i');
    const conf = { cniVersion: '1.1.0', name: 'podnet', type: 'bridge', ipam: { type: 'weft-ipam', subnet: 'ipgc' } };
    const calls = ['ipam-a', 'ipam-b'].map((n) => ({ command: 'ADD' as const, kind: 'weft-ipam' as const, containerId: cid('ipgc'), netns: ns.path, ifname: 'eth0', args: `K8S_POD_NAME=${n}` }));
    for (const c of calls) cniOk(await kit.router.cni(c, conf));
    cniOk(await kit.router.cni({ command: 'GC', kind: 'weft-ipam' }, { ...conf, 'cni.dev/valid-attachments': [{ containerID: calls[0]!.containerId, ifname: 'eth0' }] }));
    assert.equal((await allocationsOf(kit.router, calls[0]!.containerId)).length, 1);
    await assertNothingLeft(kit.router, calls[1]!.containerId);
    cniOk(await kit.router.cni({ ...calls[0]!, command: 'DEL' }, conf));
  });

  test('STATUS is 50 when the configured subnet does not exist, is full or at its quota', async () => {
    cniOk(await kit.router.cni({ command: 'STATUS' }, gcConf));
    const missing = cniError(await kit.router.cni({ command: 'STATUS' }, weftConf({ subnet: 'nosuch' })), 50);
    assert.equal(missing.msg, 'subnet "nosuch" is not defined');
    assert.equal(missing.details, 'hint: create it with `weft subnet create`');
    const ipamMissing = cniError(await kit.router.cni({ command: 'STATUS', kind: 'weft-ipam' }, { cniVersion: '1.1.0', name: 'podnet', type: 'bridge', ipam: { type: 'weft-ipam', subnet: 'nosuch' } }), 50);
    assert.equal(ipamMissing.msg, 'subnet "nosuch" is not defined');

    const fullConf = weftConf({ subnet: 'full' });
    cniOk(await kit.router.cni({ command: 'STATUS' }, fullConf));
    const f = await add(fullConf, 'fills-it');
    assert.equal(f.ip, '10.91.3.2');
    assert.equal(cniError(await kit.router.cni({ command: 'STATUS' }, fullConf), 50).msg, 'subnet "full" has no free address');
    // One full subnet in a list makes the network unable to ADD.
    cniError(await kit.router.cni({ command: 'STATUS' }, weftConf({ subnet: ['gc', 'full'] })), 50);

    const cappedConf = weftConf({ subnet: 'capped' });
    const q = await add(cappedConf, 'caps-it');
    assert.equal(cniError(await kit.router.cni({ command: 'STATUS' }, cappedConf), 50).msg, 'subnet "capped" is at its quota of 1');

    for (const [a, conf] of [[f, fullConf], [q, cappedConf]] as const) cniOk(await kit.router.cni({ ...a.call, command: 'DEL' }, conf));
    cniOk(await kit.router.cni({ command: 'STATUS' }, fullConf));
    cniOk(await kit.router.cni({ command: 'STATUS' }, cappedConf));
  });
});
