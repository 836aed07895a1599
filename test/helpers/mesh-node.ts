/**
 * One mesh router over the real TCP transport, for integration tests that
 * run it inside a network namespace (World.spawnIn + nsenter).
 *
 * Usage: node dist/test/helpers/mesh-node.js '<json MeshNodeSpec>'
 *
 * Prints one JSON line per status change on stdout (MeshNodeStatus), log
 * lines on stderr. Registers an LwwMap on channel "test.map"; when `set` is
 * given, writes it once `setAfterPeers` peers are connected. On SIGUSR2,
 * when `flood` is given, writes `flood.count` values of `flood.bytes` each
 * at once (to overflow the send queue of a peer that stopped reading); on
 * SIGUSR1 deletes those keys again. Status lists the map without the flood
 * keys, and how many live flood keys there are.
 */
import { randomBytes } from 'node:crypto';
import { TcpTransport } from '../../src/adapters/mesh/tcp-transport.js';
import { clusterFingerprint, LwwMap, peerIdFromBytes, Router, tryParsePeerAddress, type MeshConfigInput } from '../../src/core/mesh/index.js';

export interface MeshNodeSpec {
  readonly nickname: string;
  readonly ip: string;
  readonly port: number;
  readonly peers: readonly string[];
  readonly config?: MeshConfigInput;
  readonly set?: { readonly key: string; readonly value: string };
  readonly setAfterPeers?: number;
  readonly statusIntervalMs?: number;
  /** TcpTransportOptions.maxQueuedBytes. */
  readonly maxQueuedBytes?: number;
  readonly flood?: { readonly count: number; readonly bytes: number };
}

export interface MeshNodeStatus {
  readonly nickname: string;
  readonly peer: string;
  readonly pid: number;
  readonly connected: string[];
  readonly peers: { nickname: string; peer: string; reachable: boolean; direct: boolean }[];
  readonly map: [string, string][];
  readonly protocolErrors: number;
  readonly accepted: number;
  readonly overflowCloses: number;
  readonly floodKeys: number;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as MeshNodeSpec;
  const peer = peerIdFromBytes(randomBytes(8));
  const map = new LwwMap(peer, Date.now);
  const advertise = tryParsePeerAddress(`${spec.ip}:${spec.port}`);
  const transport = new TcpTransport({
    host: spec.ip,
    port: spec.port,
    connectTimeoutMs: 1_000,
    ...(spec.maxQueuedBytes !== undefined ? { maxQueuedBytes: spec.maxQueuedBytes } : {}),
    log: (level, m) => process.stderr.write(`${level} ${m}\n`),
    makeRouter: (host) => {
      const r = new Router({
        peer, nickname: spec.nickname, cluster: clusterFingerprint('10.77.0.0/24'), peers: spec.peers,
        ...(advertise ? { advertise } : {}), ...(spec.config ? { config: spec.config } : {}),
      }, host);
      map.setSender(r.registerChannel('test.map', map));
      return r;
    },
  });
  await transport.start();
  let last = '';
  let setDone = false;
  const report = (): void => {
    const r = transport.router;
    if (spec.set && !setDone && r.connectedPeers().length >= (spec.setAfterPeers ?? 0)) {
      setDone = true;
      map.set(spec.set.key, spec.set.value);
    }
    const st = r.status();
    const s: MeshNodeStatus = {
      nickname: spec.nickname, peer, pid: process.pid, connected: r.connectedPeers(),
      peers: st.peers.map((p) => ({ nickname: p.nickname, peer: p.peer, reachable: p.reachable, direct: p.direct })),
      map: map.entries().filter(([k]) => !k.startsWith('flood-')), floodKeys: map.entries().filter(([k]) => k.startsWith('flood-')).length, protocolErrors: st.stats.protocolErrors, accepted: transport.counters.accepted,
      overflowCloses: transport.counters.overflowCloses,
    };
    const line = JSON.stringify(s);
    if (line !== last) {
      last = line;
      process.stdout.write(`${line}\n`);
    }
  };
  const iv = setInterval(report, spec.statusIntervalMs ?? 100);
  report();
  const stop = (): void => {
    clearInterval(iv);
    void transport.close().then(() => process.exit(0));
  };
  process.on('SIGUSR2', () => {
    const f = spec.flood;
    if (!f) return;
    for (let i = 0; i < f.count; i++) map.set(`flood-${i}`, String(i % 10).repeat(f.bytes));
    report();
  });
  process.on('SIGUSR1', () => {
    for (let i = 0; i < (spec.flood?.count ?? 0); i++) map.delete(`flood-${i}`);
    report();
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`mesh-node failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
