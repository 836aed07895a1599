/**
 * The conntrack bypass (src/core/dataplane/nat-ruleset.ts): with ipMasq on,
 * weft's NAT table makes the kernel track connections in the host netns, and
 * br_netfilter (bridge-nf-call-iptables=1, the default in a new netns) would
 * send every bridged container frame and every VXLAN packet through it. The
 * router exempts what is never NATed. Two hosts: h1 with the default, h2
 * with `--no-conntrack-bypass` (which also shows that the check below sees
 * tracked flows when there are some). On h1, a hairpin connection to a
 * published port must still work: it is masqueraded to the gateway, which
 * stays tracked.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildCluster, pingEventually, type SimCluster, type SimHost, waitMeshConverged } from '../helpers/cluster.js';
import { exec, execOk } from '../helpers/exec.js';
import { waitFor } from '../helpers/it-kit.js';
import { weftConf } from '../helpers/router.js';
import { type Netns, World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const world = new World();
let cl: SimCluster;

interface Box { ns: Netns; ip: string; gateway: string }

const MASQ = weftConf({ ipMasq: true });
const PUBLISHED = weftConf({ ipMasq: true, capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } });

async function add(h: SimHost, tag: string, conf: Record<string, unknown>): Promise<Box> {
  const ns = await world.netns(tag);
  const out = await h.router.cni({ command: 'ADD', containerId: `${tag}-${ns.name}`, netns: ns.path, ifname: 'eth0', args: `K8S_POD_NAME=${tag}` }, conf);
  assert.equal(out.code, 0, `ADD on ${h.name}: ${out.stdout}${out.stderr}`);
  const ip = (out.json as { ips: { address: string; gateway: string }[] }).ips[0]!;
  return { ns, ip: ip.address.split('/')[0]!, gateway: ip.gateway };
}

/** Starts a server in `box` that answers each connection with "hello <peer address>". */
async function serve(box: Box, port: number): Promise<() => void> {
  const p = world.spawnIn(box.ns, process.execPath, ['-e', `require('net').createServer((c)=>c.end('hello '+String(c.remoteAddress).replace(/^::ffff:/,''))).listen(${port},()=>console.log('up'))`]);
  await new Promise<void>((resolve, reject) => {
    p.stdout!.once('data', () => resolve());
    p.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return () => p.kill('SIGKILL');
}

async function fetchFrom(box: Box, host: string, port: number): Promise<string> {
  const r = await exec(process.execPath, ['-e', `const c=require('net').connect(${port},'${host}');let b='';c.on('data',(d)=>b+=d);c.on('end',()=>console.log(b));c.on('error',(e)=>{console.error(e.message);process.exit(1)});setTimeout(()=>process.exit(2),5000)`], { netns: box.ns.name, timeoutMs: 10_000 });
  return r.stdout.trim();
}

/** The host netns's conntrack table. */
async function conntrack(h: SimHost): Promise<string> {
  return execOk('cat', ['/proc/net/nf_conntrack'], { netns: h.ns.name });
}

const flow = (table: string, src: string, dst: string): boolean => table.includes(` src=${src} dst=${dst} `);

let h1: SimHost;
let h2: SimHost;
let a1: Box;
let b1: Box;
let a2: Box;

before(async () => {
  if (skip) return;
  cl = await buildCluster(world, 2, { ipallocRange: '10.43.0.0/16', extraArgs: ({ index }) => ['--ipalloc-init', 'seed=h1,h2', ...(index === 1 ? ['--no-conntrack-bypass'] : [])] });
  [h1, h2] = [cl.hosts[0]!, cl.hosts[1]!];
  await waitMeshConverged(cl.hosts);
  a1 = await add(h1, 'a1', MASQ);
  b1 = await add(h1, 'b1', PUBLISHED);
  a2 = await add(h2, 'a2', MASQ);
});
after(() => world.cleanup());

test('the bypass chains: rendered on h1 (subnet minus gateway, VXLAN port on the underlay address), absent on h2', { skip, timeout: 30_000 }, async () => {
  const t1 = await execOk('nft', ['list', 'table', 'inet', 'weft'], { netns: h1.ns.name });
  assert.match(t1, /type filter hook prerouting priority raw; policy accept;/);
  assert.match(t1, new RegExp(`ip saddr 10\\.43\\.0\\.0/16 ip daddr 10\\.43\\.0\\.0/16 ip saddr != ${a1.gateway.replace(/\./g, '\\.')} ip daddr != ${a1.gateway.replace(/\./g, '\\.')} notrack`));
  assert.match(t1, /ip daddr 192\.0\.2\.1 udp dport 4789 notrack/);
  assert.match(t1, /ip saddr 192\.0\.2\.1 udp dport 4789 notrack/);
  const t2 = await execOk('nft', ['list', 'table', 'inet', 'weft'], { netns: h2.ns.name });
  assert.match(t2, /masquerade/, 'h2 masquerades too');
  assert.doesNotMatch(t2, /notrack/);
  assert.match((await h1.router.weft('status')).stdout, /Conntrack: {4}bypassed for traffic inside a subnet/);
  assert.match((await h2.router.weft('status')).stdout, /Conntrack: {4}tracks all container traffic \(--no-conntrack-bypass\)/);
});

test('container traffic inside the subnet and the VXLAN packets are not tracked where the bypass is on, and are where it is off', { skip, timeout: 60_000 }, async () => {
  assert.ok(await pingEventually(a1.ns, a2.ip, 15_000), 'a1 reaches a2 across hosts');
  const stopB1 = await serve(b1, 80);
  const stopA2 = await serve(a2, 80);
  try {
    assert.equal(await fetchFrom(a1, b1.ip, 80), `hello ${a1.ip}`, 'same host, same bridge');
    assert.equal(await fetchFrom(a1, a2.ip, 80), `hello ${a1.ip}`, 'across hosts');
  } finally {
    stopB1();
    stopA2();
  }
  const c1 = await conntrack(h1);
  assert.ok(!flow(c1, a1.ip, b1.ip), `h1 tracked a1 -> b1:\n${c1}`);
  assert.ok(!flow(c1, a1.ip, a2.ip), `h1 tracked a1 -> a2:\n${c1}`);
  assert.doesNotMatch(c1, /dport=4789 /, 'h1 tracked VXLAN packets');
  const c2 = await conntrack(h2);
  assert.ok(flow(c2, a1.ip, a2.ip), `h2 (bypass off) tracks a1 -> a2:\n${c2}`);
  assert.match(c2, /dport=4789 /, 'h2 (bypass off) tracks VXLAN packets');
});

test('a hairpin connection to a published port still works with the bypass: masqueraded to the gateway, tracked', { skip, timeout: 60_000 }, async () => {
  const stop = await serve(b1, 80);
  try {
    // Through the gateway address and through the host's underlay address: both are local, so the DNAT applies.
    const viaGateway = await waitFor(async () => (await fetchFrom(a1, a1.gateway, 8080)) === `hello ${a1.gateway}`, 10_000);
    assert.ok(viaGateway, `a1 -> ${a1.gateway}:8080 lands on b1 and b1 sees the gateway`);
    assert.equal(await fetchFrom(a1, h1.ip, 8080), `hello ${a1.gateway}`, 'a1 -> the underlay address:8080');
    // A container on the other host reaches the published port over the underlay (DNAT without masquerade).
    assert.equal(await fetchFrom(a2, h1.ip, 8080), `hello ${h2.ip}`, 'a2 -> h1:8080, masqueraded by h2 on the way out');
  } finally {
    stop();
  }
  const c1 = await conntrack(h1);
  assert.ok(flow(c1, a1.ip, a1.gateway) && / dport=8080 /.test(c1), `the hairpin flow is tracked on h1:\n${c1}`);
});
