/**
 * KernelDataPlane against the real kernel. Everything happens in namespaces
 * this file creates: a "host" netns (the daemon's, passed as hostNetns),
 * container namespaces, and an "outside" netns joined to the host by a veth
 * on 198.51.100.0/24 that has no route back to the container subnet, so
 * traffic from containers only gets there (and back) through masquerade.
 * The root netns is only ever read (nft list tables, ip_forward) to prove
 * it was not touched.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { KernelDataPlane } from '../../src/adapters/kernel/kernel-dataplane.js';
import { NftRunner } from '../../src/adapters/kernel/nft.js';
import { fileURLToPath } from 'node:url';
import { bridgeNameFor, hostIfnameFor } from '../../src/core/dataplane/names.js';
import type { BridgeSpec, VethAttachSpec } from '../../src/core/dataplane/types.js';
import { BridgeFullError, ConflictError, FeatureUnavailableError, InterfaceExistsError, InvalidConfigError, InvalidEnvError, KernelError, NotFoundError } from '../../src/core/errors.js';
import { exec, execOk, ping } from '../helpers/exec.js';
import { type Netns, World, canCreateNetns, cleanupLeftovers } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

interface LogLine { level: string; msg: string; fields?: Record<string, unknown> }
const logs: LogLine[] = [];
const logger = {
  debug: (msg: string, fields?: Record<string, unknown>) => logs.push({ level: 'debug', msg, ...(fields ? { fields } : {}) }),
  info: (msg: string, fields?: Record<string, unknown>) => logs.push({ level: 'info', msg, ...(fields ? { fields } : {}) }),
  warn: (msg: string, fields?: Record<string, unknown>) => logs.push({ level: 'warn', msg, ...(fields ? { fields } : {}) }),
  error: (msg: string, fields?: Record<string, unknown>) => logs.push({ level: 'error', msg, ...(fields ? { fields } : {}) }),
};

const NODE = process.execPath;
/** A TCP server that answers every connection with "<reply> <peer address>". */
const SERVER = (port: number, reply: string): string =>
  `const s=require('net').createServer(c=>c.end(${JSON.stringify(reply)}+' '+String(c.remoteAddress).replace(/^::ffff:/,'')+'\\n'));s.listen(${port},()=>console.log('ready'));`;
const CLIENT = (host: string, port: number): string =>
  `const c=require('net').connect({host:${JSON.stringify(host)},port:${port},timeout:3000});let d='';c.on('data',b=>d+=b);c.on('end',()=>{console.log(d.trim());process.exit(0)});c.on('timeout',()=>{console.error('timeout');process.exit(2)});c.on('error',e=>{console.error(e.message);process.exit(1)});`;

async function linkJson(netns: string, name: string): Promise<Record<string, unknown> | undefined> {
  const out = await execOk('ip', ['-j', '-d', 'link', 'show'], { netns });
  return (JSON.parse(out) as Record<string, unknown>[]).find((l) => l.ifname === name);
}

