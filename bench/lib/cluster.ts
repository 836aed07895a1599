/**
 * Topologies for the across-hosts benchmarks (bench/overlay.ts,
 * bench/overlay-connect.ts). Everything lives in namespaces of a World
 * (named wt…, deleted by world.cleanup()); nothing touches the root netns.
 *
 *  - underlay: a "switch" netns with bridge br0 and N "host" namespaces,
 *    each with eth0 (192.0.2.i/24) plugged into the switch, as in
 *    test/helpers/cluster.ts;
 *  - weft: a real `weft launch` per host (TestRouter) and containers
 *    attached through the real CNI plugin with the configuration
 *    `weft install-cni` writes;
 *  - hand-built: the research's T3 recipe (bridge per host, vxlan
 *    nolearning proxy, static FDB + neighbour entries, container MTU 1450,
 *    bridge-nf-call-* off in the hosts);
 *  - veth: two namespaces joined by one veth pair (the limit).
 */
import { exec, execOk } from '../../test/helpers/exec.js';
import { TestRouter } from '../../test/helpers/router.js';
import { waitMeshConverged as waitConverged } from '../../test/helpers/cluster.js';
import type { Netns, World } from '../../test/helpers/world.js';
import { renderConflist } from '../../src/cli/conflist.js';
import { containerMtuFor } from '../../src/core/dataplane/overlay-plan.js';

export const UNDERLAY_NET = '192.0.2';

/** A client/server pair to measure between. */
export interface Path {
  readonly client: Netns;
  readonly server: Netns;
  readonly serverIp: string;
  readonly clientIp: string;
}

export interface BenchHost {
  readonly ns: Netns;
  readonly ip: string;
  /** The host's port on the switch (in the switch netns). */
  readonly swPort: string;
}

export interface Underlay {
  readonly sw: Netns;
  readonly hosts: BenchHost[];
}

const ip = (ns: Netns, args: readonly string[]): Promise<string> => execOk('ip', ['-n', ns.name, ...args]);

