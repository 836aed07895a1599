/**
 * `node dist/bench/api-add.js`: the daemon-side ADD/DEL of `npm run bench`
 * (section 5, direct `POST /v1/cni` calls, no plugin exec) in isolation, for
 * the two ways the router programs veths, in the same run: in-process
 * netlink and the ip(8) fallback (`WEFT_NETLINK=off`). Two routers, each in
 * its own host netns (wt…), containers alternate between them round by
 * round so load drift hits both alike. Every round uses fresh container
 * namespaces, as a runtime does (a netns that had an interface before is
 * cheaper to program: its lo is up already), after a warm-up round that is
 * not counted. "router" is the router's own time per request, from its
 * server-timing header; "API" adds the HTTP round trip. Everything is
 * removed at the end.
 *
 * Environment (all optional):
 *   BENCH_N=100        ADDs (then DELs) per router and round
 *   BENCH_ROUNDS=3     rounds; the report gives the median of the rounds' p50s and each round
 *   BENCH_MODES=netlink,ip
 *   BENCH_DAEMON_NODE_ARGS=  node flags for the routers, replacing ROUTER_NODE_FLAGS (e.g. --cpu-prof --cpu-prof-dir=/tmp/p)
 */
import { ROUTER_NODE_FLAGS } from '../src/cli/commands/launch.js';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { request } from '../src/client/unix-http.js';
import { CNI_ENDPOINT, type CniRequest } from '../src/core/cni/protocol.js';
import { type Netns, World, canCreateNetns } from '../test/helpers/world.js';
import { calibrate, describeCalibration } from './lib/calibrate.js';
import { round, summarize } from './lib/stats.js';
import { cpuOf, envInt, load1, logMs, pool, progress, sleep } from './lib/util.js';

const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WEFT_BIN = join(DIST, 'src/bin/weft.js');
const n = envInt('BENCH_N', 100);
const rounds = envInt('BENCH_ROUNDS', 3);
const modes = (process.env.BENCH_MODES ?? 'netlink,ip').split(',').map((m) => m.trim()).filter((m) => m === 'netlink' || m === 'ip');
const nodeArgs = process.env.BENCH_DAEMON_NODE_ARGS !== undefined ? process.env.BENCH_DAEMON_NODE_ARGS.split(' ').filter((x) => x !== '') : [...ROUTER_NODE_FLAGS];
const world = new World();

interface Router { mode: string; pid: number; socket: string; log: string[]; stop(): Promise<void> }

async function startRouter(mode: string, range: string): Promise<Router> {
  const host = await world.netns(mode === 'ip' ? 'ai' : 'an');
  const dir = world.tempDir('weft-api-bench');
  const socket = join(dir, 'weft.sock');
  // `env` execs node, so the child's pid is the router's (nsenter execs env).
  const child = world.spawnIn(host, 'env', [`WEFT_NETLINK=${mode === 'ip' ? 'off' : 'on'}`, process.execPath, ...nodeArgs, WEFT_BIN, 'launch', '--data-dir', join(dir, 'data'), '--socket', socket, '--name', `api-${mode}`, '--ipalloc-range', range, '--reconcile-interval', '0']);
  const log: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) createInterface({ input: s }).on('line', (l) => log.push(l));
  const until = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`router exited:\n${log.slice(-20).join('\n')}`);
    try {
      const r = await request({ socketPath: socket, method: 'GET', path: '/v1/status', timeoutMs: 1000 });
      const st = r.body as { ready?: boolean; vethProgramming?: { mode: string; reason?: string } } | undefined;
      if (st?.ready) {
        if (st.vethProgramming?.mode !== mode) throw new Error(`router asked for ${mode} programs veths by ${JSON.stringify(st.vethProgramming)}`);
        break;
      }
    } catch (e) {
      if ((e as Error).message.startsWith('router asked')) throw e;
    }
    if (Date.now() > until) throw new Error(`router not ready:\n${log.slice(-20).join('\n')}`);
    await sleep(50);
  }
  return {
    mode, pid: child.pid!, socket, log,
    stop: async () => {
      if (child.exitCode !== null) return;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await Promise.race([done, sleep(10_000)]);
    },
  };
}

function req(command: 'ADD' | 'DEL', cid: string, ns: Netns, socket: string): CniRequest {
  return {
    plugin: 'weft', command,
    env: { containerId: cid, netns: ns.path, ifname: 'eth0', args: `IgnoreUnknown=1;K8S_POD_NAME=${cid}` },
    config: { cniVersion: '1.0.0', name: 'weft', type: 'weft', socket, ipMasq: true },
  };
}

