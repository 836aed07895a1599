/**
 * The mesh router over the real TCP transport (src/adapters/mesh/tcp-transport.ts).
 *
 * World: three "host" namespaces, each with eth0 on 192.0.2.0/24, joined by
 * a bridge in a fourth "switch" namespace. One mesh node process per host
 * namespace (test/helpers/mesh-node.ts, started with nsenter), reporting its
 * status as JSON lines. Nothing touches the root netns.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import type { MeshNodeSpec, MeshNodeStatus } from '../helpers/mesh-node.js';
import { type Netns, World, canCreateNetns } from '../helpers/world.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';
const NODE_SCRIPT = fileURLToPath(new URL('../helpers/mesh-node.js', import.meta.url));
const PORT = 6783;
const FAST = {
  heartbeatIntervalMs: 200, deadAfterMs: 1_000, handshakeTimeoutMs: 2_000, topologyFlushMs: 50,
  gossipIntervalMs: 1_000, routeRecalcMs: 20, backoff: { initialMs: 200, maxMs: 1_000 },
};

interface Node {
  readonly name: string;
  readonly ns: Netns;
  readonly ip: string;
  child?: ChildProcess;
  status?: MeshNodeStatus;
  stderr: string;
}

const world = new World();
after(() => world.cleanup());

function start(n: Node, spec: MeshNodeSpec): void {
  const child = world.spawnIn(n.ns, process.execPath, [NODE_SCRIPT, JSON.stringify(spec)]);
  n.child = child;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      n.status = JSON.parse(line) as MeshNodeStatus;
    } catch {
      n.stderr += `bad status line: ${line}\n`;
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    n.stderr = (n.stderr + s).slice(-20_000);
  });
}

async function waitFor(what: string, nodes: readonly Node[], cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) {
      const dump = nodes.map((n) => `--- ${n.name}: ${JSON.stringify(n.status)}\n${n.stderr.split('\n').slice(-15).join('\n')}`).join('\n');
      assert.fail(`timed out waiting for ${what}\n${dump}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A plain TCP client in `ns`: sends `hex` bytes to ip:port and reports whether the server closed on it. */
const GARBAGE_CLIENT = (ip: string, port: number, hex: string): string =>
  `const c=require('net').connect({host:${JSON.stringify(ip)},port:${port}});` +
  `c.on('connect',()=>c.write(Buffer.from(${JSON.stringify(hex)},'hex')));c.on('data',()=>{});` +
  `const t=setTimeout(()=>{console.log('open');process.exit(2)},4000);` +
  `c.on('close',()=>{clearTimeout(t);console.log('closed');process.exit(0)});c.on('error',()=>{});`;

