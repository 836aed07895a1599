/**
 * One container on two weft networks (podman `--network a --network b`):
 * each network has its own bridge and subnet, both ADDs succeed although
 * each subnet brings a default route, the container reaches both gateways,
 * and DEL of one interface leaves the other working.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ping } from '../helpers/exec.js';
import { type Kit, assertNothingLeft, cid, cniOk, firstIp, routes, startKit } from '../helpers/it-kit.js';
import { weftConf } from '../helpers/router.js';

describe('a container on two weft networks', () => {
  let kit: Kit;

  before(async () => {
    kit = await startKit('mn', { ipallocRange: '10.83.0.0/24' });
    for (const [name, cidr] of [['na', '10.93.1.0/24'], ['nb', '10.93.2.0/24']] as const) {
      const r = await kit.router.weft('subnet', 'create', name, '--cidr', cidr);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => { await kit?.world.cleanup(); });

  test('both interfaces come up, both gateways answer, DEL of one keeps the other', async () => {
    const ns = await kit.world.netns('c');
    const id = cid('mn');
    const a = cniOk(await kit.router.cni({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0' }, weftConf({ name: 'neta', subnet: 'na' })));
    const b = cniOk(await kit.router.cni({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth1' }, weftConf({ name: 'netb', subnet: 'nb' })));
    assert.match(firstIp(a), /^10\.93\.1\./);
    assert.match(firstIp(b), /^10\.93\.2\./);
    const defaults = (await routes(ns, 4)).filter((r) => r.dst === 'default');
    assert.deepEqual(defaults.map((r) => r.dev).sort(), ['eth0', 'eth1'], 'a default route through each network');
    assert.ok(await ping(ns.name, '10.93.1.1'), 'gateway of the first network');
    assert.ok(await ping(ns.name, '10.93.2.1'), 'gateway of the second network');

    cniOk(await kit.router.cni({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0' }, weftConf({ name: 'neta', subnet: 'na' })));
    await assertNothingLeft(kit.router, id, 'eth0');
    assert.ok(await ping(ns.name, '10.93.2.1'), 'the second network still works');
    cniOk(await kit.router.cni({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth1' }, weftConf({ name: 'netb', subnet: 'nb' })));
    await assertNothingLeft(kit.router, id, 'eth1');
  });
});

describe('DEL of a refused ADD on another network', () => {
  let kit: Kit;
  before(async () => {
    kit = await startKit('mx', { ipallocRange: '10.84.0.0/24' });
    for (const [name, cidr] of [['xa', '10.94.1.0/24'], ['xb', '10.94.2.0/24']] as const) {
      const r = await kit.router.weft('subnet', 'create', name, '--cidr', cidr);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => { await kit?.world.cleanup(); });

  test('leaves the attachment of the network that really owns the interface alone', async () => {
    const ns = await kit.world.netns('c');
    const id = cid('mx');
    const call = { containerId: id, netns: ns.path, ifname: 'eth0' };
    cniOk(await kit.router.cni({ command: 'ADD', ...call }, weftConf({ name: 'neta', subnet: 'xa' })));
    const refused = await kit.router.cni({ command: 'ADD', ...call }, weftConf({ name: 'netb', subnet: 'xb' }));
    assert.equal(refused.code, 1);
    assert.equal((refused.json as { code: number }).code, 105, refused.stdout);
    // As the spec requires, the runtime now DELs the failed attachment: it must not touch neta's.
    cniOk(await kit.router.cni({ command: 'DEL', ...call }, weftConf({ name: 'netb', subnet: 'xb' })));
    const atts = await kit.router.api().get<{ containerId: string; network: string }[]>('/v1/attachments');
    assert.deepEqual(atts.filter((a) => a.containerId === id).map((a) => a.network), ['neta']);
    assert.ok(await ping(ns.name, '10.94.1.1'), 'neta still works');
    cniOk(await kit.router.cni({ command: 'DEL', ...call }, weftConf({ name: 'neta', subnet: 'xa' })));
    await assertNothingLeft(kit.router, id);
  });
});
