/**
 * Managed IPAM through the real CNI plugin and router: fixed addresses (the
 * three ways a runtime asks for one), reservations by identity, sticky
 * subnets, pools, the `pool` key, dual stack, what an allocation records,
 * quotas, MAC requests, and the NAT features (port mappings with the
 * builtin DNAT reached from a client namespace over a simulated underlay,
 * and ipMasq living in the host netns only).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { exec, execOk, ping } from '../helpers/exec.js';
import { type Kit, addrs, allocationsOf, assertNothingLeft, cid, cniError, cniOk, firstIp, ipList, linkInfo, routes, startKit, waitFor } from '../helpers/it-kit.js';
import { type CniCall, weftConf } from '../helpers/router.js';
import { type Netns, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

const NODE = process.execPath;
/** A TCP server answering every connection with "<reply> <peer address>". */
const SERVER = (port: number, reply: string): string =>
  `const s=require('net').createServer(c=>c.end(${JSON.stringify(reply)}+' '+String(c.remoteAddress).replace(/^::ffff:/,'')+'\\n'));s.listen(${port},()=>console.log('ready'));`;
const CLIENT = (host: string, port: number): string =>
  `const c=require('net').connect({host:${JSON.stringify(host)},port:${port},timeout:3000});let d='';c.on('data',b=>d+=b);c.on('end',()=>{console.log(d.trim());process.exit(0)});c.on('timeout',()=>{console.error('timeout');process.exit(2)});c.on('error',e=>{console.error(e.message);process.exit(1)});`;

const ipv4Value = (s: string): number => s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const inRange = (ip: string, first: string, last: string): boolean => ipv4Value(ip) >= ipv4Value(first) && ipv4Value(ip) <= ipv4Value(last);

