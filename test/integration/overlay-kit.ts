/**
 * Simulated hosts for the overlay tests (overlay-*.test.ts): a "switch"
 * netns with a bridge, host namespaces joined to it by veths on
 * 192.0.2.0/24 (the underlay, `ul0` in each host), a weft network bridge
 * per host and container namespaces with a veth into it (10.77.0.0/24).
 * The overlay is programmed only through KernelOverlay, from planOverlay.
 * Everything lives in namespaces of one World; nothing touches the root
 * netns.
 */
import { performance } from 'node:perf_hooks';
import { KernelOverlay } from '../../src/adapters/kernel/overlay-kernel.js';
import { bridgeNameFor } from '../../src/core/dataplane/names.js';
import { planOverlay } from '../../src/core/dataplane/overlay-plan.js';
import type { OverlayEndpointInput, OverlayInput, OverlayPeerInput, OverlayPlan } from '../../src/core/dataplane/overlay-types.js';
import { exec, execOk } from '../helpers/exec.js';
import { type Netns, World } from '../helpers/world.js';

export const NETWORK = `ovl${process.pid % 10000}`;
export const BRIDGE = bridgeNameFor(NETWORK);
export const CONTAINER_MTU = 1450;

export interface LogLine { level: string; msg: string; fields?: Record<string, unknown> }

export function memoryLogger(lines: LogLine[] = []): { debug: (m: string, f?: Record<string, unknown>) => void; info: (m: string, f?: Record<string, unknown>) => void; warn: (m: string, f?: Record<string, unknown>) => void; error: (m: string, f?: Record<string, unknown>) => void; lines: LogLine[] } {
  const add = (level: string) => (msg: string, fields?: Record<string, unknown>): void => {
    lines.push({ level, msg, ...(fields ? { fields } : {}) });
  };
  return { debug: add('debug'), info: add('info'), warn: add('warn'), error: add('error'), lines };
}

export interface SimHost {
  readonly name: string; // peer id
  readonly ns: Netns;
  readonly ip: string; // underlay
  /** Switch-side veth of this host. */
  readonly port: string;
  readonly overlay: KernelOverlay;
  readonly log: LogLine[];
}

export interface SimContainer {
  readonly name: string;
  readonly ns: Netns;
  readonly host: SimHost;
  readonly mac: string;
  readonly ip: string;
  readonly hostIfname: string;
}

export interface SimWorld {
  readonly world: World;
  readonly sw: Netns;
  readonly hosts: SimHost[];
  readonly containers: SimContainer[];
}

/** The switch, `n` hosts (h1..hn at 192.0.2.1..n), each with the network bridge. */
export async function buildHosts(world: World, n: number, tag = 'ov'): Promise<SimWorld> {
  const sw = await world.netns(`${tag}s`);
  await execOk('ip', ['link', 'add', 'sw', 'type', 'bridge'], { netns: sw.name });
  await execOk('ip', ['link', 'set', 'sw', 'up'], { netns: sw.name });
  const hosts: SimHost[] = [];
  for (let i = 1; i <= n; i++) {
    const ns = await world.netns(`${tag}h`);
    const port = `u${i}`;
    const ip = `192.0.2.${i}`;
    const batch = [
      `link add ${port} type veth peer name ul0 netns ${ns.path}`,
      `link set ${port} master sw`,
      `link set ${port} up`,
    ];
    await execOk('ip', ['-batch', '-'], { netns: sw.name, input: batch.join('\n') + '\n' });
    const hb = [
      `addr add ${ip}/24 dev ul0`,
      'link set ul0 up',
      // the network bridge, as weft's KernelDataPlane would make it (owner alias, pinned MAC)
      `link add name ${BRIDGE} address 02:aa:00:00:00:0${i} mtu ${CONTAINER_MTU} type bridge`,
      `link set dev ${BRIDGE} alias weft:${NETWORK}`,
      `addr add 10.77.0.254/24 dev ${BRIDGE}`,
      `link set dev ${BRIDGE} up`,
    ];
    await execOk('ip', ['-batch', '-'], { netns: ns.name, input: hb.join('\n') + '\n' });
    const log: LogLine[] = [];
    hosts.push({ name: `h${i}`, ns, ip, port, overlay: new KernelOverlay(memoryLogger(log), { hostNetns: ns.path }), log });
  }
  return { world, sw, hosts, containers: [] };
}

/** A container namespace on `host` with eth0 (MTU 1450) on the network bridge. */
export async function addContainer(sim: SimWorld, host: SimHost, index: number): Promise<SimContainer> {
  const ns = await sim.world.netns('ovc');
  const mac = `02:00:0a:4d:00:${index.toString(16).padStart(2, '0')}`;
  const ip = `10.77.0.${index}`;
  const hostIfname = `ve${index}`;
  await execOk('ip', ['-batch', '-'], {
    netns: host.ns.name,
    input: [
      `link add ${hostIfname} mtu ${CONTAINER_MTU} type veth peer name eth0 mtu ${CONTAINER_MTU} address ${mac} netns ${ns.path}`,
      `link set ${hostIfname} master ${BRIDGE}`,
      `link set ${hostIfname} up`,
    ].join('\n') + '\n',
  });
  await execOk('ip', ['-batch', '-'], { netns: ns.name, input: [`addr add ${ip}/24 dev eth0`, 'link set eth0 up'].join('\n') + '\n' });
  const c: SimContainer = { name: `c${index}`, ns, host, mac, ip, hostIfname };
  sim.containers.push(c);
  return c;
}

