/**
 * A failed ADD leaves nothing behind: no veth, no address (in the container
 * or on the host), no nftables rule, no allocation, no attachment. Each
 * failure is caused by a real condition at a different step of the ADD
 * (before allocation, after allocation but before kernel work, in the host
 * half of the kernel work, in the container half), against the real router.
 * Also: a DEL whose host veth was already deleted by hand.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hostIfnameFor } from '../../src/core/dataplane/names.js';
import { execOk, ping } from '../helpers/exec.js';
import { attachments, cniCode, globalAddrs, hostVeths, ipList, linkInfo, linkNames, nftRules, resultIp } from '../helpers/robustness.js';
import { TestRouter, weftConf } from '../helpers/router.js';
import { type Netns, World, canCreateNetns, cleanupLeftovers } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

describe('rollback of failed ADDs on a real router', { skip }, () => {
  const world = new World();
  let host: Netns;
  let router: TestRouter;
  let base: Netns;
  let seq = 0;
  const PUBLISHED = { hostPort: 8080, containerPort: 80, protocol: 'tcp' };
  const caps = { portMappings: true, mac: true, ips: true };
  const conf = (over: Record<string, unknown> = {}) => weftConf({ ipMasq: true, capabilities: caps, ...over });

  before(async () => {
    await cleanupLeftovers();
    host = await world.netns('rbh');
    router = new TestRouter(world, host, { ipallocRange: '10.80.0.0/24' });
    await router.start();
    // A healthy container with masquerade and a published port, so the bridge and the nft table exist.
    base = await world.netns('rbb');
    const r = await router.cni({ command: 'ADD', containerId: 'base', netns: base.path, ifname: 'eth0', args: 'K8S_POD_NAME=base' }, conf({ runtimeConfig: { portMappings: [PUBLISHED] } }));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok((await nftRules(host.name)).length > 0, 'the base container has nft rules');
  });

  after(async () => {
    try { await router?.stop(); } finally { await world.cleanup(); }
  });

  /** Everything a failed ADD could leave behind, as comparable data. */
  async function snapshot(cont?: Netns): Promise<Record<string, unknown>> {
    return {
      hostLinks: await linkNames(host.name),
      hostAddrs: await globalAddrs(host.name),
      hostVeths: await hostVeths(host.name),
      nft: await nftRules(host.name),
      allocations: (await ipList(router)).allocations.map((a) => `${a.subnet} ${a.ip} ${a.state} ${a.containerId ?? ''}`).sort(),
      attachments: (await attachments(router)).map((a) => `${a.containerId}/${a.ifname} ${a.state}`).sort(),
      ...(cont ? { containerLinks: await linkNames(cont.name), containerAddrs: await globalAddrs(cont.name) } : {}),
    };
  }

  /** Runs a failing ADD, checks its code and that nothing changed; then the runtime's DEL must succeed and change nothing either. */
  async function failingAdd(opts: { netns: string; cont?: Netns; conf: Record<string, unknown>; args?: string; delArgs?: string; ifname?: string; code: number; msg?: RegExp }): Promise<void> {
    const id = `rb-${++seq}`;
    const before = await snapshot(opts.cont);
    const call = { containerId: id, netns: opts.netns, ifname: opts.ifname ?? 'eth0', args: opts.args ?? `K8S_POD_NAME=${id}` };
    const r = await router.cni({ command: 'ADD', ...call }, opts.conf);
    assert.equal(r.code, 1, `ADD must fail: ${r.stdout}${r.stderr}`);
    assert.equal(cniCode(r.json), opts.code, `CNI code: ${r.stdout}`);
    if (opts.msg) assert.match(String(r.json?.msg), opts.msg);
    assert.deepEqual(await snapshot(opts.cont), before, 'the failed ADD left nothing behind');
    const d = await router.cni({ command: 'DEL', ...call, ...(opts.delArgs !== undefined ? { args: opts.delArgs } : {}) }, opts.conf);
    assert.equal(d.code, 0, `DEL after a failed ADD succeeds: ${d.stdout}`);
    assert.deepEqual(await snapshot(opts.cont), before, 'the DEL after a failed ADD changed nothing');
    // The base container was not disturbed.
    assert.equal(await ping(base.name, '10.80.0.1'), true);
  }

  test('CNI_IFNAME already exists in the container (kernel step, before the veth): code 106, the runtime\'s interface survives the DEL', async () => {
    const c = await world.netns('rb');
    await execOk('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'rt-peer'], { netns: c.name });
    await execOk('ip', ['addr', 'add', '192.0.2.7/24', 'dev', 'eth0'], { netns: c.name });
    await failingAdd({ netns: c.path, cont: c, conf: conf({ runtimeConfig: { portMappings: [{ hostPort: 8081, containerPort: 80, protocol: 'tcp' }] } }), code: 106 });
    assert.equal((await linkInfo(c.name, 'eth0'))?.ifname, 'eth0');
    assert.deepEqual(await globalAddrs(c.name), ['192.0.2.7/24']);
  });

  test('a subnet route via an unreachable gateway (fails in the container half, after the veth exists): nothing left', async () => {
    await router.api().post('/v1/subnets', { name: 'badroute', cidr: '10.81.0.0/24', routes: [{ dst: '203.0.113.0/24', gw: '10.99.0.1' }] });
    const c = await world.netns('rb');
    // On the existing network: its bridge must not keep the new subnet's gateway.
    await failingAdd({ netns: c.path, cont: c, conf: conf({ subnet: 'badroute', runtimeConfig: { portMappings: [{ hostPort: 8082, containerPort: 80, protocol: 'tcp' }] } }), code: 107, msg: /Nexthop has invalid gateway/ });
  });

  test('a subnet route via an unreachable gateway on a new network: no bridge left either', async () => {
    const c = await world.netns('rb');
    await failingAdd({ netns: c.path, cont: c, conf: conf({ name: 'badnet', subnet: 'badroute' }), code: 107, msg: /Nexthop has invalid gateway/ });
  });

  test('CNI_NETNS is a regular file, not a namespace (after allocation, before kernel work): code 4', async () => {
    const f = join(world.tempDir('rb-notns'), 'netns');
    writeFileSync(f, 'not a namespace\n');
    await failingAdd({ netns: f, conf: conf(), code: 4 });
  });

  test('CNI_NETNS does not exist: code 4', async () => {
    await failingAdd({ netns: '/run/netns/wt-does-not-exist', conf: conf(), code: 4 });
  });

  test('a port mapping that conflicts with another container\'s: code 105', async () => {
    const c = await world.netns('rb');
    await failingAdd({ netns: c.path, cont: c, conf: conf({ runtimeConfig: { portMappings: [PUBLISHED] } }), code: 105, msg: /8080/ });
  });

  test('a requested MAC that is not a MAC (CNI_ARGS, runtimeConfig): refused, nothing left', async () => {
    const c = await world.netns('rb');
    // The plugin checks CNI_ARGS on DEL as well, so the runtime's DEL carries args without the bad MAC here.
    await failingAdd({ netns: c.path, cont: c, conf: conf(), args: 'IgnoreUnknown=1;MAC=zz:11:22:33:44:55', delArgs: 'IgnoreUnknown=1', code: 4 });
    await failingAdd({ netns: c.path, cont: c, conf: conf({ runtimeConfig: { mac: '03:00:00:00:00:01' } }), code: 7 });
  });

  test('a requested MAC that passes the config check but not the attach plan (all zeros; after allocation and bridge): code 7, nothing left', async () => {
    const c = await world.netns('rb');
    await failingAdd({ netns: c.path, cont: c, conf: conf({ runtimeConfig: { mac: '00:00:00:00:00:00', portMappings: [{ hostPort: 8083, containerPort: 80, protocol: 'tcp' }] } }), code: 7, msg: /all-zero/ });
  });

  test('a requested address outside the subnet, and one already taken: codes 101, nothing left', async () => {
    const c = await world.netns('rb');
    await failingAdd({ netns: c.path, cont: c, conf: conf({ runtimeConfig: { ips: ['10.99.0.5'] } }), code: 101 });
    const baseIp = (await attachments(router)).find((a) => a.containerId === 'base')!.ips[0]!.address.split('/')[0]!;
    await failingAdd({ netns: c.path, cont: c, conf: conf({ runtimeConfig: { ips: [baseIp] } }), code: 101 });
  });

  test('after all those failures a normal ADD on the same container works', async () => {
    const c = await world.netns('rb');
    const r = await router.cni({ command: 'ADD', containerId: 'rb-ok', netns: c.path, ifname: 'eth0', args: 'K8S_POD_NAME=rb-ok' }, conf());
    assert.equal(r.code, 0, r.stdout);
    assert.equal(await ping(c.name, '10.80.0.1'), true);
    assert.equal((await router.cni({ command: 'DEL', containerId: 'rb-ok', netns: c.path, ifname: 'eth0', args: 'K8S_POD_NAME=rb-ok' }, conf())).code, 0);
  });

  test('DEL of a container whose host veth was deleted by hand succeeds and frees the address', async () => {
    const c = await world.netns('rb');
    const id = 'rb-handdel';
    const call = { containerId: id, netns: c.path, ifname: 'eth0', args: `K8S_POD_NAME=${id}` };
    const before = await snapshot();
    const r = await router.cni({ command: 'ADD', ...call }, conf());
    assert.equal(r.code, 0, r.stdout);
    const ip = resultIp(r.json).split('/')[0]!;
    const hostEnd = hostIfnameFor(id, 'eth0');
    assert.ok((await hostVeths(host.name)).includes(hostEnd));
    await execOk('ip', ['link', 'del', 'dev', hostEnd], { netns: host.name });
    assert.deepEqual(await linkNames(c.name), ['lo'], 'deleting the host end took the container end with it');
    const d = await router.cni({ command: 'DEL', ...call }, conf());
    assert.equal(d.code, 0, d.stdout);
    assert.ok(!(await ipList(router)).allocations.some((a) => a.ip === ip), 'the address is free');
    assert.deepEqual(await snapshot(), before);
    // A second DEL is fine too (idempotent), and so is one with the netns gone.
    assert.equal((await router.cni({ command: 'DEL', ...call }, conf())).code, 0);
    await world.deleteNetns(c);
    assert.equal((await router.cni({ command: 'DEL', ...call }, conf())).code, 0);
  });
});
