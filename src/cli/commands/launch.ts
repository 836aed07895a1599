import type { CAC } from 'cac';
import { spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { hostname } from 'node:os';
import { ApiClient } from '../../client/api-client.js';
import { DEFAULT_SOCKET } from '../../core/cni/protocol.js';
import { tryParseCidr } from '../../core/ip/cidr.js';
import { tryParseIp } from '../../core/ip/addr.js';
import { DEFAULT_MESH_PORT, normalizePeerAddress } from '../../core/mesh/address.js';
import type { MeshOptions } from '../../daemon/mesh-service.js';
import { parseIpallocInit } from '../../core/ring/init.js';
import { type Ctx, optInt, optString } from '../context.js';
import { UsageError } from '../output.js';

export const DEFAULT_DATA_DIR = '/var/lib/weft';
export const DEFAULT_RANGE = '10.32.0.0/12';
/**
 * Node flags for the router process. V8's default young generation (16 MiB
 * semi-spaces) is mostly slack for a daemon whose garbage is small and
 * short-lived; 1 MiB keeps RSS ~20 MB lower at 1000 containers.
 * `--optimize-for-size` makes V8 grow the old generation less eagerly:
 * another ~14 MiB less with 1000 containers (95.6 -> 81.5 MiB), with no
 * measurable change in router CPU per ADD (docs/benchmarks.md). V8 reads
 * them only at start, so whoever starts `weft launch` passes them (the
 * `weft` executable's shebang does).
 */
export const ROUTER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--optimize-for-size'];

/** A duration flag in seconds (fractions allowed, so tests can run the mesh fast), as milliseconds. */
function seconds(v: unknown, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0.05 || n > 86_400) throw new UsageError(`${flag} needs seconds between 0.05 and 86400, got "${String(v)}"`);
  return Math.round(n * 1000);
}