/** Sets sysctls inside a namespace (net.* are per netns); returns false when one is missing (e.g. br_netfilter not loaded). */
export async function sysctlIn(ns: Netns, settings: Record<string, string>): Promise<boolean> {
  const r = await exec('sysctl', ['-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)], { netns: ns.name });
  return r.code === 0;
}

/** A sysctl's value inside a namespace, or undefined when it does not exist. */
export async function sysctlGet(ns: Netns, key: string): Promise<string | undefined> {
  const r = await exec('sysctl', ['-n', key], { netns: ns.name });
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** A host without br_netfilter's IP hooks on bridged frames (as if the module were not loaded: Debian's default without Docker or Kubernetes). */
export const BRNF_OFF = { 'net.bridge.bridge-nf-call-iptables': '0', 'net.bridge.bridge-nf-call-ip6tables': '0', 'net.bridge.bridge-nf-call-arptables': '0' };

/** Switch netns with br0 (a plain L2 switch: bridge-nf-call-* off) and `n` hosts plugged into it. */
export async function buildUnderlay(world: World, tag: string, n: number, mtu = 1500): Promise<Underlay> {
  const sw = await world.netns(`${tag}s`);
  await ip(sw, ['link', 'add', 'br0', 'type', 'bridge']);
  await ip(sw, ['link', 'set', 'br0', 'up']);
  await sysctlIn(sw, BRNF_OFF);
  const hosts: BenchHost[] = [];
  for (let i = 0; i < n; i++) {
    const ns = await world.netns(`${tag}h`);
    const swPort = `p${i + 1}`;
    const addr = `${UNDERLAY_NET}.${i + 1}`;
    await ip(ns, ['link', 'add', 'eth0', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', swPort, 'mtu', String(mtu), 'netns', sw.name]);
    await ip(ns, ['addr', 'add', `${addr}/24`, 'dev', 'eth0']);
    await ip(ns, ['link', 'set', 'eth0', 'up']);
    await ip(sw, ['link', 'set', swPort, 'master', 'br0', 'up']);
    hosts.push({ ns, ip: addr, swPort });
  }
  return { sw, hosts };
}

// ---------------------------------------------------------------- (c) veth pair

export async function buildVethPair(world: World, tag: string): Promise<Path> {
  const a = await world.netns(`${tag}a`);
  const b = await world.netns(`${tag}b`);
  await ip(a, ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b.name]);
  await ip(a, ['addr', 'add', '10.83.0.1/24', 'dev', 'eth0']);
  await ip(b, ['addr', 'add', '10.83.0.2/24', 'dev', 'eth0']);
  await ip(a, ['link', 'set', 'eth0', 'up']);
  await ip(b, ['link', 'set', 'eth0', 'up']);
  return { client: a, server: b, clientIp: '10.83.0.1', serverIp: '10.83.0.2' };
}

// ---------------------------------------------------------------- (b) hand-built kernel VXLAN (research T3)

export const HAND_SUBNET = '10.81.0.0/16';

/**
 * The research's T3 recipe on an underlay of two hosts: per host a bridge
 * `hbr0` (MTU 1450) with `hvx` (vxlan id 42, dstport 4789, nolearning proxy)
 * as a port, bridge-nf-call-* off; one container per host (eth0 MTU 1450,
 * 10.81.i.2/16, fixed MAC); static neighbour + FDB (self and master)
 * entries for the remote container. `brNetfilter` leaves bridge-nf-call-*
 * at the kernel's default (on where br_netfilter is loaded: the research's T4a).
 */
export async function buildHandVxlan(world: World, u: Underlay, tag: string, opts: { brNetfilter?: boolean } = {}): Promise<Path> {
  const mtu = containerMtuFor(1500);
  const cs: { ns: Netns; ip: string; mac: string }[] = [];
  for (const [k, h] of u.hosts.entries()) {
    const i = k + 1;
    await ip(h.ns, ['link', 'add', 'hbr0', 'mtu', String(mtu), 'type', 'bridge']);
    await ip(h.ns, ['link', 'set', 'hbr0', 'up']);
    if (!opts.brNetfilter) await sysctlIn(h.ns, BRNF_OFF);
    await ip(h.ns, ['link', 'add', 'hvx', 'mtu', String(mtu), 'type', 'vxlan', 'id', '42', 'local', h.ip, 'dev', 'eth0', 'dstport', '4789', 'nolearning', 'proxy']);
    await ip(h.ns, ['link', 'set', 'hvx', 'master', 'hbr0', 'up']);
    const c = await world.netns(`${tag}c`);
    const mac = `02:00:0a:51:0${i}:02`;
    const addr = `10.81.${i}.2`;
    await ip(h.ns, ['link', 'add', 'hv0', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', c.name]);
    await ip(h.ns, ['link', 'set', 'hv0', 'master', 'hbr0', 'up']);
    await ip(c, ['link', 'set', 'eth0', 'address', mac, 'up']);
    await ip(c, ['addr', 'add', `${addr}/16`, 'dev', 'eth0']);
    cs.push({ ns: c, ip: addr, mac });
  }
  for (const [k, h] of u.hosts.entries()) {
    const remote = cs[1 - k]!;
    const remoteHost = u.hosts[1 - k]!;
    await ip(h.ns, ['neigh', 'add', remote.ip, 'lladdr', remote.mac, 'dev', 'hvx', 'nud', 'permanent']);
    await execOk('bridge', ['-n', h.ns.name, 'fdb', 'add', remote.mac, 'dev', 'hvx', 'dst', remoteHost.ip, 'self', 'permanent']);
    await execOk('bridge', ['-n', h.ns.name, 'fdb', 'add', remote.mac, 'dev', 'hvx', 'master', 'static']);
  }
  return { client: cs[0]!.ns, server: cs[1]!.ns, clientIp: cs[0]!.ip, serverIp: cs[1]!.ip };
}

// ---------------------------------------------------------------- (a) weft

export const WEFT_RANGE = '10.82.0.0/16';

export interface WeftHost extends BenchHost {
  readonly name: string;
  readonly router: TestRouter;
}

export interface WeftContainer {
  readonly ns: Netns;
  readonly id: string;
  readonly ip: string;
  readonly host: WeftHost;
}

/**
 * A TestRouter per host (nicknames h1, h2, …): `weft launch --advertise-addr
 * IP --ipalloc-init seed=SEEDS [PEERS]` (SEEDS: every host unless given),
 * with the default mesh timers unless `extraArgs` says otherwise. Not started.
 */
export function weftRouters(world: World, u: Underlay, opts: { peersOf?: (i: number) => readonly string[]; extraArgs?: readonly string[]; seeds?: readonly string[] } = {}): WeftHost[] {
  const names = u.hosts.map((_, i) => `h${i + 1}`);
  const seeds = opts.seeds ?? names;
  return u.hosts.map((h, i) => ({
    ...h,
    name: names[i]!,
    router: new TestRouter(world, h.ns, {
      ipallocRange: WEFT_RANGE, name: names[i]!,
      extraArgs: ['--advertise-addr', h.ip, '--ipalloc-init', `seed=${seeds.join(',')}`, ...(opts.extraArgs ?? []), ...(opts.peersOf?.(i) ?? [])],
    }),
  }));
}

/** Every router reaches every other one (the test suite's check, with a longer default wait for a loaded machine). */
export function waitMeshConverged(hosts: readonly WeftHost[], ms = 30_000): Promise<void> {
  return waitConverged(hosts, ms);
}

/** The plugin entry of the conflist `weft install-cni` writes (ipMasq on by default), as a runtime hands it to the plugin. */
export function installedPluginConf(socket: string, ipMasq = true): Record<string, unknown> {
  const list = renderConflist({ network: 'weft', subnets: [], socket, ipMasq, ports: 'builtin' }) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
  return { cniVersion: list.cniVersion, name: list.name, ...list.plugins[0]! };
}

/** A container netns on `host` (new, or `ns`), attached by the real plugin (ADD) with the installed configuration. */
export async function addWeftContainer(world: World, host: WeftHost, tag: string, ipMasq = true, given?: Netns): Promise<WeftContainer> {
  const ns = given ?? await world.netns(tag);
  const id = `bench-${ns.name}`;
  const out = await host.router.cni({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', args: `IgnoreUnknown=1;K8S_POD_NAME=${id}` }, installedPluginConf(host.router.socket, ipMasq));
  if (out.code !== 0) throw new Error(`weft ADD on ${host.name} failed (exit ${out.code}): ${out.stdout}${out.stderr}`);
  const res = out.json as { ips: { address: string }[] };
  return { ns, id, host, ip: res.ips[0]!.address.split('/')[0]! };
}

/** What differs between the hosts of two topologies: br_netfilter and nftables tables in the host netns. */
export async function hostDiagnostics(h: Netns): Promise<{ brNfCallIptables: string; nftTables: string[]; vxlan: string }> {
  const tables = await exec('nft', ['list', 'tables'], { netns: h.name });
  const vx = await exec('ip', ['-d', '-o', 'link', 'show', 'type', 'vxlan'], { netns: h.name });
  return {
    brNfCallIptables: (await sysctlGet(h, 'net.bridge.bridge-nf-call-iptables')) ?? 'n/a',
    nftTables: tables.code === 0 ? tables.stdout.split('\n').map((l) => l.replace(/^table /, '').trim()).filter(Boolean) : [],
    vxlan: vx.stdout.split('\n').filter(Boolean).map((l) => {
      const name = /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '?';
      const mtu = /mtu (\d+)/.exec(l)?.[1] ?? '?';
      const id = /vxlan id (\d+)/.exec(l)?.[1] ?? '?';
      const flags = ['nolearning', 'proxy', 'l2miss', 'l3miss'].filter((f) => new RegExp(`\\b${f}\\b`).test(l));
      return `${name} id ${id} mtu ${mtu} ${flags.join(' ')}`.trim();
    }).join('; '),
  };
}