test('three routers over TCP in namespaces: mesh, gossip, failure detection, garbage', { skip, timeout: 40_000 }, async () => {
  const sw = await world.netns('sw');
  await world.execOk('ip', ['link', 'add', 'br0', 'type', 'bridge'], { netns: sw.name });
  await world.execOk('ip', ['link', 'set', 'br0', 'up'], { netns: sw.name });
  const nodes: Node[] = [];
  for (const [i, name] of ['a', 'b', 'c'].entries()) {
    const ns = await world.netns(`m${name}`);
    const ip = `192.0.2.${i + 1}`;
    const port = `p${name}`;
    await world.execOk('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', sw.name], { netns: ns.name });
    await world.execOk('ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0'], { netns: ns.name });
    await world.execOk('ip', ['link', 'set', 'eth0', 'up'], { netns: ns.name });
    await world.execOk('ip', ['link', 'set', port, 'master', 'br0', 'up'], { netns: sw.name });
    nodes.push({ name, ns, ip, stderr: '' });
  }
  const [a, b, c] = nodes as [Node, Node, Node];
  const addr = (n: Node): string => `${n.ip}:${PORT}`;
  start(a, { nickname: 'a', ip: a.ip, port: PORT, peers: [], config: FAST, maxQueuedBytes: 256 * 1024, flood: { count: 200, bytes: 60_000 } });
  start(b, { nickname: 'b', ip: b.ip, port: PORT, peers: [addr(a)], config: FAST });
  start(c, { nickname: 'c', ip: c.ip, port: PORT, peers: [addr(a), addr(b)], config: FAST, set: { key: 'hello', value: 'from-c' }, setAfterPeers: 2 });

  // 1. Everyone is directly connected to everyone else.
  await waitFor('a full mesh', nodes, () => nodes.every((n) => n.status !== undefined && n.status.connected.length === 2));
  const ids = new Map(nodes.map((n) => [n.name, n.status!.peer]));
  for (const n of nodes) {
    assert.deepEqual([...n.status!.connected].sort(), nodes.filter((o) => o !== n).map((o) => ids.get(o.name)!).sort(), `${n.name} connected peers`);
  }

  // 2. The value c wrote once connected reaches a and b by gossip.
  await waitFor('the gossiped value', nodes, () => nodes.every((n) => n.status?.map.some(([k, v]) => k === 'hello' && v === 'from-c') === true));

  // 3. Garbage to a's port: that connection is closed, a keeps running and keeps its peers.
  const garbage = await world.execOk(process.execPath, ['-e', GARBAGE_CLIENT(a.ip, PORT, 'deadbeef'.repeat(64))], { netns: b.ns.name, timeoutMs: 10_000 });
  assert.equal(garbage.trim(), 'closed', 'the router closes a connection that sends garbage');
  // A huge bogus length header, and a well-sized frame that is not a hello.
  const huge = await world.execOk(process.execPath, ['-e', GARBAGE_CLIENT(a.ip, PORT, 'ffffffff00000000')], { netns: c.ns.name, timeoutMs: 10_000 });
  assert.equal(huge.trim(), 'closed');
  const badHello = await world.execOk(process.execPath, ['-e', GARBAGE_CLIENT(a.ip, PORT, `00000020${'5a'.repeat(32)}`)], { netns: c.ns.name, timeoutMs: 10_000 });
  assert.equal(badHello.trim(), 'closed');
  await waitFor('a to count the protocol errors', nodes, () => (a.status?.protocolErrors ?? 0) >= 3);
  assert.equal(a.child!.exitCode, null, 'a is still running');
  assert.equal(a.child!.signalCode, null);
  assert.equal(a.status!.connected.length, 2, 'a keeps its mesh connections');

  // 4. SIGKILL c: a and b drop it and mark it unreachable.
  c.child!.kill('SIGKILL');
  const cid = ids.get('c')!;
  const unreachable = (n: Node): boolean =>
    n.status !== undefined && !n.status.connected.includes(cid) && n.status.peers.some((p) => p.peer === cid && !p.reachable);
  await waitFor('c to be unreachable from a and b', nodes, () => unreachable(a) && unreachable(b));
  assert.deepEqual(a.status!.connected, [ids.get('b')!]);
  assert.deepEqual(b.status!.connected, [ids.get('a')!]);

  // 5. Backpressure: b stops reading (SIGSTOP) while a floods ~12 MB of gossip at
  //    it; a's bounded send queue overflows, a closes that connection with a
  //    logged reason and stays up. a then deletes the flood (a full-state sync
  //    of it would overflow the same queue on every reconnect: see the
  //    transport's file comment); once b resumes, the two reconnect.
  const aid = ids.get('a')!;
  const bid = ids.get('b')!;
  b.child!.kill('SIGSTOP');
  try {
    a.child!.kill('SIGUSR2');
    await waitFor('a to close the connection to the stalled b', nodes, () => (a.status?.overflowCloses ?? 0) >= 1 && !a.status!.connected.includes(bid));
    assert.match(a.stderr, /send queue overflow/);
    assert.equal(a.child!.exitCode, null, 'a is still running');
    a.child!.kill('SIGUSR1');
    await waitFor('a to delete the flood', nodes, () => a.status?.floodKeys === 0);
  } finally {
    b.child!.kill('SIGCONT');
  }
  await waitFor('a and b to reconnect and agree the flood is gone', nodes, () =>
    a.status?.connected.includes(bid) === true && b.status?.connected.includes(aid) === true && b.status.floodKeys === 0);
  for (const n of [a, b]) assert.doesNotMatch(n.stderr, /router input failed/, `${n.name} had no router exceptions`);

  // 6. SIGTERM runs TcpTransport.close(): a exits 0 promptly, b sees the connection go.
  const exited = new Promise<number | null>((resolve) => a.child!.once('exit', (code) => resolve(code)));
  a.child!.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 5_000))]);
  assert.equal(code, 0, 'a shuts down cleanly');
  await waitFor('b to drop a', nodes, () => b.status?.connected.includes(aid) === false);
});