/** The planner input of `host`: every other host as a peer (with `via` from `routes`), every container as an endpoint. */
export function inputFor(sim: SimWorld, host: SimHost, opts: { via?: Record<string, string>; exclude?: string[]; endpoints?: OverlayEndpointInput[] } = {}): OverlayInput {
  const peers: OverlayPeerInput[] = sim.hosts
    .filter((h) => h !== host && !(opts.exclude ?? []).includes(h.name))
    .map((h) => ({ peer: h.name, ip: h.ip, ...(opts.via?.[h.name] !== undefined ? { via: opts.via[h.name]! } : {}) }));
  const endpoints = opts.endpoints ?? sim.containers.map((c) => ({ network: NETWORK, peer: c.host.name, mac: c.mac, ips: [c.ip] }));
  return { localPeer: host.name, underlay: { ip: host.ip, dev: 'ul0' }, networks: [{ name: NETWORK, bridge: BRIDGE, mtu: CONTAINER_MTU }], peers, endpoints };
}

/** Plans and applies on one host; returns the plan. */
export async function program(host: SimHost, input: OverlayInput, relay = true): Promise<OverlayPlan> {
  const plan = planOverlay(input, { relay });
  await host.overlay.apply(plan.desired);
  return plan;
}

export async function pingOk(from: SimContainer | Netns, to: string, opts: { count?: number; size?: number; df?: boolean; waitS?: number; broadcast?: boolean } = {}): Promise<boolean> {
  const ns = 'ns' in from ? from.ns.name : from.name;
  const args = ['-4', '-n', '-q', '-c', String(opts.count ?? 1), '-W', String(opts.waitS ?? 1), '-i', '0.2'];
  if (opts.size !== undefined) args.push('-s', String(opts.size));
  if (opts.df) args.push('-M', 'do');
  if (opts.broadcast) args.push('-b');
  args.push(to);
  const r = await exec('ping', args, { netns: ns });
  return r.code === 0;
}

/** Pings until one answer or the deadline (the first packet may race an apply). */
export async function pingEventually(from: SimContainer, to: string, ms = 5000): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await pingOk(from, to)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

const NODE = process.execPath;

/** One TCP exchange: a node server in `srv` answers "pong:<data>"; the client in `cli` sends "ping". */
export async function tcpRoundTrip(sim: SimWorld, srv: SimContainer, cli: SimContainer, port: number): Promise<string> {
  const server = sim.world.spawnIn(srv.ns, NODE, ['-e', `require('net').createServer((s)=>{let b='';s.on('data',(d)=>{b+=d;if(b.length>=200000)s.end('pong:'+b.length)});}).listen(${port},'0.0.0.0',()=>console.log('up'))`]);
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout!.once('data', () => resolve());
      server.once('exit', (c) => reject(new Error(`server exited ${String(c)}`)));
    });
    // 200 kB: many full-size segments, so the MTU matters
    const r = await exec(NODE, ['-e', `const c=require('net').connect(${port},'${srv.ip}',()=>c.write(Buffer.alloc(200000,120)));let b='';c.on('data',(d)=>b+=d);c.on('end',()=>{console.log(b);process.exit(0)});c.on('error',(e)=>{console.error(e.message);process.exit(1)});setTimeout(()=>{console.error('timeout');process.exit(2)},8000)`], { netns: cli.ns.name, timeoutMs: 15_000 });
    return r.stdout.trim() || r.stderr.trim();
  } finally {
    server.kill('SIGKILL');
  }
}

/** Packets received + sent by a link (for storm bounds). */
export async function linkPackets(ns: Netns, dev: string): Promise<number> {
  const out = await execOk('ip', ['-j', '-s', 'link', 'show', 'dev', dev], { netns: ns.name });
  const l = (JSON.parse(out) as { stats64: { rx: { packets: number }; tx: { packets: number } } }[])[0]!;
  return l.stats64.rx.packets + l.stats64.tx.packets;
}

/** A tcpdump in `ns` printing one line per packet that matches `filter`; stop() returns the lines. */
export async function capture(world: World, ns: Netns, iface: string, filter: string): Promise<{ stop(): Promise<string[]> }> {
  const child = world.spawnIn(ns, 'tcpdump', ['-l', '-n', '-i', iface, '-U', filter]);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const deadline = performance.now() + 5000;
  while (!/listening on/.test(err)) {
    if (child.exitCode !== null || performance.now() > deadline) throw new Error(`tcpdump did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    async stop(): Promise<string[]> {
      await new Promise((r) => setTimeout(r, 200)); // let the last packets through
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      return out.split('\n').filter((l) => l.trim() !== '');
    },
  };
}

/** Root netns facts that must not change (links named like ours, nft tables). */
export async function rootSnapshot(): Promise<string> {
  const links = (JSON.parse(await execOk('ip', ['-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname).filter((n) => /^(wx|wr|weft-vx)/.test(n));
  const tables = (await exec('nft', ['list', 'tables'])).stdout.split('\n').filter((l) => l.includes('bridge weft'));
  return JSON.stringify({ links, tables });
}
