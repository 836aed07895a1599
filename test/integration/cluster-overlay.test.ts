/**
 * Containers on different simulated hosts, attached through the real CNI
 * plugin of the real router on each host, reach each other over weft's
 * kernel VXLAN overlay: ping, TCP, full-size pings with DF, no ARP on the
 * underlay in steady state, repair of deleted entries, kill -9 and restart
 * of a router, a partition and its heal.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addContainer, buildCluster, pingEventually, type SimCluster, type SimContainer, type SimHost, waitMeshConverged } from '../helpers/cluster.js';
import { lapsesDuring } from '../helpers/cluster-faults.js';
import { exec } from '../helpers/exec.js';
import { waitFor } from '../helpers/it-kit.js';
import { World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
let cl: SimCluster;
const cs: SimContainer[] = [];

before(async () => {
  if (skip) return;
  cl = await buildCluster(world, 3, { ipallocRange: '10.42.0.0/16', extraArgs: ['--ipalloc-init', 'seed=h1,h2,h3'] });
  await waitMeshConverged(cl.hosts);
  for (const h of cl.hosts) cs.push(await addContainer(world, h, `c${h.name}`));
});
after(() => world.cleanup());

const host = (i: number): SimHost => cl.hosts[i]!;

/** A one-shot TCP echo: the server in `srv` answers "pong:<what it read>" once. */
async function tcpRoundTrip(srv: SimContainer, cli: SimContainer, port: number): Promise<string> {
  const server = world.spawnIn(srv.ns, process.execPath, ['-e', `require('net').createServer((s)=>{s.once('data',(d)=>s.end('pong:'+d));}).listen(${port},'0.0.0.0',()=>console.log('up'))`]);
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout!.once('data', () => resolve());
      server.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    });
    const r = await exec(process.execPath, ['-e', `const c=require('net').connect(${port},'${srv.ip}',()=>c.write('ping'));let b='';c.on('data',(d)=>b+=d);c.on('end',()=>{console.log(b);});c.on('error',(e)=>{console.error(e.message);process.exit(1)});setTimeout(()=>process.exit(2),5000)`], { netns: cli.ns.name, timeoutMs: 10_000 });
    return r.stdout.trim();
  } finally {
    server.kill('SIGKILL');
  }
}

test('containers on three hosts ping each other and carry TCP', { skip, timeout: 90_000 }, async () => {
  assert.equal(new Set(cs.map((c) => c.ip)).size, 3, `distinct addresses across hosts: ${cs.map((c) => c.ip).join(', ')}`);
  for (const a of cs) {
    for (const b of cs) {
      if (a === b) continue;
      assert.ok(await pingEventually(a.ns, b.ip, 15_000), `${a.host.name} -> ${b.host.name} (${b.ip})\n${a.host.router.log.split('\n').slice(-15).join('\n')}`);
    }
  }
  // A full mesh relays nothing: no relay device and no loop-guard chain on the packet path.
  for (const h of cl.hosts) {
    const lean = await waitFor(async () => {
      const links = JSON.parse((await exec('ip', ['-d', '-j', 'link', 'show', 'type', 'vxlan'], { netns: h.ns.name })).stdout) as { ifname: string }[];
      const tables = (await exec('nft', ['list', 'tables'], { netns: h.ns.name })).stdout;
      return links.map((l) => l.ifname).join(',') === 'weft-vx' && !/table bridge weft/.test(tables);
    }, 10_000);
    assert.ok(lean, `${h.name}: only the data VXLAN device, no bridge table`);
  }
  assert.equal(await tcpRoundTrip(cs[0]!, cs[2]!, 7001), 'pong:ping');
  assert.equal(await tcpRoundTrip(cs[2]!, cs[1]!, 7002), 'pong:ping');
});

test('a full-MTU ping with DF set crosses hosts (container MTU = underlay MTU - 50)', { skip, timeout: 30_000 }, async () => {
  const mtu = Number(JSON.parse((await exec('ip', ['-j', 'link', 'show', 'eth0'], { netns: cs[0]!.ns.name })).stdout)[0].mtu);
  assert.equal(mtu, 1450);
  const r = await exec('ping', ['-c', '2', '-W', '2', '-M', 'do', '-s', String(mtu - 28), cs[1]!.ip], { netns: cs[0]!.ns.name });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const tooBig = await exec('ping', ['-c', '1', '-W', '1', '-M', 'do', '-s', String(mtu - 27), cs[1]!.ip], { netns: cs[0]!.ns.name });
  assert.notEqual(tooBig.code, 0, 'one byte more does not fit the container MTU');
});