describe('managed IPAM through CNI', { skip }, () => {
  let kit: Kit;

  before(async () => {
    kit = await startKit('ipm', { ipallocRange: '10.79.0.0/24' });
    const cmds: string[][] = [
      ['subnet', 'create', 'st', '--cidr', '10.90.2.0/24', '--sticky'],
      ['subnet', 'create', 'pl', '--cidr', '10.90.3.0/24'],
      ['pool', 'create', 'etcd', '--subnet', 'pl', '--addresses', '10.90.3.10-10.90.3.12', '--match-name', 'etcd-*'],
      ['pool', 'create', 'named', '--subnet', 'pl', '--addresses', '10.90.3.20-10.90.3.21'],
      ['pool', 'create', 'pq', '--subnet', 'pl', '--addresses', '10.90.3.30-10.90.3.39', '--quota', '1'],
      ['subnet', 'create', 'ds4', '--cidr', '10.90.4.0/24'],
      ['subnet', 'create', 'ds6', '--cidr', 'fd90:4::/64'],
      ['subnet', 'create', 'qq', '--cidr', '10.90.5.0/24', '--quota', '2', '--sticky'],
      ['ip', 'reserve', 'default', '10.79.0.60', '--owner', 'default/db-0'],
    ];
    for (const c of cmds) {
      const r = await kit.router.weft(...c);
      assert.equal(r.code, 0, `weft ${c.join(' ')}: ${r.stderr}`);
    }
  });
  after(async () => {
    await kit?.world.cleanup();
  });

  /** ADD in a fresh netns; returns everything needed to DEL it again. */
  async function add(config: Record<string, unknown>, args: string) {
    const ns = await kit.world.netns('c');
    const call: CniCall & { containerId: string } = { command: 'ADD', containerId: cid('ipm'), netns: ns.path, ifname: 'eth0', args };
    const out = await kit.router.cni(call, config);
    return { ns, call, out, config };
  }
  async function addOk(config: Record<string, unknown>, args: string) {
    const a = await add(config, args);
    const result = cniOk(a.out)!;
    return { ...a, result, ip: firstIp(result) };
  }
  async function del(a: { call: CniCall; config: Record<string, unknown> }): Promise<void> {
    cniOk(await kit.router.cni({ ...a.call, command: 'DEL' }, a.config));
  }

  test('a fixed address three ways: runtimeConfig.ips, CNI_ARGS IP=, args.cni.ips', async () => {
    const started = Date.now();
    const cases = [
      { want: '10.79.0.50', config: weftConf({ capabilities: { ips: true }, runtimeConfig: { ips: ['10.79.0.50/24'] } }), args: 'K8S_POD_NAME=fixed-a' },
      { want: '10.79.0.51', config: weftConf(), args: 'IgnoreUnknown=1;K8S_POD_NAME=fixed-b;IP=10.79.0.51' },
      { want: '10.79.0.52', config: weftConf({ args: { cni: { ips: ['10.79.0.52'] } } }), args: 'K8S_POD_NAMESPACE=team;K8S_POD_NAME=fixed-c' },
    ];
    const added = await Promise.all(cases.map((c) => addOk(c.config, c.args)));
    for (const [i, a] of added.entries()) {
      const want = cases[i]!.want;
      assert.equal(a.ip, want);
      assert.deepEqual(await addrs(a.ns, 'eth0'), [`${want}/24`], 'the container has exactly that address');
    }
    // Every allocation records where it came from.
    const c = added[2]!;
    const [alloc] = await allocationsOf(kit.router, c.call.containerId);
    assert.ok(alloc);
    const { createdAt, updatedAt, ...rest } = alloc;
    assert.deepEqual(rest, {
      subnet: 'default', ip: '10.79.0.52', state: 'bound', identity: 'team/fixed-c', tenant: 'team',
      containerId: c.call.containerId, ifname: 'eth0', netns: c.ns.path, network: 'weft',
    });
    for (const t of [createdAt, updatedAt]) {
      const ms = Date.parse(t);
      assert.ok(ms >= started - 1000 && ms <= Date.now() + 1000, `timestamp ${t} is from this test`);
    }
    // A second container asking for a taken address is refused, and left nothing.
    const taken = await add(weftConf(), 'IgnoreUnknown=1;K8S_POD_NAME=fixed-d;IP=10.79.0.50');
    const e = cniError(taken.out, 101);
    assert.equal(e.msg, `requested address 10.79.0.50 is in use by container ${added[0]!.call.containerId} (default/fixed-a)`);
    await assertNothingLeft(kit.router, taken.call.containerId);
    await Promise.all(added.map(del));
  });

  test('a reserved address goes to its identity only (podman sends just K8S_POD_NAME)', async () => {
    const owner = await addOk(weftConf(), 'IgnoreUnknown=1;K8S_POD_NAME=db-0');
    assert.equal(owner.ip, '10.79.0.60');
    const [other, otherNs] = await Promise.all([
      addOk(weftConf(), 'IgnoreUnknown=1;K8S_POD_NAME=db-1'),
      addOk(weftConf(), 'K8S_POD_NAMESPACE=staging;K8S_POD_NAME=db-0'),
    ]);
    assert.notEqual(other.ip, '10.79.0.60');
    assert.notEqual(otherNs.ip, '10.79.0.60', 'same name in another namespace is another identity');
    // A second container of the same identity cannot take it while the first holds it.
    const twin = await add(weftConf(), 'K8S_POD_NAME=db-0');
    const e = cniError(twin.out, 101);
    assert.equal(e.msg, `10.79.0.60 is reserved for default/db-0 but is in use by container ${owner.call.containerId} (default/db-0)`);
    await assertNothingLeft(kit.router, twin.call.containerId);
    await Promise.all([owner, other, otherNs].map(del));
    // After the owner is gone, another identity still cannot ask for it explicitly.
    const thief = await add(weftConf(), 'IgnoreUnknown=1;K8S_POD_NAME=db-1;IP=10.79.0.60');
    assert.equal(cniError(thief.out, 101).msg, 'requested address 10.79.0.60 is reserved for default/db-0');
    const again = await addOk(weftConf(), 'K8S_POD_NAME=db-0');
    assert.equal(again.ip, '10.79.0.60', 'the owner gets it back with a new container');
    const list = await ipList(kit.router);
    assert.deepEqual(list.reservations.map(({ subnet, ip, owner: o }) => ({ subnet, ip, owner: o })), [{ subnet: 'default', ip: '10.79.0.60', owner: 'default/db-0' }]);
    await del(again);
  });

  test('sticky subnet: the identity gets its address back; it is held in between; release frees it', async () => {
    const conf = weftConf({ subnet: 'st' });
    const first = await addOk(conf, 'K8S_POD_NAME=sticky-0');
    await del(first);
    const held = (await ipList(kit.router)).allocations.filter((a) => a.subnet === 'st' && a.ip === first.ip);
    assert.equal(held.length, 1);
    const { createdAt: _c, updatedAt: _u, ...h } = held[0]!;
    assert.deepEqual(h, { subnet: 'st', ip: first.ip, state: 'held', identity: 'default/sticky-0', tenant: 'default' }, 'held: no container any more');
    // Meanwhile nobody else gets it.
    const other = await addOk(conf, 'K8S_POD_NAME=sticky-1');
    assert.notEqual(other.ip, first.ip);
    const second = await addOk(conf, 'K8S_POD_NAME=sticky-0');
    assert.notEqual(second.call.containerId, first.call.containerId);
    assert.equal(second.ip, first.ip, 'same identity, new container ID: same address');
    assert.deepEqual(await addrs(second.ns, 'eth0'), [`${first.ip}/24`]);
    const bound = (await allocationsOf(kit.router, second.call.containerId))[0];
    assert.equal(bound?.state, 'bound');
    await Promise.all([del(second), del(other)]);
    const release = await kit.router.weft('ip', 'release', 'st', first.ip);
    assert.equal(release.code, 0, release.stderr);
    assert.equal(release.stdout.trim(), `${first.ip} released (held address freed)`);
    const left = (await ipList(kit.router)).allocations.filter((a) => a.subnet === 'st');
    assert.deepEqual(left.map((a) => `${a.ip} ${a.state} ${a.identity}`), [`${other.ip} held default/sticky-1`]);
    assert.equal((await kit.router.weft('ip', 'release', 'st', other.ip)).code, 0);
    // Without an identity nothing can be held: the address is simply freed.
    const anon = await addOk(conf, 'IgnoreUnknown=1');
    await del(anon);
    assert.deepEqual((await ipList(kit.router)).allocations.filter((a) => a.subnet === 'st'), []);
  });

  test('pools: --match-name serves matching identities only; the pool key picks a pool; pool quota', async () => {
    const conf = weftConf({ subnet: 'pl' });
    const [etcd0, etcd1, web] = await Promise.all([
      addOk(conf, 'K8S_POD_NAME=etcd-0'), addOk(conf, 'K8S_POD_NAME=etcd-1'), addOk(conf, 'K8S_POD_NAME=web-0'),
    ]);
    for (const a of [etcd0, etcd1]) assert.ok(inRange(a.ip, '10.90.3.10', '10.90.3.12'), `${a.ip} is in pool etcd`);
    assert.ok(!inRange(web.ip, '10.90.3.10', '10.90.3.39'), `${web.ip} is from the general space`);
    const [alloc] = await allocationsOf(kit.router, etcd0.call.containerId);
    assert.equal(alloc?.pool, 'etcd');
    // A non-matching identity may not ask for a pool address either.
    const sneaky = await add(conf, 'IgnoreUnknown=1;K8S_POD_NAME=web-1;IP=10.90.3.12');
    assert.equal(cniError(sneaky.out, 103).msg, 'requested address 10.90.3.12 belongs to pool "etcd", which does not serve default/web-1');
    await assertNothingLeft(kit.router, sneaky.call.containerId);
    // The `pool` key.
    const named = await addOk(weftConf({ subnet: 'pl', pool: 'named' }), 'K8S_POD_NAME=web-2');
    assert.ok(inRange(named.ip, '10.90.3.20', '10.90.3.21'), named.ip);
    const unknownPool = await add(weftConf({ subnet: 'pl', pool: 'nosuch' }), 'K8S_POD_NAME=web-3');
    const ep = cniError(unknownPool.out, 7);
    assert.equal(ep.msg, 'pool "nosuch" does not exist in subnet "pl"');
    await assertNothingLeft(kit.router, unknownPool.call.containerId);
    // Pool quota.
    const pq = await addOk(weftConf({ subnet: 'pl', pool: 'pq' }), 'K8S_POD_NAME=q-0');
    assert.ok(inRange(pq.ip, '10.90.3.30', '10.90.3.39'));
    const over = await add(weftConf({ subnet: 'pl', pool: 'pq' }), 'K8S_POD_NAME=q-1');
    assert.equal(cniError(over.out, 102).msg, 'pool "pq" is at its quota of 1 addresses in use');
    await assertNothingLeft(kit.router, over.call.containerId);
    await Promise.all([etcd0, etcd1, web, named, pq].map(del));
  });

  test('subnet quota counts held addresses too', async () => {
    const conf = weftConf({ subnet: 'qq' });
    const a = await addOk(conf, 'K8S_POD_NAME=qa');
    const b = await addOk(conf, 'K8S_POD_NAME=qb');
    await del(b); // held for default/qb: still counts
    const c = await add(conf, 'K8S_POD_NAME=qc');
    const e = cniError(c.out, 102);
    assert.equal(e.msg, 'subnet "qq" is at its quota of 2 addresses in use');
    await assertNothingLeft(kit.router, c.call.containerId);
    const b2 = await addOk(conf, 'K8S_POD_NAME=qb');
    assert.equal(b2.ip, b.ip, 'the held identity still gets its address at the quota');
    await del(b2);
    assert.equal((await kit.router.weft('ip', 'release', 'qq', b.ip)).code, 0);
    const c2 = await addOk(conf, 'K8S_POD_NAME=qc');
    await Promise.all([del(a), del(c2)]);
    for (const ip of [a.ip, c2.ip]) assert.equal((await kit.router.weft('ip', 'release', 'qq', ip)).code, 0);
  });

  test('dual stack: two addresses, both families work between containers', async () => {
    const conf = weftConf({ subnet: ['ds4', 'ds6'] });
    const [a, b] = await Promise.all([addOk(conf, 'K8S_POD_NAME=ds-a'), addOk(conf, 'K8S_POD_NAME=ds-b')]);
    const ipsOf = (r: Record<string, unknown>): string[] => (r['ips'] as { address: string }[]).map((i) => i.address);
    for (const x of [a, b]) {
      const [v4, v6] = ipsOf(x.result);
      assert.match(v4!, /^10\.90\.4\.\d+\/24$/);
      assert.match(v6!, /^fd90:4::[0-9a-f]+\/64$/);
      assert.deepEqual((x.result['ips'] as { gateway: string }[]).map((i) => i.gateway), ['10.90.4.1', 'fd90:4::1']);
      assert.deepEqual(x.result['routes'], [{ dst: '0.0.0.0/0' }, { dst: '::/0' }]);
      assert.deepEqual(await addrs(x.ns, 'eth0'), [v4, v6].sort());
      const def6 = (await routes(x.ns, 6)).filter((r) => r.dst === 'default');
      assert.deepEqual(def6.map((r) => r.gateway), ['fd90:4::1']);
    }
    const [a4, a6] = ipsOf(a.result).map((s) => s.split('/')[0]!);
    const [b4, b6] = ipsOf(b.result).map((s) => s.split('/')[0]!);
    const res = await Promise.all([ping(a.ns.name, b6!, { waitS: 2 }), ping(b.ns.name, a6!, { waitS: 2 }), ping(a.ns.name, 'fd90:4::1', { waitS: 2 }), ping(a.ns.name, b4!), ping(b.ns.name, a4!)]);
    assert.deepEqual(res, [true, true, true, true, true]);
    const allocs = await allocationsOf(kit.router, a.call.containerId);
    assert.deepEqual(allocs.map((x) => x.subnet).sort(), ['ds4', 'ds6']);
    await Promise.all([del(a), del(b)]);
    await assertNothingLeft(kit.router, a.call.containerId);
  });

  test('the mac capability and CNI_ARGS MAC= set the container MAC', async () => {
    const cases = [
      { mac: '02:aa:bb:cc:dd:01', config: weftConf({ capabilities: { mac: true }, runtimeConfig: { mac: '02:AA:BB:CC:DD:01' } }), args: 'K8S_POD_NAME=mac-a' },
      { mac: '02:aa:bb:cc:dd:02', config: weftConf(), args: 'IgnoreUnknown=1;K8S_POD_NAME=mac-b;MAC=02:aa:bb:cc:dd:02' },
    ];
    const added = await Promise.all(cases.map((c) => addOk(c.config, c.args)));
    for (const [i, a] of added.entries()) {
      const want = cases[i]!.mac;
      assert.equal((await linkInfo(a.ns, 'eth0'))?.address, want);
      assert.equal((a.result['interfaces'] as { name: string; mac: string }[])[2]?.mac, want);
      // CHECK compares the MAC too.
      cniOk(await kit.router.cni({ ...a.call, command: 'CHECK' }, { ...a.config, prevResult: a.result }));
    }
    await Promise.all(added.map(del));
  });

  describe('NAT in the host netns', () => {
    let client: Netns;
    let rootTablesBefore: string;
    const nftTables = async (ns?: string): Promise<string> => execOk('nft', ['list', 'tables'], ns ? { netns: ns } : {});

    before(async () => {
      rootTablesBefore = await nftTables();
      // The simulated underlay: host 198.51.100.1 <-> client 198.51.100.2. The client has no route to the container subnets.
      client = await kit.world.netns('cl');
      await execOk('ip', ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'cl0', 'netns', client.name], { netns: kit.host.name });
      await execOk('ip', ['addr', 'add', '198.51.100.1/24', 'dev', 'up0'], { netns: kit.host.name });
      await execOk('ip', ['link', 'set', 'up0', 'up'], { netns: kit.host.name });
      await execOk('ip', ['addr', 'add', '198.51.100.2/24', 'dev', 'cl0'], { netns: client.name });
      await execOk('ip', ['link', 'set', 'cl0', 'up'], { netns: client.name });
      // An IPv6 underlay too (documentation prefix, inside our namespaces only).
      await execOk('ip', ['addr', 'add', '2001:db8:100::1/64', 'dev', 'up0', 'nodad'], { netns: kit.host.name });
      await execOk('ip', ['addr', 'add', '2001:db8:100::2/64', 'dev', 'cl0', 'nodad'], { netns: client.name });
    });

    test('ipMasq: the nft table appears in the host netns only, and masquerades to the underlay', async () => {
      const plain = await addOk(weftConf(), 'K8S_POD_NAME=nomasq');
      assert.equal(await ping(plain.ns.name, '198.51.100.2'), false, 'without masquerade the client cannot answer');
      const masq = await addOk(weftConf({ ipMasq: true }), 'K8S_POD_NAME=masq');
      const tables = await nftTables(kit.host.name);
      assert.match(tables, /^table inet weft$/m);
      const ruleset = await execOk('nft', ['list', 'table', 'inet', 'weft'], { netns: kit.host.name });
      assert.match(ruleset, /ip saddr 10\.79\.0\.0\/24 ip daddr != 10\.79\.0\.0\/24 masquerade/);
      assert.doesNotMatch(await nftTables(masq.ns.name), /weft/, 'nothing in the container netns');
      assert.equal(await nftTables(), rootTablesBefore, 'the root netns is untouched');
      assert.equal(await ping(masq.ns.name, '198.51.100.2', { waitS: 2 }), true, 'masqueraded traffic reaches the client');
      await del(masq);
      assert.doesNotMatch(await nftTables(kit.host.name), /inet weft/, 'the table goes with the last user');
      await del(plain);
    });

    test('a flushed nftables table (e.g. `systemctl restart nftables`) comes back at the next reconcile', async () => {
      const masq = await addOk(weftConf({ ipMasq: true }), 'K8S_POD_NAME=masqflush');
      try {
        await execOk('nft', ['delete', 'table', 'inet', 'weft'], { netns: kit.host.name });
        assert.equal(await ping(masq.ns.name, '198.51.100.2'), false, 'masquerade is gone with the table');
        await kit.router.api().post('/v1/reconcile', {});
        assert.match(await execOk('nft', ['list', 'table', 'inet', 'weft'], { netns: kit.host.name }), /masquerade/);
        assert.equal(await ping(masq.ns.name, '198.51.100.2', { waitS: 2 }), true, 'masqueraded traffic flows again');
      } finally {
        await del(masq);
      }
    });

    test('ipMasq on a dual-stack network: both families leave the host, also for a v6 subnet created after start-up', async () => {
      // ds6 was created with `weft subnet create` after the router started (before() above), when it only had IPv4 subnets.
      const a = await addOk(weftConf({ subnet: ['ds4', 'ds6'], ipMasq: true }), 'K8S_POD_NAME=masq6');
      try {
        const ruleset = await execOk('nft', ['list', 'table', 'inet', 'weft'], { netns: kit.host.name });
        assert.match(ruleset, /ip6 saddr fd90:4::\/64 ip6 daddr != fd90:4::\/64 masquerade/);
        assert.equal(await ping(a.ns.name, '198.51.100.2', { waitS: 2 }), true, 'IPv4 is masqueraded to the underlay');
        assert.equal(await ping(a.ns.name, '2001:db8:100::2', { waitS: 2 }), true, 'IPv6 is forwarded and masqueraded to the underlay');
      } finally {
        await del(a);
      }
    });

    test('portMappings: a TCP server in a container is reachable from a client via the host underlay address', async () => {
      const conf = weftConf({ capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' }] } });
      const srv = await addOk(conf, 'K8S_POD_NAME=web');
      const server = kit.world.spawnIn(srv.ns, NODE, ['-e', SERVER(80, 'hello')]);
      let ready = false;
      server.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('ready')) ready = true; });
      assert.ok(await waitFor(async () => ready, 5000), 'the server in the container is listening');
      const ruleset = await execOk('nft', ['list', 'table', 'inet', 'weft'], { netns: kit.host.name });
      assert.match(ruleset, new RegExp(`tcp dport 8080 dnat ip to ${srv.ip.replace(/\./g, '\\.')}:80`));
      const r = await exec(NODE, ['-e', CLIENT('198.51.100.1', 8080)], { netns: client.name });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'hello 198.51.100.2', 'DNAT without masquerade: the server sees the client');
      // A second container cannot publish the same host port.
      const clash = await add(conf, 'K8S_POD_NAME=web-2');
      assert.equal(cniError(clash.out, 105).msg, `host port tcp/8080 is already published by container ${srv.call.containerId}`);
      await assertNothingLeft(kit.router, clash.call.containerId);
      await del(srv);
      const gone = await exec(NODE, ['-e', CLIENT('198.51.100.1', 8080)], { netns: client.name });
      assert.notEqual(gone.code, 0, 'the mapping is gone with the container');
      assert.doesNotMatch(await nftTables(kit.host.name), /inet weft/);
      assert.equal(await nftTables(), rootTablesBefore, 'the root netns is untouched');
    });
  });
});