async function waitReady(socket: string, ms: number): Promise<boolean> {
  const api = new ApiClient(socket, 1000);
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try { if ((await api.get<{ ready: boolean }>('/v1/status')).ready) return true; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

export function registerLaunch(cli: CAC, ctx: Ctx): void {
  cli.command('launch [...peers]', 'Run the weft router on this host (foreground; systemd-friendly); PEER: IP[:PORT] of other routers to connect to')
    .option('--data-dir <dir>', 'state directory (database, lock)', { default: DEFAULT_DATA_DIR })
    .option('--socket <path>', 'API socket, mode 0600', { default: DEFAULT_SOCKET })
    .option('--name <name>', 'this router\'s nickname (default: host name)')
    .option('--ipalloc-range <cidr>', 'prefix of the default subnet', { default: DEFAULT_RANGE })
    .option('--mtu <n>', 'container MTU (default: the underlay interface\'s MTU minus 50 for VXLAN, 70 on an IPv6 underlay; 1450 without one)')
    .option('--port <n>', 'TCP port for connections from other routers', { default: DEFAULT_MESH_PORT })
    .option('--advertise-addr <ip>', 'this host\'s address on the network between hosts (VXLAN endpoint; default: first global address)')
    .option('--ipalloc-init <mode>', 'how the cluster first splits --ipalloc-range: seed=NAME,NAME,... (deterministic), consensus[=N] (quorum of N; default N = 1 + number of PEERs), observer (owns nothing until it asks)')
    .option('--lease-timeout <seconds>', 'a peer silent this long loses its address space to the others (automatic rmpeer)', { default: 300 })
    .option('--no-discovery', 'only connect to the peers named, not to peers learnt from them')
    .option('--resume', 'also reconnect to the peers remembered from the last run (launch arguments and `weft connect`)')
    .option('--heartbeat-interval <seconds>', 'send to each peer at least this often; a peer silent for twice as long is dead', { default: 30 })
    .option('--gossip-interval <seconds>', 'period of full-state anti-entropy with a few neighbours', { default: 30 })
    .option('--no-conntrack-bypass', 'let conntrack also track container-to-container traffic inside a subnet and the VXLAN packets between hosts (weft exempts them by default: ~20% of overlay throughput; see docs/operations.md)')
    .option('--reconcile-interval <seconds>', 'how often kernel state is checked against the store (0: only at start)', { default: 60 })
    .option('--metrics-addr <host:port>', 'also serve Prometheus /metrics over TCP here, e.g. 127.0.0.1:6782')
    .option('--log-level <level>', 'debug, info, warn or error', { default: 'info' })
    .option('--detach', 'start in the background, wait until ready, print the PID')
    .example('weft launch --data-dir /var/lib/weft --socket /run/weft/weft.sock')
    .example('weft launch --name host2 --advertise-addr 192.0.2.2 192.0.2.1')
    .action(async (peers: string[], opts: Record<string, unknown>) => {
      const dataDir = String(opts.dataDir);
      const socket = String(opts.socket);
      const range = String(opts.ipallocRange);
      if (!tryParseCidr(range, true)) throw new UsageError(`--ipalloc-range "${range}" is not a prefix like 10.32.0.0/12`);
      const mtu = optInt(opts.mtu, '--mtu');
      if (mtu !== undefined && (mtu < 576 || mtu > 65535)) throw new UsageError('--mtu must be between 576 and 65535');
      const level = String(opts.logLevel);
      if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError('--log-level must be debug, info, warn or error');
      const interval = optInt(opts.reconcileInterval, '--reconcile-interval')!;
      const port = optInt(opts.port, '--port')!;
      if (port < 1 || port > 65535) throw new UsageError('--port must be between 1 and 65535');
      const advertise = optString(opts.advertiseAddr);
      if (advertise !== undefined && !tryParseIp(advertise)) throw new UsageError(`--advertise-addr "${advertise}" is not an IP address`);
      for (const p of peers) if (!normalizePeerAddress(p)) throw new UsageError(`peer "${p}" is not an address (IP or IP:PORT)`);
      const heartbeatMs = seconds(opts.heartbeatInterval, '--heartbeat-interval');
      const ipallocInit = optString(opts.ipallocInit);
      try { parseIpallocInit(ipallocInit, peers.length); } catch (e) { throw new UsageError((e as Error).message); }
      const leaseMs = seconds(opts.leaseTimeout, '--lease-timeout');
      const gossipMs = seconds(opts.gossipInterval, '--gossip-interval');
      const mesh: MeshOptions = {
        port, peers, ...(ipallocInit !== undefined ? { ipallocInit } : {}), leaseTimeoutMs: leaseMs, resume: opts.resume === true, discovery: opts.discovery !== false, ...(advertise ? { advertiseAddr: advertise } : {}),
        config: { heartbeatIntervalMs: heartbeatMs, deadAfterMs: 2 * heartbeatMs, gossipIntervalMs: gossipMs },
      };
      if (opts.detach) {
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        const logFile = `${dataDir}/weft.log`;
        const out = openSync(logFile, 'a');
        const args = process.argv.slice(1).filter((a) => a !== '--detach');
        const child = spawn(process.execPath, [...ROUTER_NODE_FLAGS, ...args], { detached: true, stdio: ['ignore', out, out] });
        child.unref();
        if (!(await waitReady(socket, 30_000))) throw new Error(`the router did not become ready within 30 s; see ${logFile}`);
        ctx.io.out(`weft router started (pid ${child.pid}); logs in ${logFile}`);
        return;
      }
      const { jsonLogger } = await import('../../daemon/logger.js');
      const { Daemon } = await import('../../daemon/daemon.js');
      const logger = jsonLogger({ level: level as 'info' });
      const daemon = await Daemon.start({ dataDir, socket, name: optString(opts.name) ?? hostname(), ipallocRange: range, ...(mtu !== undefined ? { mtu } : {}), logger, reconcileIntervalMs: interval * 1000, mesh, conntrackBypass: opts.conntrackBypass !== false, ...(optString(opts.metricsAddr) ? { metricsAddr: optString(opts.metricsAddr)! } : {}) });
      await new Promise<void>((resolve) => {
        const stop = (sig: string): void => { logger.info('signal received, stopping', { signal: sig }); void daemon.stop().then(resolve); };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