test('no ARP crosses the underlay in steady state, even after the containers forget their neighbours', { skip, timeout: 60_000 }, async () => {
  for (const a of cs) for (const b of cs) if (a !== b) assert.ok(await pingEventually(a.ns, b.ip, 10_000));
  // Capture on every switch port: ARP inside VXLAN (inner ethertype 0x0806 at udp[28:2]) or broadcast ARP on the wire.
  const filter = '(udp port 4789 and udp[28:2] = 0x0806) or (arp and ether broadcast)';
  const caps = cl.hosts.map((h) => world.spawnIn(cl.sw, 'tcpdump', ['-i', h.swPort, '-n', '-l', '-c', '100', filter]));
  const lines: string[] = [];
  for (const c of caps) c.stdout!.setEncoding('utf8').on('data', (s: string) => lines.push(...s.split('\n').filter(Boolean)));
  const started = await Promise.all(caps.map((c) => new Promise<boolean>((resolve) => {
    let err = '';
    c.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; if (/listening on/.test(err)) resolve(true); });
    c.once('exit', () => resolve(false));
  })));
  assert.ok(started.every(Boolean), 'tcpdump runs on every port');
  try {
    for (const c of cs) await exec('ip', ['neigh', 'flush', 'all'], { netns: c.ns.name });
    for (let round = 0; round < 3; round++) {
      for (const a of cs) for (const b of cs) if (a !== b) assert.equal((await exec('ping', ['-c', '1', '-W', '2', b.ip], { netns: a.ns.name })).code, 0, `${a.ip} -> ${b.ip}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    for (const c of caps) c.kill('SIGINT');
  }
  assert.deepEqual(lines, [], 'ARP was answered on each host (vxlan proxy), never sent across');
});

test('deleted overlay state is repaired by the router', { skip, timeout: 60_000 }, async () => {
  const h1 = host(0);
  const vx = JSON.parse((await exec('ip', ['-d', '-j', 'link', 'show', 'type', 'vxlan'], { netns: h1.ns.name })).stdout) as { ifname: string }[];
  assert.equal(vx.length >= 1, true, 'a VXLAN device exists');
  await exec('ip', ['link', 'del', vx[0]!.ifname], { netns: h1.ns.name });
  assert.ok(await waitFor(async () => (await h1.router.api().post('/v1/reconcile')) !== undefined && (await exec('ping', ['-c', '1', '-W', '1', cs[1]!.ip], { netns: cs[0]!.ns.name })).code === 0, 20_000), 'the overlay comes back after its device was deleted');
});

test('kill -9 and restart of a router: its containers stay reachable, and it rejoins', { skip, timeout: 90_000 }, async () => {
  const h2 = host(1);
  await h2.router.kill9();
  // The kernel keeps forwarding while the router is gone.
  assert.ok(await pingEventually(cs[0]!.ns, cs[1]!.ip, 5_000), 'h1 -> h2 container while h2 router is down');
  // And while it starts again: until the mesh has heard from h1 and h3, h2's router removes none of
  // their entries (start-up grace), so the forwarding entries for their containers never disappear.
  const remoteMacs = [cs[0]!.mac, cs[2]!.mac].map((m) => m.toLowerCase());
  const gaps = await lapsesDuring(async () => {
    const r = await exec('bridge', ['-n', h2.ns.name, 'fdb', 'show', 'dev', 'weft-vx']);
    const missing = remoteMacs.filter((m) => !r.stdout.toLowerCase().includes(`${m} dst`));
    return missing.length ? `missing ${missing.join(', ')}` : undefined;
  }, async () => {
    await h2.router.start();
    await waitMeshConverged(cl.hosts);
    await new Promise((res) => setTimeout(res, 1500));
  });
  assert.deepEqual(gaps, [], `h2's forwarding entries for the other hosts' containers stayed in place during the restart\n${h2.router.log.split('\n').filter((l) => l.includes('overlay')).slice(-8).join('\n')}`);
  const c = await addContainer(world, h2, 'cafter');
  assert.ok(!cs.some((x) => x.ip === c.ip), 'no address handed out twice after the restart');
  assert.ok(await pingEventually(cs[2]!.ns, c.ip, 15_000), 'a container started after the restart is reachable from h3');
  cs.push(c);
});

test('partition then heal: each side keeps its own containers, the overlay converges after healing', { skip, timeout: 120_000 }, async () => {
  const h3 = host(2);
  // Cut h3 off the underlay (its switch port down).
  await world.execOk('ip', ['link', 'set', h3.swPort, 'down'], { netns: cl.sw.name });
  try {
    assert.ok(await waitFor(async () => {
      const m = await host(0).router.api().get<{ peers: { nickname: string; reachable: boolean }[] }>('/v1/mesh');
      return m.peers.some((p) => p.nickname === 'h3' && !p.reachable);
    }, 15_000), 'h1 notices h3 is gone');
    // Both sides keep allocating, from their own shares only.
    const left = await addContainer(world, host(0), 'cpl');
    const right = await addContainer(world, h3, 'cpr');
    assert.notEqual(left.ip, right.ip);
    assert.ok(await pingEventually(left.ns, cs[1]!.ip, 10_000), 'the majority side still works');
    cs.push(left, right);
  } finally {
    await world.execOk('ip', ['link', 'set', h3.swPort, 'up'], { netns: cl.sw.name });
  }
  await waitMeshConverged(cl.hosts, 30_000);
  const [left, right] = cs.slice(-2) as [SimContainer, SimContainer];
  assert.ok(await pingEventually(left.ns, right.ip, 20_000), 'containers created on both sides during the partition reach each other after the heal');
  assert.ok(await pingEventually(right.ns, cs[0]!.ip, 20_000));
});
