/**
 * The CNI error table against the real router and kernel: every failure
 * gives its code and a precise message, and leaves nothing behind — no veth
 * in the host netns, no allocation (`weft ip list`), no attachment
 * (`weft ps`) — and never touches what was already in the container.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execOk } from '../helpers/exec.js';
import { type Kit, assertNothingLeft, cid, cniError, cniOk, linkInfo, linkNames, rawCni, startKit } from '../helpers/it-kit.js';
import { type CniCall, weftConf } from '../helpers/router.js';
import { type Netns, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

describe('CNI errors on a real router', { skip }, () => {
  let kit: Kit;
  /** A container netns that no failing ADD may change. */
  let victim: Netns;

  before(async () => {
    kit = await startKit('err', { ipallocRange: '10.78.0.0/24' });
    victim = await kit.world.netns('v');
    // Subnets for the IPAM error cases.
    const subnets: string[][] = [
      ['tiny', '--cidr', '10.88.1.0/30'],
      ['resv', '--cidr', '10.88.2.0/24'],
      ['q1', '--cidr', '10.88.3.0/24', '--quota', '1'],
      ['prodonly', '--cidr', '10.88.4.0/24', '--tenant', 'prod'],
    ];
    for (const s of subnets) {
      const r = await kit.router.weft('subnet', 'create', ...s);
      assert.equal(r.code, 0, r.stderr);
    }
    const res = await kit.router.weft('ip', 'reserve', 'resv', '10.88.2.10', '--owner', 'default/owner-a');
    assert.equal(res.code, 0, res.stderr);
  });
  after(async () => {
    await kit?.world.cleanup();
  });

  const addCall = (netns: string, args = 'IgnoreUnknown=1;K8S_POD_NAME=err-pod'): CniCall & { containerId: string } =>
    ({ command: 'ADD', containerId: cid('err'), netns, ifname: 'eth0', args });

  /** ADD that must fail with `code`; checks nothing was left and the victim netns is untouched. Returns the error. */
  async function addFails(code: number, config: Record<string, unknown>, call: Partial<CniCall> = {}) {
    const c = { ...addCall(victim.path), ...call };
    const e = cniError(await kit.router.cni(c, config), code);
    await assertNothingLeft(kit.router, c.containerId!);
    assert.deepEqual(await linkNames(victim), ['lo'], 'the container netns was not touched');
    return e;
  }

  const ADD_ENV = (id: string): Record<string, string> => ({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: victim.path, CNI_IFNAME: 'eth0' });

  test('malformed, truncated or empty stdin is code 6', async () => {
    const cases: [string, RegExp][] = [
      ['not json at all', /^network configuration on stdin is not valid JSON \(.*\): "not json at all"$/],
      [JSON.stringify(weftConf({ socket: kit.router.socket })).slice(0, 40), /^network configuration on stdin is not valid JSON/],
      ['', /^no network configuration on stdin: expected a JSON object, got empty input$/],
      ['  \n', /^no network configuration on stdin/],
      ['[1,2]', /^network configuration on stdin must be a JSON object, got an array$/],
      ['null', /^network configuration on stdin must be a JSON object, got null$/],
    ];
    for (const [stdin, msg] of cases) {
      const id = cid('dec');
      const e = cniError(await rawCni(kit.router, ADD_ENV(id), stdin), 6);
      assert.match(e.msg, msg, JSON.stringify(stdin));
      await assertNothingLeft(kit.router, id);
    }
  });

  test('wrong types are code 7 naming the key and the value', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ipMasq: 'yes' }, 'ipMasq: expected true or false, got "yes"'],
      [{ mtu: '1400' }, 'mtu: expected an integer from 576 to 65535, got "1400"'],
      [{ mtu: 100 }, 'mtu: expected an integer from 576 to 65535, got 100'],
      [{ subnet: 5 }, 'subnet: expected a subnet name or a non-empty array of subnet names, got 5'],
      [{ subnet: [] }, 'subnet: expected a subnet name or a non-empty array of subnet names, got []'],
      [{ type: 'bridge' }, 'type: expected "weft", got "bridge"'],
      [{ mode: 'ipvlan' }, 'mode: expected "bridge" or "macvlan", got "ipvlan"'],
      [{ runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80 }] } }, 'runtimeConfig.portMappings[0].hostPort: expected an integer from 1 to 65535, got 0'],
      [{ runtimeConfig: { ips: ['10.78.0.300'] } }, 'runtimeConfig.ips[0]: expected an IP address, optionally with /prefix, got "10.78.0.300"'],
      [{ runtimeConfig: { mac: 'zz:00:00:00:00:01' } }, 'runtimeConfig.mac: "zz:00:00:00:00:01" is not a MAC address of the form xx:xx:xx:xx:xx:xx'],
      [{ name: 5 }, 'name: expected a string, got 5'],
      [{ name: 'bad name' }, 'name: network name "bad name" contains invalid characters; it must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$'],
      [{ cniVersion: 1 }, 'cniVersion: expected a string, got 1'],
      [{ socket: 'relative.sock' }, 'socket: expected an absolute path to the weft socket, got "relative.sock"'],
    ];
    for (const [over, msg] of cases) {
      const e = await addFails(7, { ...weftConf(), ...over });
      assert.equal(e.msg, msg, JSON.stringify(over));
    }
  });

  test('an unknown top-level key is code 2 naming the key and its value', async () => {
    const e = await addFails(2, weftConf({ ipmasq: true }));
    assert.equal(e.msg, 'unsupported field "ipmasq" with value true in weft network configuration "weft"');
    const e2 = await addFails(2, weftConf({ hairpin: { on: 1 } }));
    assert.equal(e2.msg, 'unsupported field "hairpin" with value {"on":1} in weft network configuration "weft"');
    const cap = await addFails(2, weftConf({ capabilities: { bandwidth: true } }));
    assert.equal(cap.msg, 'unsupported capability "capabilities.bandwidth" with value true: weft supports ips, mac, portMappings, dns, aliases');
    const arg = await addFails(2, weftConf(), { args: 'K8S_POD_NAME=x;COLOR=blue' });
    assert.equal(arg.msg, 'CNI_ARGS: unknown key COLOR="blue"');
  });

  test('an "ipam" key in a weft configuration is code 2 with a hint', async () => {
    const e = await addFails(2, weftConf({ ipam: { type: 'host-local', subnet: '10.1.0.0/16' } }));
    assert.equal(e.msg, 'unsupported field "ipam" with value {"type":"host-local","subnet":"10.1.0.0/16"}: weft does its own IPAM');
    assert.equal(e.details, 'hint: remove "ipam" and choose addresses with "subnet" or "pool" in the weft configuration');
  });

  test('an unsupported cniVersion is code 1', async () => {
    for (const v of ['0.2.0', '0.1.0', '2.0.0', '1.0']) {
      const e = await addFails(1, weftConf({}, v));
      assert.equal(e.msg, `incompatible CNI versions: config is "${v}", weft supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0`);
      assert.equal(e.cniVersion, v, 'the error is labelled with the config\'s version');
    }
    const none = await addFails(1, { name: 'weft', type: 'weft' });
    assert.match(none.msg, /has no cniVersion/);
    const list = await addFails(1, { name: 'weft', type: 'weft', cniVersions: ['2.0.0', '0.2.0'] });
    assert.equal(list.msg, 'incompatible CNI versions: config offers ["2.0.0","0.2.0"], weft supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0');
  });

  test('missing CNI_CONTAINERID, CNI_IFNAME or CNI_NETNS is code 4 naming the variable', async () => {
    for (const v of ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_NETNS']) {
      const id = cid('env');
      const env = ADD_ENV(id);
      delete env[v];
      const conf = JSON.stringify(weftConf({ socket: kit.router.socket }));
      const e = cniError(await rawCni(kit.router, env, conf), 4);
      assert.equal(e.msg, `required environment variable ${v} missing for CNI_COMMAND=ADD`);
      const empty = cniError(await rawCni(kit.router, { ...ADD_ENV(id), [v]: '' }, conf), 4);
      assert.equal(empty.msg, e.msg, 'an empty variable counts as missing');
      await assertNothingLeft(kit.router, id);
    }
    const bad = await addFails(4, weftConf(), { ifname: 'this-name-is-too-long' });
    assert.equal(bad.msg, 'CNI_IFNAME "this-name-is-too-long" is longer than 15 bytes');
    const rel = await addFails(4, weftConf(), { netns: 'run/netns/x' });
    assert.match(rel.msg, /^CNI_NETNS "run\/netns\/x" must be an absolute path/);
    const noCmd = cniError(await rawCni(kit.router, { CNI_CONTAINERID: 'x', CNI_NETNS: victim.path, CNI_IFNAME: 'eth0' }, '{}'), 4);
    assert.equal(noCmd.msg, 'required environment variable CNI_COMMAND is missing');
  });

  test('CNI_NETNS that is not a network namespace is code 4 and leaves nothing', async () => {
    const dir = kit.world.tempDir('weft-notns');
    const file = join(dir, 'file');
    writeFileSync(file, 'not a netns');
    const sub = join(dir, 'dir');
    mkdirSync(sub);
    for (const p of [file, sub, join(dir, 'missing')]) {
      const e = await addFails(4, weftConf(), { netns: p });
      assert.equal(e.msg, `CNI_NETNS "${p}" is not a network namespace`);
      assert.equal(e.details, 'hint: the runtime must pass the path of an existing netns (/run/netns/NAME or /proc/PID/ns/net)');
    }
  });

  test('CNI_NETNS naming the router\'s own (host) netns is code 4: nothing lands on the host', async () => {
    const linksBefore = await linkNames(kit.host);
    const routesBefore = await execOk('ip', ['-j', 'route', 'show', 'table', 'all'], { netns: kit.host.name });
    for (const p of [kit.host.path, `/proc/${kit.router.pid}/ns/net`]) {
      const e = await addFails(4, weftConf(), { netns: p });
      assert.equal(e.msg, `CNI_NETNS "${p}" is the weft router's own network namespace, not a container's`);
    }
    assert.deepEqual(await linkNames(kit.host), linksBefore);
    assert.equal(await execOk('ip', ['-j', 'route', 'show', 'table', 'all'], { netns: kit.host.name }), routesBefore);
  });

  test('an ifname that already exists in the container: error, nothing left, the existing interface untouched', async () => {
    const ns = await kit.world.netns('x');
    // (no dummy driver on every test kernel: a veth pair stands in for the runtime's own interface)
    await execOk('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'own-peer'], { netns: ns.name });
    await execOk('ip', ['addr', 'add', '192.0.2.7/24', 'dev', 'eth0'], { netns: ns.name });
    await execOk('ip', ['link', 'set', 'eth0', 'up'], { netns: ns.name });
    const before = await linkInfo(ns, 'eth0');
    const call = addCall(ns.path);
    const e = cniError(await kit.router.cni(call, weftConf()), 106);
    assert.equal(e.msg, `interface "eth0" already exists in ${ns.path}`);
    await assertNothingLeft(kit.router, call.containerId);
    // The runtime always DELs after a failed ADD: that must not delete the runtime's own eth0.
    cniOk(await kit.router.cni({ ...call, command: 'DEL' }, weftConf()));
    const afterDel = await linkInfo(ns, 'eth0');
    assert.deepEqual(afterDel, before, 'the pre-existing eth0 is exactly as it was');
    assert.deepEqual((await linkNames(ns)).sort(), ['eth0', 'lo', 'own-peer']);
    await assertNothingLeft(kit.router, call.containerId);
  });

  test('an exhausted subnet is code 100', async () => {
    const ns = await kit.world.netns('t');
    const first = addCall(ns.path, 'K8S_POD_NAME=tiny-a');
    const r = cniOk(await kit.router.cni(first, weftConf({ subnet: 'tiny' })));
    assert.equal((r?.['ips'] as { address: string }[])[0]!.address, '10.88.1.2/30');
    const e = await addFails(100, weftConf({ subnet: 'tiny' }));
    assert.equal(e.msg, 'subnet "tiny" (10.88.1.0/30) has no free address');
    assert.equal(e.details, 'hint: release addresses (`weft ip list`), or add a subnet');
    cniOk(await kit.router.cni({ ...first, command: 'DEL' }, weftConf({ subnet: 'tiny' })));
  });

  test('a reserved address requested by another identity is code 101', async () => {
    const e = await addFails(101, weftConf({ subnet: 'resv' }), { args: 'IgnoreUnknown=1;K8S_POD_NAME=intruder;IP=10.88.2.10' });
    assert.equal(e.msg, 'requested address 10.88.2.10 is reserved for default/owner-a');
    const viaRuntime = await addFails(101, weftConf({ subnet: 'resv', capabilities: { ips: true }, runtimeConfig: { ips: ['10.88.2.10/24'] } }), { args: 'K8S_POD_NAMESPACE=other;K8S_POD_NAME=owner-a' });
    assert.equal(viaRuntime.msg, 'requested address 10.88.2.10 is reserved for default/owner-a', 'same name in another namespace is another identity');
  });

  test('an address outside the subnet (or its gateway, network or broadcast address) is code 101', async () => {
    const outside = await addFails(101, weftConf(), { args: 'IgnoreUnknown=1;IP=10.99.0.5' });
    assert.equal(outside.msg, 'requested address 10.99.0.5 is outside the network\'s subnet(s) default');
    const gw = await addFails(101, weftConf(), { args: 'IgnoreUnknown=1;IP=10.78.0.1' });
    assert.equal(gw.msg, 'requested address 10.78.0.1 is the gateway of subnet "default"');
    const bcast = await addFails(101, weftConf(), { args: 'IgnoreUnknown=1;IP=10.78.0.255' });
    assert.equal(bcast.msg, 'requested address 10.78.0.255 is the network or broadcast address of 10.78.0.0/24');
  });

  test('over quota is code 102', async () => {
    const ns = await kit.world.netns('q');
    const first = addCall(ns.path, 'K8S_POD_NAME=q-a');
    cniOk(await kit.router.cni(first, weftConf({ subnet: 'q1' })));
    const e = await addFails(102, weftConf({ subnet: 'q1' }));
    assert.equal(e.msg, 'subnet "q1" is at its quota of 1 addresses in use');
    assert.match(e.details ?? '', /weft subnet update --quota/);
    cniOk(await kit.router.cni({ ...first, command: 'DEL' }, weftConf({ subnet: 'q1' })));
  });

  test('a tenant that is not allowed is code 103', async () => {
    const e = await addFails(103, weftConf({ subnet: 'prodonly' }), { args: 'K8S_POD_NAMESPACE=dev;K8S_POD_NAME=web' });
    assert.equal(e.msg, 'tenant "dev" may not allocate in subnet "prodonly" (allowed: prod)');
    const noNs = await addFails(103, weftConf({ subnet: 'prodonly' }), { args: 'K8S_POD_NAME=web' });
    assert.equal(noNs.msg, 'tenant "default" may not allocate in subnet "prodonly" (allowed: prod)');
  });

  test('a subnet the router does not know is a clear error', async () => {
    const e = await addFails(104, weftConf({ subnet: 'nope' }));
    assert.equal(e.msg, 'subnet "nope" does not exist');
    assert.equal(e.details, 'hint: create it with `weft subnet create` or fix the `subnet` key of the network configuration');
    const second = await addFails(104, weftConf({ subnet: ['default', 'nope'] }));
    assert.equal(second.msg, 'subnet "nope" does not exist', 'the first subnet\'s allocation is rolled back');
  });

  // Last: stops the router.
  test('router stopped: ADD and DEL are code 11, STATUS is code 50; nothing left after it is back', async () => {
    assert.equal(await kit.router.stop(), 0, 'the router exits cleanly on SIGTERM');
    const call = addCall(victim.path);
    const add = cniError(await kit.router.cni(call, weftConf()), 11);
    assert.equal(add.msg, `weft router not reachable at ${kit.router.socket}: is \`weft launch\` running?`);
    cniError(await kit.router.cni({ ...call, command: 'DEL' }, weftConf()), 11);
    const status = cniError(await kit.router.cni({ command: 'STATUS' }, weftConf()), 50);
    assert.equal(status.msg, add.msg);
    assert.deepEqual(await linkNames(victim), ['lo']);
    await kit.router.start();
    await assertNothingLeft(kit.router, call.containerId);
  });
});
