/**
 * Small pieces shared by the multi-host fault tests (test/integration/
 * cluster-{relay,five,consensus,reclaim,rmpeer,garbage,clock}.test.ts):
 * reading a router's ring and mesh views, a one-shot TCP echo between two
 * containers, counting packets on an interface with tcpdump, checking
 * that a set of owned ranges partitions a CIDR, and sampling a kernel state
 * while something happens (cluster-overlay, cluster-relay).
 */
import assert from 'node:assert/strict';
import type { RingNodeStatus } from '../../src/core/ipam-ring/index.js';
import { formatIp } from '../../src/core/ip/addr.js';
import { parseCidr, cidrLast } from '../../src/core/ip/cidr.js';
import { type Interval, normalize, tryParseInterval } from '../../src/core/ip/ranges.js';
import type { MeshStatus } from '../../src/core/mesh/index.js';
import type { SimContainer, SimHost } from './cluster.js';
import { exec } from './exec.js';
import type { Netns, World } from './world.js';

export type MeshView = MeshStatus & { incarnation: number };

export const ringOf = (h: SimHost): Promise<RingNodeStatus> => h.router.api().get<RingNodeStatus>('/v1/ipam/ring');
export const meshOf = (h: SimHost): Promise<MeshView> => h.router.api().get<MeshView>('/v1/mesh');

/** Last lines of every router's log, for assertion messages. */
export function logsOf(hosts: readonly SimHost[], lines = 20): string {
  return hosts.map((h) => `--- ${h.name}\n${h.router.log.split('\n').slice(-lines).join('\n')}`).join('\n');
}

/** A one-shot TCP echo: the server in `srv` answers "pong:<what it read>" once; returns what the client read. */
export async function tcpRoundTrip(world: World, srv: SimContainer, cli: SimContainer, port: number): Promise<string> {
  const server = world.spawnIn(srv.ns, process.execPath, ['-e', `require('net').createServer((s)=>{s.once('data',(d)=>s.end('pong:'+d));}).listen(${port},'0.0.0.0',()=>console.log('up'))`]);
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout!.once('data', () => resolve());
      server.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    });
    const r = await exec(process.execPath, ['-e', `const c=require('net').connect(${port},'${srv.ip}',()=>c.write('ping'));let b='';c.on('data',(d)=>b+=d);c.on('end',()=>{console.log(b);process.exit(0)});c.on('error',(e)=>{console.error(e.message);process.exit(1)});setTimeout(()=>process.exit(2),5000)`], { netns: cli.ns.name, timeoutMs: 10_000 });
    return r.stdout.trim();
  } finally {
    server.kill('SIGKILL');
  }
}

/**
 * tcpdump on `iface` in `ns` with `filter`; `stop()` ends it and returns one string per packet
 * (for a VXLAN packet, the outer line and the decoded inner frame, joined by " | ").
 */
export async function capture(world: World, ns: Netns, iface: string, filter: string): Promise<{ stop: () => Promise<string[]> }> {
  const c = world.spawnIn(ns, 'tcpdump', ['-i', iface, '-n', '-l', filter]);
  const packets: string[] = [];
  let partial = '';
  c.stdout!.setEncoding('utf8').on('data', (s: string) => {
    const lines = (partial + s).split('\n');
    partial = lines.pop()!;
    // A packet's line starts with its timestamp; continuation lines (the inner frame) do not.
    for (const l of lines) {
      if (/^\d/.test(l) || packets.length === 0) packets.push(l);
      else packets[packets.length - 1] += ` | ${l.trim()}`;
    }
  });
  const started = await new Promise<boolean>((resolve) => {
    let err = '';
    c.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; if (/listening on/.test(err)) resolve(true); });
    c.once('exit', () => resolve(false));
  });
  assert.ok(started, `tcpdump runs on ${iface} in ${ns.name}`);
  return {
    stop: async () => {
      if (c.exitCode === null && c.signalCode === null) {
        const done = new Promise((r) => c.once('exit', r));
        c.kill('SIGINT');
        await done;
      }
      if (partial) packets[packets.length - 1] += ` | ${partial.trim()}`;
      return packets.filter(Boolean);
    },
  };
}

/** The intervals of "A-B" / "A" strings (as `weft status ipam -o json` prints owned ranges). */
export function parseRanges(list: readonly string[]): Interval[] {
  return list.map((s) => {
    const p = tryParseInterval(s);
    assert.ok(p, `not a range: ${s}`);
    return p.interval;
  });
}

/** Asserts the per-owner range lists are pairwise disjoint and together cover `cidr` exactly. */
export function assertPartition(cidr: string, byOwner: ReadonlyMap<string, readonly string[]>): void {
  const c = parseCidr(cidr);
  const all: { owner: string; i: Interval }[] = [];
  for (const [owner, list] of byOwner) for (const i of parseRanges(list)) all.push({ owner, i });
  all.sort((a, b) => (a.i.first < b.i.first ? -1 : a.i.first > b.i.first ? 1 : 0));
  let next = c.base;
  for (const { owner, i } of all) {
    assert.equal(i.first, next, `ranges must tile ${cidr} without gap or overlap; at ${owner}'s range starting at offset ${i.first - c.base}, expected offset ${next - c.base}: ${JSON.stringify(Object.fromEntries(byOwner))}`);
    next = i.last + 1n;
  }
  assert.equal(next, cidrLast(c) + 1n, `ranges cover ${cidr} up to its end: ${JSON.stringify(Object.fromEntries(byOwner))}`);
}

/** Is the address (dotted, no prefix) inside one of the ranges? */
export function inRanges(ip: string, list: readonly string[]): boolean {
  const v = tryParseInterval(ip)!.interval.first;
  return normalize(parseRanges(list)).some((i) => v >= i.first && v <= i.last);
}

/** Every address (dotted) of the ranges, in order. */
export function addressesIn(list: readonly string[]): string[] {
  const out: string[] = [];
  for (const i of normalize(parseRanges(list))) for (let v = i.first; v <= i.last; v++) out.push(formatIp({ family: 4, value: v }));
  return out;
}

/**
 * Runs `during` while sampling `check` every `everyMs`; returns each sample's
 * complaint (timestamped), so a test can assert that a kernel state never
 * lapsed while something happened (a router restart, say).
 */
export async function lapsesDuring(check: () => Promise<string | undefined>, during: () => Promise<void>, everyMs = 20): Promise<string[]> {
  const lapses: string[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const why = await check();
      if (why !== undefined) lapses.push(`${new Date().toISOString()} ${why}`);
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  try {
    await during();
  } finally {
    watching = false;
    await watcher;
  }
  return lapses;
}