async function call(socket: string, r: CniRequest): Promise<{ ms: number; serverMs: number }> {
  const t0 = performance.now();
  const res = await request({ socketPath: socket, method: 'POST', path: CNI_ENDPOINT, body: r, timeoutMs: 120_000 });
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`${r.command} ${r.env.containerId}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  if (res.serverMs === undefined) throw new Error('the router sent no server-timing header');
  return { ms, serverMs: res.serverMs };
}


async function main(): Promise<void> {
  if (!canCreateNetns()) throw new Error('needs root on Linux (creates network namespaces)');
  const cal = [calibrate()];
  const routers: Router[] = [];
  for (const [i, m] of modes.entries()) routers.push(await startRouter(m, `10.${85 + i}.0.0/16`));
  const fresh = (rt: Router, count: number): Promise<Netns[]> => pool(Array.from({ length: count }), 8, () => world.netns(rt.mode === 'ip' ? 'bi' : 'bn'));
  const res = new Map(routers.map((rt) => [rt.mode, { add: [] as number[], router: [] as number[], del: [] as number[], attach: [] as number[], cpuAdd: [] as number[], cpuDel: [] as number[], roundAdd: [] as number[] }]));
  const loads: number[] = [load1()];
  // A warm-up round, not counted: JIT, the bridge, the NAT table, the database's first pages.
  for (const rt of routers) {
    const nss = await fresh(rt, Math.min(n, 30));
    for (const [i, ns] of nss.entries()) await call(rt.socket, req('ADD', `warm${i}`, ns, rt.socket));
    for (const [i, ns] of nss.entries()) await call(rt.socket, req('DEL', `warm${i}`, ns, rt.socket));
    for (const ns of nss) await world.deleteNetns(ns);
  }
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? routers : [...routers].reverse();
    for (const rt of order) {
      const out = res.get(rt.mode)!;
      const nss = await fresh(rt, n);
      const cpu = (): number => { const c = cpuOf(rt.pid); return c.selfMs + c.childrenMs; };
      const from = rt.log.length;
      const c0 = cpu();
      const adds: number[] = [];
      const routerSide: number[] = [];
      for (let i = 0; i < n; i++) {
        const a = await call(rt.socket, req('ADD', `r${r}c${i}`, nss[i]!, rt.socket));
        adds.push(a.ms);
        routerSide.push(a.serverMs);
      }
      await sleep(100);
      const c1 = cpu();
      for (let i = 0; i < n; i++) out.del.push((await call(rt.socket, req('DEL', `r${r}c${i}`, nss[i]!, rt.socket))).ms);
      await sleep(100);
      const c2 = cpu();
      for (const ns of nss) await world.deleteNetns(ns);
      out.add.push(...adds);
      out.router.push(...routerSide);
      out.roundAdd.push(round(summarize(routerSide).p50));
      out.attach.push(...logMs(rt.log, 'veth attached', from));
      out.cpuAdd.push((c1 - c0) / n);
      out.cpuDel.push((c2 - c1) / n);
      progress(`round ${r + 1}/${rounds} ${rt.mode}: ADD p50 ${round(summarize(routerSide).p50)} ms in the router, ${round(summarize(adds).p50)} ms API (load ${load1()})`);
      loads.push(load1());
    }
  }
  cal.push(calibrate());
  const lines = [`daemon-side API, ${n} ADDs then ${n} DELs per router and round (fresh container netns each round), ${rounds} rounds after a warm-up; load average ${Math.min(...loads)}-${Math.max(...loads)}`];
  lines.push(`before: ${describeCalibration(cal[0]!)}; after: ${describeCalibration(cal[1]!)}`);
  lines.push('mode      router ADD p50  p90     API ADD p50  p90     router p50 per round   veth attach p50  DEL p50  CPU/ADD  CPU/DEL (ms)');
  for (const rt of routers) {
    const o = res.get(rt.mode)!;
    const rs = summarize(o.router);
    const a = summarize(o.add);
    const d = summarize(o.del);
    const avg = (x: number[]): number => round(x.reduce((s, v) => s + v, 0) / Math.max(1, x.length), 1);
    lines.push([rt.mode.padEnd(8), String(round(rs.p50)).padStart(14), String(round(rs.p90)).padStart(7), String(round(a.p50)).padStart(12), String(round(a.p90)).padStart(7), `  ${o.roundAdd.join(' / ')}`.padEnd(24), String(round(summarize(o.attach).p50)).padStart(16), String(round(d.p50)).padStart(8), String(avg(o.cpuAdd)).padStart(8), String(avg(o.cpuDel)).padStart(8)].join(' '));
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  for (const rt of routers) await rt.stop();
}

let exiting = false;
async function finish(code: number): Promise<void> {
  if (exiting) return;
  exiting = true;
  try { await world.cleanup(); } catch (e) { process.stderr.write(`cleanup: ${(e as Error).message}\n`); }
  process.exit(code);
}
process.on('SIGINT', () => void finish(130));
process.on('SIGTERM', () => void finish(143));
main().then(() => finish(0), (e: unknown) => { process.stderr.write(`${(e as Error).stack ?? String(e)}\n`); void finish(1); });
