/**
 * `weft demo`: a throw-away world of network namespaces — three simulated
 * hosts on an underlay switch, each running the weft router, and two
 * "containers" per host attached through the real CNI plugin — that shows
 * the routers meshing and containers reaching each other across hosts, then
 * stays up to explore until `weft demo --down`. It touches nothing outside
 * the namespaces it creates (all named wt…); the underlay is 192.0.2.0/24.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, openSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ApiClient } from '../client/api-client.js';
import type { Io } from '../cli/output.js';
import { bundlePath } from '../cli/commands/install-cni.js';
import { ROUTER_NODE_FLAGS } from '../cli/commands/launch.js';

/** Where the running demo keeps its state; WEFT_DEMO_DIR moves it (the tests do). */
const STATE_DIR = process.env.WEFT_DEMO_DIR ?? '/run/weft-demo';
const STATE = `${STATE_DIR}/state.json`;
const HOSTS = ['host1', 'host2', 'host3'] as const;
const PER_HOST = 2;
const RANGE = '10.32.0.0/16';

interface DemoHost {
  readonly name: string;
  readonly ns: string;
  readonly underlay: string;
  readonly dataDir: string;
  readonly socket: string;
  pid?: number;
}

interface DemoContainer {
  readonly ns: string;
  readonly name: string;
  readonly host: string;
  ip?: string;
}

