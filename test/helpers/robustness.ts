/**
 * Observing a real weft router from the outside, for the robustness tests
 * (concurrency, rollback, crash loop, restart): what the store says (through
 * the API and the CLI) and what the kernel has (through ip(8) and nft(8) in
 * the test's own namespaces). Read-only: nothing here changes state.
 */
import type { Attachment } from '../../src/core/ipam/attachment.js';
import type { Allocation, Reservation } from '../../src/core/ipam/model.js';
import { HOST_VETH_PREFIX } from '../../src/core/dataplane/names.js';
import { exec, execOk } from './exec.js';
import type { TestRouter } from './router.js';

/** Names of the weft veth host ends (`wv…`) in a netns. */
export async function hostVeths(netns: string): Promise<string[]> {
  const out = await execOk('ip', ['-j', 'link', 'show', 'type', 'veth'], { netns });
  return (JSON.parse(out || '[]') as { ifname: string }[]).map((l) => l.ifname).filter((n) => n.startsWith(HOST_VETH_PREFIX)).sort();
}

/** Every link name in a netns. */
export async function linkNames(netns: string): Promise<string[]> {
  const out = await execOk('ip', ['-j', 'link', 'show'], { netns });
  return (JSON.parse(out || '[]') as { ifname: string }[]).map((l) => l.ifname).sort();
}

/** A link's details, or undefined when it does not exist. */
export async function linkInfo(netns: string, name: string): Promise<Record<string, unknown> | undefined> {
  const r = await exec('ip', ['-j', '-d', 'link', 'show', 'dev', name], { netns });
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as Record<string, unknown>[])[0];
}

/** Global IPv4/IPv6 addresses (`ip/prefix`) of every interface in a netns except lo, sorted. */
export async function globalAddrs(netns: string, dev?: string): Promise<string[]> {
  const r = await exec('ip', ['-j', 'addr', 'show', ...(dev ? ['dev', dev] : [])], { netns });
  if (r.code !== 0) return [];
  const links = JSON.parse(r.stdout || '[]') as { ifname: string; addr_info?: { local: string; prefixlen: number; scope: string }[] }[];
  return links.filter((l) => l.ifname !== 'lo').flatMap((l) => (l.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`)).sort();
}

/** The rules of weft's nftables table in a netns (empty when the table does not exist). */
export async function nftRules(netns: string): Promise<string[]> {
  const r = await exec('nft', ['-j', 'list', 'table', 'inet', 'weft'], { netns });
  if (r.code !== 0) return [];
  const doc = JSON.parse(r.stdout) as { nftables: Record<string, unknown>[] };
  return doc.nftables.filter((o) => 'rule' in o).map((o) => JSON.stringify((o.rule as { expr: unknown }).expr));
}

export interface IpList { allocations: Allocation[]; reservations: Reservation[] }

/** `weft ip list -o json`, through the real CLI. */
export async function ipList(router: TestRouter, subnet?: string): Promise<IpList> {
  const r = await router.weft('ip', 'list', '-o', 'json', ...(subnet ? ['--subnet', subnet] : []));
  if (r.code !== 0) throw new Error(`weft ip list failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as IpList;
}

export async function attachments(router: TestRouter): Promise<Attachment[]> {
  return router.api().get<Attachment[]>('/v1/attachments');
}

/** Runs `fn(i)` for i in [0, n) all at once. */
export function parallel<T>(n: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => fn(i)));
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pooled<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }));
  return out;
}

/** The CNI error code in a plugin's stdout, or undefined. */
export function cniCode(json: Record<string, unknown> | undefined): number | undefined {
  return typeof json?.code === 'number' ? json.code : undefined;
}

/** The first IP (without prefix) of an ADD result. */
export function resultIp(json: Record<string, unknown> | undefined): string {
  const ips = (json?.ips ?? []) as { address: string }[];
  const a = ips[0]?.address;
  if (!a) throw new Error(`ADD result has no address: ${JSON.stringify(json)}`);
  return a;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export { seededRandom as rng } from '../../src/core/prng.js';
