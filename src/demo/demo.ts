/**
 * `weft demo`: a world of network namespaces — one simulated host running
 * the weft router and three "containers" attached through the real CNI
 * plugin — left running to explore until `weft demo --down`. It touches
 * nothing outside the namespaces it creates (all named wt…).
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

interface DemoState {
  readonly suffix: string;
  readonly host: string;
  readonly containers: string[];
  readonly dataDir: string;
  readonly socket: string;
  pid?: number;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

function inNs(ns: string, cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function cni(state: DemoState, command: string, ns: string, name: string): unknown {
  const conf = JSON.stringify({ cniVersion: '1.1.0', name: 'weft', type: 'weft', socket: state.socket, ipMasq: false });
  const r = spawnSync(process.execPath, [bundlePath()], {
    input: conf, encoding: 'utf8',
    env: { PATH: process.env.PATH, WEFT_PLUGIN_KIND: 'weft', CNI_COMMAND: command, CNI_CONTAINERID: `demo-${ns}`, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAME=${name}` },
  });
  if (r.status !== 0) throw new Error(`CNI ${command} for ${name} failed: ${r.stdout}${r.stderr}`);
  return r.stdout ? JSON.parse(r.stdout) : undefined;
}

/**
 * The test suite's leftover sweep deletes `wt*` namespaces whose owner died;
 * recording the demo's router as their owner keeps a running demo safe from it.
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

async function waitReady(socket: string): Promise<void> {
  const api = new ApiClient(socket, 1000);
  for (let i = 0; i < 150; i++) {
    try { if ((await api.get<{ ready: boolean }>('/v1/status')).ready) return; } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the demo router did not become ready in 15 s');
}

export async function runDemo(io: Io): Promise<void> {
  if (existsSync(STATE)) throw new Error(`a demo is already running (${STATE}); remove it with \`weft demo --down\``);
  if (!existsSync(bundlePath())) throw new Error('the plugin bundle is missing: run `npm run build` first');
  const suffix = randomBytes(3).toString('hex');
  const state: DemoState = { suffix, host: `wt${suffix}h`, containers: ['a', 'b', 'c'].map((c) => `wt${suffix}${c}`), dataDir: `${STATE_DIR}/data`, socket: `${STATE_DIR}/weft.sock` };
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(STATE, JSON.stringify(state));
  try {
    io.out(`[1/4] creating host namespace ${state.host} and container namespaces ${state.containers.join(', ')}`);
    for (const ns of [state.host, ...state.containers]) ip(['netns', 'add', ns]);
    ip(['-n', state.host, 'link', 'set', 'lo', 'up']);
    io.out(`[2/4] launching the weft router inside ${state.host}`);
    const log = openSync(`${STATE_DIR}/weft.log`, 'a');
    const weftBin = new URL('../bin/weft.js', import.meta.url).pathname;
    const child = spawn('nsenter', [`--net=/run/netns/${state.host}`, process.execPath, ...ROUTER_NODE_FLAGS, weftBin, 'launch', '--data-dir', state.dataDir, '--socket', state.socket, '--name', 'demo-host'], { detached: true, stdio: ['ignore', log, log] });
    child.unref();
    state.pid = child.pid;
    writeFileSync(STATE, JSON.stringify(state));
    await waitReady(state.socket);
    markOwned([state.host, ...state.containers], child.pid!);
    io.out('[3/4] attaching the containers through the weft CNI plugin');
    const ips: string[] = [];
    for (const [i, ns] of state.containers.entries()) {
      const res = cni(state, 'ADD', ns, `demo-${'abc'[i]}`) as { ips: { address: string }[] };
      const addr = res.ips[0]!.address;
      ips.push(addr.split('/')[0]!);
      io.out(`      ${ns}: eth0 ${addr}`);
    }
    io.out('[4/4] checking reachability between containers');
    for (const [i, ns] of state.containers.entries()) {
      const peer = ips[(i + 1) % ips.length]!;
      const r = inNs(ns, 'ping', ['-c', '1', '-W', '2', peer]);
      io.out(`      ${ns} -> ${peer}: ${r.ok ? 'reachable' : 'UNREACHABLE'}`);
      if (!r.ok) throw new Error(`ping from ${ns} to ${peer} failed:\n${r.out}`);
    }
    io.out('');
    io.out('The demo is running. Explore it:');
    const w = weftCommand();
    io.out(`  ${w} status --socket ${state.socket}`);
    io.out(`  ${w} ps --socket ${state.socket}`);
    io.out(`  ${w} ip list --socket ${state.socket} -o json`);
    io.out(`  nsenter --net=/run/netns/${state.containers[0]} ping -c 3 ${ips[1]}`);
    io.out(`Remove it with: ${w} demo --down`);
  } catch (e) {
    io.err(`demo failed: ${(e as Error).message}; cleaning up`);
    await downDemo(io);
    throw e;
  }
}

export async function downDemo(io: Io): Promise<void> {
  if (!existsSync(STATE)) { io.out('no demo is running'); return; }
  const state = JSON.parse(readFileSync(STATE, 'utf8')) as DemoState;
  for (const ns of state.containers) {
    try { cni(state, 'DEL', ns, ns); } catch { /* router may be gone; namespaces go below */ }
  }
  if (state.pid) {
    try { process.kill(state.pid, 'SIGTERM'); } catch { /* already gone */ }
    for (let i = 0; i < 50; i++) {
      try { process.kill(state.pid, 0); } catch { break; }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  for (const ns of [...state.containers, state.host]) {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(`${OWNER_DIR}/${ns}`, { force: true });
  }
  rmSync(STATE_DIR, { recursive: true, force: true });
  io.out('demo removed');
}
