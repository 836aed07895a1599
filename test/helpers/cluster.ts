/**
 * Simulated hosts for the multi-host tests: N "host" namespaces, each with
 * eth0 on 192.0.2.0/24, joined by a bridge in a "switch" namespace (the
 * underlay), each running a real `weft launch` with fast mesh timers.
 * Containers are namespaces attached through the real CNI plugin.
 */
import assert from 'node:assert/strict';
import { exec } from './exec.js';
import { waitFor } from './it-kit.js';
import { type CniOutcome, TestRouter, weftConf } from './router.js';
import type { Netns, World } from './world.js';

export interface SimHost {
  readonly name: string;
  readonly ns: Netns;
  readonly ip: string;
  /** The switch-side port of the host's underlay link (in the switch netns). */
  readonly swPort: string;
  router: TestRouter;
}

export interface SimCluster {
  readonly sw: Netns;
  readonly hosts: SimHost[];
}

/** Mesh timers for tests: heartbeats every 0.2 s, gossip every 1 s. */
export const FAST_MESH = ['--heartbeat-interval', '0.2', '--gossip-interval', '1'];

export interface ClusterOptions {
  readonly names?: readonly string[];
  readonly ipallocRange?: string;
  /** Extra launch arguments for every host, or per host. */
  readonly extraArgs?: readonly string[] | ((h: { name: string; index: number; ips: string[] }) => readonly string[]);
  /** Underlay MTU (the host links and the switch ports). */
  readonly underlayMtu?: number;
  /** Peers each host names at launch: default, every host names the first one. */
  readonly peersOf?: (index: number, ips: readonly string[]) => readonly string[];
  readonly start?: boolean;
}

/** Builds the underlay and (unless start: false) launches a router on every host. */
export async function buildCluster(world: World, n: number, opts: ClusterOptions = {}): Promise<SimCluster> {
  const sw = await world.netns('sw');
  await world.execOk('ip', ['link', 'add', 'br0', 'type', 'bridge'], { netns: sw.name });
  await world.execOk('ip', ['link', 'set', 'br0', 'up'], { netns: sw.name });
  const mtu = String(opts.underlayMtu ?? 1500);
  const hosts: SimHost[] = [];
  const ips = Array.from({ length: n }, (_, i) => `192.0.2.${i + 1}`);
  for (let i = 0; i < n; i++) {
    const name = opts.names?.[i] ?? `h${i + 1}`;
    const ns = await world.netns(name);
    const swPort = `p${i + 1}`;
    await world.execOk('ip', ['link', 'add', 'eth0', 'mtu', mtu, 'type', 'veth', 'peer', 'name', swPort, 'mtu', mtu, 'netns', sw.name], { netns: ns.name });
    await world.execOk('ip', ['addr', 'add', `${ips[i]}/24`, 'dev', 'eth0'], { netns: ns.name });
    await world.execOk('ip', ['link', 'set', 'eth0', 'up'], { netns: ns.name });
    await world.execOk('ip', ['link', 'set', 'lo', 'up'], { netns: ns.name });
    await world.execOk('ip', ['link', 'set', swPort, 'master', 'br0', 'up'], { netns: sw.name });
    const peers = opts.peersOf ? opts.peersOf(i, ips) : i === 0 ? [] : [ips[0]!];
    const extra = typeof opts.extraArgs === 'function' ? opts.extraArgs({ name, index: i, ips }) : (opts.extraArgs ?? []);
    const router = new TestRouter(world, ns, {
      ipallocRange: opts.ipallocRange ?? '10.40.0.0/16', name,
      extraArgs: ['--advertise-addr', ips[i]!, ...FAST_MESH, ...extra, ...peers],
    });
    hosts.push({ name, ns, ip: ips[i]!, swPort, router });
  }
  if (opts.start !== false) await Promise.all(hosts.map((h) => h.router.start()));
  return { sw, hosts };
}

interface MeshView {
  peers: { peer: string; nickname: string; reachable: boolean; direct: boolean }[];
  connections: { state: string }[];
}

/** Every router reaches every other one (directly or relayed). */
export async function waitMeshConverged(hosts: readonly { readonly name: string; readonly router: TestRouter }[], ms = 15_000): Promise<void> {
  const ok = await waitFor(async () => {
    for (const h of hosts) {
      let m: MeshView;
      try { m = await h.router.api().get<MeshView>('/v1/mesh'); } catch { return false; }
      const reach = new Set(m.peers.filter((p) => p.reachable).map((p) => p.nickname));
      if (!hosts.every((o) => o === h || reach.has(o.name))) return false;
    }
    return true;
  }, ms);
  assert.ok(ok, `mesh did not converge within ${ms} ms:\n${hosts.map((h) => `--- ${h.name}\n${h.router.log.split('\n').slice(-20).join('\n')}`).join('\n')}`);
}

export interface SimContainer {
  readonly ns: Netns;
  readonly id: string;
  readonly ip: string;
  readonly mac: string;
  readonly host: SimHost;
}

/** A container namespace on `host`, attached through the real plugin. */
export async function addContainer(world: World, host: SimHost, tag: string, conf: Record<string, unknown> = weftConf()): Promise<SimContainer> {
  const ns = await world.netns(tag);
  const id = `${tag}-${ns.name}`;
  const out: CniOutcome = await host.router.cni({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0' }, conf);
  assert.equal(out.code, 0, `ADD on ${host.name} failed: ${out.stdout}${out.stderr}`);
  const res = out.json as { ips: { address: string }[]; interfaces: { mac: string; sandbox?: string }[] };
  return { ns, id, host, ip: res.ips[0]!.address.split('/')[0]!, mac: res.interfaces.find((i) => i.sandbox)!.mac };
}

/** Pings until it answers (the overlay may still be converging), true on success. */
export async function pingEventually(from: Netns, ip: string, ms = 10_000, extra: readonly string[] = []): Promise<boolean> {
  return waitFor(async () => (await exec('ping', ['-c', '1', '-W', '1', ...extra, ip], { netns: from.name })).code === 0, ms);
}