interface DemoState {
  readonly suffix: string;
  readonly switchNs: string;
  readonly hosts: DemoHost[];
  readonly containers: DemoContainer[];
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

function inNs(ns: string, cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function cni(host: DemoHost, command: string, c: DemoContainer): unknown {
  const conf = JSON.stringify({ cniVersion: '1.1.0', name: 'weft', type: 'weft', socket: host.socket, ipMasq: false });
  const r = spawnSync(process.execPath, [bundlePath()], {
    input: conf, encoding: 'utf8',
    env: { PATH: process.env.PATH, WEFT_PLUGIN_KIND: 'weft', CNI_COMMAND: command, CNI_CONTAINERID: `${c.name}-${c.ns}`, CNI_NETNS: `/run/netns/${c.ns}`, CNI_IFNAME: 'eth0', CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAME=${c.name}` },
  });
  if (r.status !== 0) throw new Error(`CNI ${command} for ${c.name} failed: ${r.stdout}${r.stderr}`);
  return r.stdout ? JSON.parse(r.stdout) : undefined;
}

/**
 * The test suite's leftover sweep deletes `wt*` namespaces whose owner died;
 * recording the demo's routers as their owners keeps a running demo safe from it.
 */
const OWNER_DIR = '/run/weft-test-owners';
function markOwned(names: readonly string[], pid: number): void {
  let start: string | undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch { /* gone already: the sweep may take them, as it should */ }
  mkdirSync(OWNER_DIR, { recursive: true });
  for (const n of names) writeFileSync(`${OWNER_DIR}/${n}`, JSON.stringify({ pid, start }));
}

/** `weft` when it is on PATH (npm link), else the path of this build's executable. */
function weftCommand(): string {
  const onPath = spawnSync('sh', ['-c', 'command -v weft'], { encoding: 'utf8' });
  return onPath.status === 0 && onPath.stdout.trim() ? 'weft' : new URL('../bin/weft.js', import.meta.url).pathname;
}

async function poll<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try { const v = await f(); if (v !== undefined) return v; } catch { /* not yet */ }
    if (Date.now() > until) throw new Error(`${what} did not happen within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function save(state: DemoState): void {
  writeFileSync(STATE, JSON.stringify(state));
}

export async function runDemo(io: Io): Promise<void> {
  if (existsSync(STATE)) throw new Error(`a demo is already running (${STATE}); remove it with \`weft demo --down\``);
  if (!existsSync(bundlePath())) throw new Error('the plugin bundle is missing: run `npm run build` first');
  const suffix = randomBytes(3).toString('hex');
  const state: DemoState = {
    suffix,
    switchNs: `wt${suffix}sw`,
    hosts: HOSTS.map((name, i) => ({ name, ns: `wt${suffix}h${i + 1}`, underlay: `192.0.2.${i + 1}`, dataDir: `${STATE_DIR}/${name}/data`, socket: `${STATE_DIR}/${name}/weft.sock` })),
    containers: HOSTS.flatMap((h, i) => Array.from({ length: PER_HOST }, (_, j) => ({ ns: `wt${suffix}c${i + 1}${'ab'[j]}`, name: `${h}-${'ab'[j]}`, host: h }))),
  };
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  save(state);
  try {
    io.out(`[1/5] creating the underlay switch ${state.switchNs} and hosts ${state.hosts.map((h) => `${h.ns} (${h.underlay})`).join(', ')}`);
    ip(['netns', 'add', state.switchNs]);
    ip(['-n', state.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', state.switchNs, 'link', 'set', 'br0', 'up']);
    for (const [i, h] of state.hosts.entries()) {
      ip(['netns', 'add', h.ns]);
      ip(['-n', h.ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', h.ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i + 1}`, 'netns', state.switchNs]);
      ip(['-n', h.ns, 'addr', 'add', `${h.underlay}/24`, 'dev', 'eth0']);
      ip(['-n', h.ns, 'link', 'set', 'eth0', 'up']);
      ip(['-n', state.switchNs, 'link', 'set', `p${i + 1}`, 'master', 'br0', 'up']);
    }
    for (const c of state.containers) ip(['netns', 'add', c.ns]);

    io.out('[2/5] launching a weft router on each host (each names host1 as its peer; the rest is discovered)');
    const weftBin = new URL('../bin/weft.js', import.meta.url).pathname;
    const seed = `seed=${HOSTS.join(',')}`;
    for (const [i, h] of state.hosts.entries()) {
      mkdirSync(`${STATE_DIR}/${h.name}`, { recursive: true, mode: 0o700 });
      const log = openSync(`${STATE_DIR}/${h.name}/weft.log`, 'a');
      const peers = i === 0 ? [] : [state.hosts[0]!.underlay];
      const child = spawn('nsenter', [`--net=/run/netns/${h.ns}`, process.execPath, ...ROUTER_NODE_FLAGS, weftBin, 'launch', '--data-dir', h.dataDir, '--socket', h.socket,
        '--name', h.name, '--ipalloc-range', RANGE, '--ipalloc-init', seed, '--advertise-addr', h.underlay, '--heartbeat-interval', '2', '--gossip-interval', '5', ...peers], { detached: true, stdio: ['ignore', log, log] });
      child.unref();
      h.pid = child.pid;
      save(state);
    }
    for (const h of state.hosts) {
      await poll(`router ${h.name} ready`, 20_000, async () => ((await new ApiClient(h.socket, 1000).get<{ ready: boolean }>('/v1/status')).ready ? true : undefined));
      markOwned([h.ns, ...state.containers.filter((c) => c.host === h.name).map((c) => c.ns), ...(h === state.hosts[0] ? [state.switchNs] : [])], h.pid!);
    }
    io.out('[3/5] waiting for the mesh: every router reaches the other two');
    const t0 = Date.now();
    for (const h of state.hosts) {
      await poll(`${h.name} to reach its peers`, 30_000, async () => {
        const m = await new ApiClient(h.socket, 1000).get<{ peers: { reachable: boolean }[] }>('/v1/mesh');
        return m.peers.filter((p) => p.reachable).length === HOSTS.length - 1 ? true : undefined;
      });
    }
    io.out(`      meshed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    io.out('[4/5] attaching two containers per host through the weft CNI plugin');
    for (const c of state.containers) {
      const h = state.hosts.find((x) => x.name === c.host)!;
      const res = cni(h, 'ADD', c) as { ips: { address: string }[] };
      c.ip = res.ips[0]!.address.split('/')[0]!;
      save(state);
      io.out(`      ${c.name.padEnd(8)} on ${h.name}: eth0 ${res.ips[0]!.address}  (netns ${c.ns})`);
    }

    io.out('[5/5] checking reachability across hosts (each container pings one on every other host)');
    let failed = 0;
    for (const c of state.containers.filter((x) => x.name.endsWith('-a'))) {
      for (const d of state.containers.filter((x) => x.host !== c.host && x.name.endsWith('-b'))) {
        const t = Date.now();
        const ok = await poll(`${c.name} -> ${d.name}`, 15_000, async () => (inNs(c.ns, 'ping', ['-c', '1', '-W', '1', d.ip!]).ok ? true : undefined)).catch(() => false);
        io.out(`      ${c.name} -> ${d.name} (${d.ip}): ${ok ? `reachable (${Date.now() - t} ms until the first reply)` : 'UNREACHABLE'}`);
        if (!ok) failed++;
      }
    }
    if (failed) throw new Error(`${failed} cross-host pings failed; see ${STATE_DIR}/*/weft.log`);
    io.out('');
    io.out('The demo is running. Explore it:');
    const w = weftCommand();
    const s1 = state.hosts[0]!.socket;
    io.out(`  ${w} status --socket ${s1}`);
    io.out(`  ${w} status peers --socket ${s1}`);
    io.out(`  ${w} status connections --socket ${s1}`);
    io.out(`  ${w} status ipam --socket ${s1}`);
    io.out(`  ${w} ps --cluster --socket ${s1}`);
    const a = state.containers[0]!;
    const far = state.containers[state.containers.length - 1]!;
    io.out(`  nsenter --net=/run/netns/${a.ns} ping -c 3 ${far.ip}     # ${a.name} -> ${far.name}, across hosts`);
    io.out(`  nsenter --net=/run/netns/${state.hosts[0]!.ns} bridge fdb show dev weft-vx   # the overlay's static entries (see docs/overlay.md)`);
    io.out(`Remove it with: ${w} demo --down`);
  } catch (e) {
    io.err(`demo failed: ${(e as Error).message}; cleaning up`);
    await downDemo(io);
    throw e;
  }
}

async function stopPid(pid: number | undefined): Promise<void> {
  if (!pid) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  for (let i = 0; i < 50; i++) {
    try { process.kill(pid, 0); } catch { return; }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function downDemo(io: Io): Promise<void> {
  if (!existsSync(STATE)) { io.out('no demo is running'); return; }
  const state = JSON.parse(readFileSync(STATE, 'utf8')) as DemoState;
  for (const c of state.containers) {
    const h = state.hosts.find((x) => x.name === c.host);
    try { if (h) cni(h, 'DEL', c); } catch { /* router may be gone; namespaces go below */ }
  }
  await Promise.all(state.hosts.map((h) => stopPid(h.pid)));
  for (const ns of [...state.containers.map((c) => c.ns), ...state.hosts.map((h) => h.ns), state.switchNs]) {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(`${OWNER_DIR}/${ns}`, { force: true });
  }
  rmSync(STATE_DIR, { recursive: true, force: true });
  io.out('demo removed');
}