async function addrsOf(netns: string, dev: string): Promise<string[]> {
  const out = await execOk('ip', ['-j', 'addr', 'show', 'dev', dev], { netns });
  const [l] = JSON.parse(out) as { addr_info: { local: string; prefixlen: number; scope: string }[] }[];
  return (l?.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`).sort();
}

async function waitFor(cond: () => Promise<boolean>, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}

describe('KernelDataPlane on a real kernel', { skip }, () => {
  const world = new World();
  let host: Netns;
  let dp: KernelDataPlane;
  let rootTables = '';
  let rootForward = '';
  const network = 'dpnet';
  const bridge: BridgeSpec = { name: bridgeNameFor(`dpnet-${process.pid}`), network, mtu: 1450, addresses: ['10.77.0.1/24', 'fd77::1/64'] };
  let bridgeMac = '';
  const timings = { attach: [] as number[], detach: [] as number[] };

  const vethSpec = (c: { path: string }, n: number, over: Partial<VethAttachSpec> = {}): VethAttachSpec => ({
    netns: c.path,
    ifname: 'eth0',
    hostIfname: hostIfnameFor(`${c.path}-${n}`, 'eth0'),
    bridge: bridge.name,
    mtu: 1450,
    addresses: [`10.77.0.${n}/24`, `fd77::${n.toString(16)}/64`],
    gateways: ['10.77.0.1', 'fd77::1'],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
    hairpin: true,
    ...over,
  });

  async function timedAttach(spec: VethAttachSpec) {
    const t0 = performance.now();
    const r = await dp.attachVeth(spec);
    timings.attach.push(performance.now() - t0);
    return r;
  }

  before(async () => {
    await cleanupLeftovers();
    rootTables = await execOk('nft', ['list', 'tables']);
    rootForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    host = await world.netns('h');
    dp = new KernelDataPlane(logger, { hostNetns: host.path });
  });

  after(async () => {
    await world.cleanup();
    await world.cleanup(); // twice is harmless
    // The root netns was never touched.
    assert.equal(await execOk('nft', ['list', 'tables']), rootTables);
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), rootForward);
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;
    console.log(`# dataplane timings (ms): attachVeth median ${med(timings.attach).toFixed(1)} of ${timings.attach.map((t) => t.toFixed(1)).join(', ')}; detachVeth median ${med(timings.detach).toFixed(1)} of ${timings.detach.map((t) => t.toFixed(1)).join(', ')}`);
  });

  test('a hostNetns that is not a netns is refused (never falls back to our own netns)', () => {
    assert.throws(() => new KernelDataPlane(logger, { hostNetns: '/tmp' }), /not a network namespace/);
  });

  test('probe reports the kernel features and leaves nothing behind', async () => {
    const linksBefore = await execOk('ip', ['-o', 'link'], { netns: host.name });
    const nsBefore = await execOk('ip', ['netns', 'list']);
    const f = await dp.probe();
    for (const v of Object.values(f)) assert.equal(typeof v, 'boolean');
    assert.equal(f.bridge, true);
    assert.equal(f.veth, true);
    assert.equal(f.macvlan, true);
    assert.equal(f.vxlan, true);
    assert.equal(f.nftables, true);
    console.log(`# probe: ${JSON.stringify(f)}`);
    assert.equal(await execOk('ip', ['-o', 'link'], { netns: host.name }), linksBefore);
    assert.equal(await execOk('ip', ['netns', 'list']), nsBefore);
  });

  test('ensureBridge creates, is idempotent, reconciles addresses and repairs a deleted bridge', async () => {
    const { mac } = await dp.ensureBridge(bridge);
    bridgeMac = mac;
    const l = await linkJson(host.name, bridge.name);
    assert.ok(l, 'bridge exists');
    assert.equal((l.linkinfo as { info_kind: string }).info_kind, 'bridge');
    assert.equal(l.ifalias, `weft:${network}`);
    assert.equal(l.mtu, 1450);
    assert.equal(l.address, mac);
    assert.ok((l.flags as string[]).includes('UP'));
    assert.deepEqual(await addrsOf(host.name, bridge.name), ['10.77.0.1/24', 'fd77::1/64']);

    const before = logs.length;
    assert.deepEqual(await dp.ensureBridge(bridge), { mac });
    assert.equal(logs.slice(before).filter((x) => /bridge (created|repaired)/.test(x.msg)).length, 0, 'second call changes nothing');

    await dp.ensureBridge({ ...bridge, addresses: ['10.77.0.1/24', '10.78.0.1/24'] });
    assert.deepEqual(await addrsOf(host.name, bridge.name), ['10.77.0.1/24', '10.78.0.1/24']);
    await dp.ensureBridge(bridge);
    assert.deepEqual(await addrsOf(host.name, bridge.name), ['10.77.0.1/24', 'fd77::1/64']);

    await execOk('ip', ['link', 'set', 'dev', bridge.name, 'down'], { netns: host.name });
    await dp.ensureBridge(bridge);
    assert.ok(((await linkJson(host.name, bridge.name))?.flags as string[]).includes('UP'), 'brought back up');

    await execOk('ip', ['link', 'del', 'dev', bridge.name], { netns: host.name });
    const repaired = await dp.ensureBridge({ ...bridge, mac });
    assert.equal(repaired.mac, mac);
    assert.deepEqual(await addrsOf(host.name, bridge.name), ['10.77.0.1/24', 'fd77::1/64']);
    assert.deepEqual(await dp.listOwnedBridges(), [{ name: bridge.name, network, overlayPorts: 0 }]);
    const hl = await dp.hostLink(bridge.name);
    assert.equal(hl?.kind, 'bridge');
    assert.equal(hl?.alias, `weft:${network}`);
    assert.equal(await dp.hostLink('wtnosuchlink'), undefined);
  });

  test('bridges weft does not own are left alone', async () => {
    await execOk('ip', ['link', 'add', 'wtforeign', 'type', 'bridge'], { netns: host.name });
    await assert.rejects(dp.ensureBridge({ ...bridge, name: 'wtforeign' }), ConflictError);
    await assert.rejects(dp.removeBridge('wtforeign'), ConflictError);
    assert.ok(await linkJson(host.name, 'wtforeign'));
    assert.deepEqual(await addrsOf(host.name, 'wtforeign'), []);
    await dp.removeBridge('wtnosuchbridge'); // absent: fine
    const other: BridgeSpec = { name: 'wtbrtmp', network: 'tmpnet', mtu: 1500, addresses: [] };
    await dp.ensureBridge(other);
    await dp.removeBridge(other.name);
    await dp.removeBridge(other.name);
    assert.equal(await linkJson(host.name, other.name), undefined);
  });

  let a: Netns;
  let b: Netns;
  let bPath = '';
  let specA: VethAttachSpec;
  let specB: VethAttachSpec;

  test('attachVeth: containers reach each other through the bridge and the gateway', async () => {
    a = await world.netns('a');
    b = await world.netns('b');
    // containerd style: B is given as /proc/PID/ns/net of a process living in it.
    const holder = world.spawnIn(b, 'sleep', ['600']);
    bPath = `/proc/${holder.pid}/ns/net`;
    await waitFor(async () => readFileSync(`/proc/${holder.pid}/cmdline`, 'utf8').startsWith('sleep'));
    specA = vethSpec(a, 10, { mac: '02:77:00:00:00:10' });
    specB = vethSpec({ path: bPath }, 11);
    const ra = await timedAttach(specA);
    const rb = await timedAttach(specB);
    assert.equal(ra.containerMac, '02:77:00:00:00:10');
    assert.match(rb.containerMac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.match(ra.hostMac ?? '', /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.equal(ra.bridgeMac, bridgeMac, 'bridge MAC pinned: unchanged by new ports');
    assert.equal(rb.bridgeMac, bridgeMac);

    const hl = await dp.hostLink(specA.hostIfname);
    assert.equal(hl?.master, bridge.name);
    assert.equal(hl?.up, true);
    assert.equal(hl?.kind, 'veth');
    const st = await dp.inspectContainerIface(a.path, 'eth0');
    assert.ok(st);
    assert.equal(st.mac, '02:77:00:00:00:10');
    assert.equal(st.mtu, 1450);
    assert.equal(st.up, true);
    assert.deepEqual([...st.addresses].sort(), ['10.77.0.10/24', 'fd77::a/64']);
    assert.deepEqual(st.routes, [{ dst: '0.0.0.0/0', gw: '10.77.0.1' }, { dst: '::/0', gw: 'fd77::1' }]);
    assert.equal(await dp.inspectContainerIface(a.path, 'eth9'), undefined);
    assert.equal(await dp.inspectContainerIface('/tmp', 'eth0'), undefined);
    const lo = await linkJson(a.name, 'lo');
    assert.ok((lo?.flags as string[]).includes('UP'));
    const hairpin = await execOk('bridge', ['-d', 'link', 'show', 'dev', specA.hostIfname], { netns: host.name });
    assert.match(hairpin, /hairpin on/);

    assert.ok(await ping(a.name, '10.77.0.11'), 'A -> B');
    assert.ok(await ping(a.name, '10.77.0.1'), 'A -> gateway');
    assert.ok(await ping(b.name, '10.77.0.10'), 'B -> A');
    assert.ok(await ping(a.name, 'fd77::b', { waitS: 2 }), 'A -> B over IPv6');

    // Someone deletes the bridge under running containers: ensureBridge brings it back with its ports.
    await execOk('ip', ['link', 'del', 'dev', bridge.name], { netns: host.name });
    assert.equal(await ping(a.name, '10.77.0.11'), false);
    await dp.ensureBridge({ ...bridge, mac: bridgeMac });
    assert.equal((await dp.hostLink(specA.hostIfname))?.master, bridge.name);
    assert.match(await execOk('bridge', ['-d', 'link', 'show', 'dev', specA.hostIfname], { netns: host.name }), /hairpin on/);
    assert.ok(await ping(a.name, '10.77.0.11'), 'A -> B after the bridge was re-created');
  });

  test('InterfaceExistsError when the ifname is taken; nothing is created', async () => {
    const spec = { ...vethSpec(a, 12), hostIfname: hostIfnameFor('other', 'eth0') };
    await assert.rejects(dp.attachVeth(spec), InterfaceExistsError);
    assert.equal(await dp.hostLink(spec.hostIfname), undefined);
    // The same attachment again (a repeated ADD): both names are taken; the live veth must survive.
    await assert.rejects(dp.attachVeth(specA), InterfaceExistsError);
    assert.equal((await dp.hostLink(specA.hostIfname))?.master, bridge.name);
    assert.ok(await ping(a.name, '10.77.0.11'), 'existing attachment untouched');
  });

  test('a path that is not a netns is rejected naming CNI_NETNS', async () => {
    const dir = world.tempDir();
    const file = join(dir, 'file');
    writeFileSync(file, '');
    for (const p of [dir, file, join(dir, 'missing')]) {
      await assert.rejects(dp.attachVeth(vethSpec({ path: p }, 13)), (e: unknown) => e instanceof InvalidEnvError && /CNI_NETNS/.test(e.message) && e.cniCode === 4);
    }
    assert.equal(await dp.hostLink(vethSpec({ path: dir }, 13).hostIfname), undefined);
  });

  test('a bridge with the kernel\'s maximum of ports: BridgeFullError (109), nothing left behind', { timeout: 120_000 }, async () => {
    // Its own host netns, removed at the end in one go (deleting 1000 veths one by one waits for RCU 1000 times).
    const full = await world.netns('full');
    try {
      const fdp = new KernelDataPlane(logger, { hostNetns: full.path });
      await fdp.ensureBridge({ name: 'wtfull', network: 'full', mtu: 1450, addresses: ['10.78.0.1/24'] });
      // More pairs than a bridge takes; -force goes on past the ones the kernel refuses (EXFULL).
      const lines = Array.from({ length: 1030 }, (_, i) => `link add f${i} master wtfull type veth peer name g${i}`).join('\n');
      await exec('ip', ['-force', '-batch', '-'], { netns: full.name, input: `${lines}\n`, timeoutMs: 100_000 });
      const c = await world.netns('c');
      const spec = vethSpec(c, 17, { bridge: 'wtfull', addresses: ['10.78.0.17/24'], gateways: ['10.78.0.1'] });
      await assert.rejects(fdp.attachVeth(spec), (e: unknown) => e instanceof BridgeFullError && e.cniCode === 109 && /wtfull/.test(e.message));
      assert.equal(await fdp.hostLink(spec.hostIfname), undefined, 'no host end');
      assert.equal(await linkJson(c.name, 'eth0'), undefined, 'no container end');
    } finally {
      await world.deleteNetns(full);
    }
  });

  test('rollback: a failing container side leaves no veth behind', async () => {
    const c = await world.netns('c');
    // A gateway that is not on-link: the kernel refuses the route after the veth, addresses and link-up succeeded.
    const bad = vethSpec(c, 14, { routes: [{ dst: '0.0.0.0/0' }, { dst: '10.99.0.0/16', gw: '203.0.113.1' }] });
    await assert.rejects(dp.attachVeth(bad), (e: unknown) => e instanceof KernelError && /203\.0\.113\.1/.test(e.message));
    assert.equal(await dp.hostLink(bad.hostIfname), undefined);
    assert.equal(await linkJson(c.name, 'eth0'), undefined);
    assert.ok(logs.some((l) => l.msg === 'attach failed; veth removed' && l.fields?.hostIfname === bad.hostIfname));

    // Host side failing halfway (bridge missing): the just-created veth goes too.
    const nobr = vethSpec(c, 15, { bridge: 'wtnobridge' });
    await assert.rejects(dp.attachVeth(nobr), NotFoundError);
    assert.equal(await dp.hostLink(nobr.hostIfname), undefined);
    assert.equal(await linkJson(c.name, 'eth0'), undefined);

    // A stale host end from an interrupted earlier attach of the same attachment is replaced.
    const good = vethSpec(c, 16);
    await execOk('ip', ['link', 'add', good.hostIfname, 'type', 'veth', 'peer', 'name', 'wtstale'], { netns: host.name });
    await dp.attachVeth(good);
    assert.ok(logs.some((l) => l.msg === 'replacing stale host veth end' && l.fields?.hostIfname === good.hostIfname));
    assert.ok(await ping(c.name, '10.77.0.10'));
    await dp.detachVeth({ netns: c.path, ifname: 'eth0', hostIfname: good.hostIfname });
  });

  let n: Netns;
  let o: Netns;

  test('masquerade: containers reach an outside network through the host address', async () => {
    n = await world.netns('n');
    o = await world.netns('o');
    await timedAttach(vethSpec(n, 20));
    // Outside world: 198.51.100.2 in netns O, joined to the host's 198.51.100.1; O has no route to 10.77.0.0/24.
    await execOk('ip', ['link', 'add', 'wtup0', 'type', 'veth', 'peer', 'name', 'wtup1', 'netns', o.path], { netns: host.name });
    await execOk('ip', ['-batch', '-'], { netns: host.name, input: 'addr add 198.51.100.1/24 dev wtup0\nlink set wtup0 up\n' });
    await execOk('ip', ['-batch', '-'], { netns: o.name, input: 'addr add 198.51.100.2/24 dev wtup1\nlink set wtup1 up\n' });

    await dp.enableForwarding([4, 6]);
    assert.equal((await execOk('cat', ['/proc/sys/net/ipv4/ip_forward'], { netns: host.name })).trim(), '1');
    assert.equal((await execOk('cat', ['/proc/sys/net/ipv6/conf/all/forwarding'], { netns: host.name })).trim(), '1');
    await dp.enableForwarding([4]); // already on: no write

    assert.equal(await ping(n.name, '198.51.100.2'), false, 'without masquerade the reply has no way back');

    await dp.applyNat({ masquerade: ['10.77.0.0/24', 'fd77::/64'], portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp', containerIp: '10.77.0.20' }] });
    const table = await execOk('nft', ['list', 'table', 'inet', 'weft'], { netns: host.name });
    assert.match(table, /ip saddr 10\.77\.0\.0\/24 ip daddr != 10\.77\.0\.0\/24 masquerade/);
    assert.match(table, /tcp dport 18080 dnat ip to 10\.77\.0\.20:8080/);
    assert.equal(await execOk('nft', ['list', 'tables']), rootTables, 'root netns untouched');

    assert.ok(await ping(n.name, '198.51.100.2'), 'ping out through masquerade');
    const srv = world.spawnIn(o, NODE, ['-e', SERVER(9000, 'outside saw')]);
    await new Promise<void>((resolve, reject) => {
      srv.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      srv.on('exit', (c) => reject(new Error(`outside server exited ${String(c)}`)));
    });
    const seen = (await execOk(NODE, ['-e', CLIENT('198.51.100.2', 9000)], { netns: n.name })).trim();
    assert.equal(seen, 'outside saw 198.51.100.1', 'the outside sees the host address, not 10.77.0.20');
  });

  test('port mapping: TCP to the host address reaches the container (from outside and from the host)', async () => {
    const srv = world.spawnIn(n, NODE, ['-e', SERVER(8080, 'container')]);
    await new Promise<void>((resolve, reject) => {
      srv.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      srv.on('exit', (c) => reject(new Error(`container server exited ${String(c)}`)));
    });
    const fromOutside = (await execOk(NODE, ['-e', CLIENT('198.51.100.1', 18080)], { netns: o.name })).trim();
    assert.equal(fromOutside, 'container 198.51.100.2');
    // The host's own connection goes through the output chain (fib daddr type local).
    const fromHost = (await execOk(NODE, ['-e', CLIENT('198.51.100.1', 18080)], { netns: host.name })).trim();
    assert.match(fromHost, /^container /);
  });

  test('applyNat skips an identical ruleset; removeNat is idempotent and only removes weft\'s table', async () => {
    const spec = { masquerade: ['fd77::/64', '10.77.0.0/24'], portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' as const, containerIp: '10.77.0.20' }] };
    const before = logs.length;
    await dp.applyNat(spec);
    assert.ok(logs.slice(before).some((l) => l.msg === 'nat ruleset unchanged; not applied'));
    // A table of someone else in the host netns survives our replace and removal.
    await execOk('nft', ['add', 'table', 'ip', 'wtother'], { netns: host.name });
    await dp.applyNat({ masquerade: ['10.77.0.0/24'], portMappings: [] });
    assert.doesNotMatch(await execOk('nft', ['list', 'table', 'inet', 'weft'], { netns: host.name }), /dnat ip to/);
    await dp.removeNat();
    await dp.removeNat();
    const tables = await execOk('nft', ['list', 'tables'], { netns: host.name });
    assert.doesNotMatch(tables, /inet weft/);
    assert.equal(await new NftRunner({ netns: host.path }).listTable('inet', 'weft'), undefined);
    assert.match(tables, /ip wtother/);
    // After a removal the next apply really applies.
    await dp.applyNat(spec);
    assert.match((await new NftRunner({ netns: host.path }).listTable('inet', 'weft')) ?? '', /dnat ip to 10\.77\.0\.20:8080/);
    assert.equal(await execOk('nft', ['list', 'tables']), rootTables);
  });

  test('a missing nft binary is FeatureUnavailableError, in a netns too', async () => {
    await assert.rejects(new NftRunner({ netns: host.path, bin: 'weft-no-such-nft' }).apply(''), FeatureUnavailableError);
  });

  test('daemon mode: run from inside the host netns with no hostNetns (own netns, /proc/sys written directly)', async () => {
    await execOk('tee', ['/proc/sys/net/ipv4/ip_forward'], { netns: host.name, input: '0\n' });
    const mod = (rel: string) => JSON.stringify(fileURLToPath(new URL(rel, import.meta.url)));
    const script = `
      import { statSync } from 'node:fs';
      // Refuse to do anything unless we really are inside the test's host netns.
      if (statSync('/proc/self/ns/net').ino !== statSync(${JSON.stringify(host.path)}).ino) { console.error('not in host netns'); process.exit(9); }
      const { KernelDataPlane } = await import(${mod('../../src/adapters/kernel/kernel-dataplane.js')});
      const quiet = { debug() {}, info() {}, warn() {}, error() {} };
      const dp = new KernelDataPlane(quiet);
      await dp.enableForwarding([4]);
      const features = await dp.probe();
      const link = await dp.hostLink(${JSON.stringify(bridge.name)});
      console.log(JSON.stringify({ features, link }));`;
    const out = JSON.parse(await execOk(NODE, ['--input-type=module', '-e', script], { netns: host.name })) as { features: Record<string, boolean>; link?: { kind?: string } };
    assert.equal(out.features.veth, true);
    assert.equal(out.link?.kind, 'bridge');
    assert.equal((await execOk('cat', ['/proc/sys/net/ipv4/ip_forward'], { netns: host.name })).trim(), '1');
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), rootForward);
  });

  test('detachVeth is idempotent: twice, and after the netns is gone', async () => {
    let t0 = performance.now();
    await dp.detachVeth({ netns: bPath, ifname: 'eth0', hostIfname: specB.hostIfname });
    timings.detach.push(performance.now() - t0);
    await dp.detachVeth({ netns: bPath, ifname: 'eth0', hostIfname: specB.hostIfname });
    assert.equal(await dp.hostLink(specB.hostIfname), undefined);
    assert.equal(await dp.inspectContainerIface(bPath, 'eth0'), undefined);
    assert.equal(await ping(a.name, '10.77.0.11'), false);

    await world.deleteNetns(a);
    t0 = performance.now();
    await dp.detachVeth({ netns: a.path, ifname: 'eth0', hostIfname: specA.hostIfname });
    timings.detach.push(performance.now() - t0);
    await dp.detachVeth({ netns: a.path, ifname: 'eth0', hostIfname: specA.hostIfname });
    await dp.detachVeth({ ifname: 'eth0', hostIfname: specA.hostIfname });
    assert.ok(await waitFor(async () => (await dp.hostLink(specA.hostIfname)) === undefined));

    // Host end renamed behind our back: the container end (carrying our mark) is deleted instead.
    const e = await world.netns('e');
    const specE = vethSpec(e, 40);
    await dp.attachVeth(specE);
    await execOk('ip', ['-batch', '-'], { netns: host.name, input: `link set dev ${specE.hostIfname} down\nlink set dev ${specE.hostIfname} name wtrenamed\n` });
    await dp.detachVeth({ netns: e.path, ifname: 'eth0', hostIfname: specE.hostIfname });
    assert.equal(await linkJson(e.name, 'eth0'), undefined);
    assert.equal(await dp.hostLink('wtrenamed'), undefined, 'its peer went with it');
  });

  test('detach never deletes an interface weft did not create (DEL after a failed ADD)', async () => {
    const d = await world.netns('d');
    await execOk('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1'], { netns: d.name });
    await dp.detachVeth({ netns: d.path, ifname: 'eth0', hostIfname: hostIfnameFor('d', 'eth0') });
    await dp.detachMacvlan({ netns: d.path, ifname: 'eth0' });
    assert.ok(await linkJson(d.name, 'eth0'), 'foreign eth0 still there');
  });

  test('attach/detach timings over several containers', async () => {
    const cs = await Promise.all([1, 2, 3, 4, 5].map(() => world.netns('t')));
    const specs = cs.map((c, i) => vethSpec(c, 30 + i));
    for (const s of specs) await timedAttach(s);
    for (const s of specs) {
      const t0 = performance.now();
      await dp.detachVeth({ netns: s.netns, ifname: s.ifname, hostIfname: s.hostIfname });
      timings.detach.push(performance.now() - t0);
    }
  });

  test('macvlan: two containers on one master talk; missing master is a config error', async () => {
    // This kernel has no `dummy` driver, so the master is one end of a veth pair (both ends up for carrier).
    await execOk('ip', ['-batch', '-'], { netns: host.name, input: 'link add wtmv0 type veth peer name wtmv1\nlink set wtmv0 up\nlink set wtmv1 up\n' });
    const m1 = await world.netns('m');
    const m2 = await world.netns('m');
    const mv = (c: Netns, i: number) => ({ netns: c.path, ifname: 'net1', master: 'wtmv0', mode: 'bridge' as const, mtu: 1500, addresses: [`10.79.0.${i}/24`], gateways: [], routes: [] });
    const r1 = await dp.attachMacvlan(mv(m1, 2));
    await dp.attachMacvlan({ ...mv(m2, 3), mac: '02:79:00:00:00:03' });
    assert.match(r1.containerMac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.equal((await linkJson(m1.name, 'net1'))?.linkinfo && ((await linkJson(m1.name, 'net1'))?.linkinfo as { info_kind: string }).info_kind, 'macvlan');
    assert.ok(await ping(m1.name, '10.79.0.3'), 'macvlan bridge mode: M1 -> M2');
    assert.equal((await dp.inspectContainerIface(m2.path, 'net1'))?.mac, '02:79:00:00:00:03');

    await assert.rejects(dp.attachMacvlan(mv(m1, 4)), InterfaceExistsError);
    const m3 = await world.netns('m');
    await assert.rejects(dp.attachMacvlan({ ...mv(m3, 5), master: 'wtnomaster' }), (e: unknown) => e instanceof InvalidConfigError && /wtnomaster/.test(e.message));
    await assert.rejects(dp.attachMacvlan({ ...mv(m3, 5), routes: [{ dst: '10.99.0.0/16', gw: '203.0.113.1' }] }), KernelError);
    assert.equal(await linkJson(m3.name, 'net1'), undefined, 'rolled back');
    await assert.rejects(dp.attachMacvlan({ ...mv({ name: 'x', path: '/tmp' }, 6) }), InvalidEnvError);

    await dp.detachMacvlan({ netns: m1.path, ifname: 'net1' });
    await dp.detachMacvlan({ netns: m1.path, ifname: 'net1' });
    assert.equal(await linkJson(m1.name, 'net1'), undefined);
    await world.deleteNetns(m2);
    await dp.detachMacvlan({ netns: m2.path, ifname: 'net1' });
    await dp.detachMacvlan({ ifname: 'net1' });
  });
});
