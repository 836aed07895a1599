/**
 * Small shared pieces for the integration tests that drive a real weft
 * router through the CNI plugin bundle and the CLI (test/integration/
 * cni-*.test.ts, ipam-managed, gc-status, macvlan, cli): starting one router
 * per file, reading kernel state inside namespaces, reading the router's
 * view through `weft ... -o json`, and proving a failed ADD left nothing.
 */
import assert from 'node:assert/strict';
import { hostIfnameFor } from '../../src/core/dataplane/names.js';
import type { Attachment } from '../../src/core/ipam/attachment.js';
import type { Allocation, Reservation } from '../../src/core/ipam/model.js';
import { exec, execOk } from './exec.js';
import { PLUGIN_BUNDLE, type CniOutcome, type RouterOptions, TestRouter } from './router.js';
import { type Netns, World } from './world.js';

export interface Kit {
  readonly world: World;
  readonly host: Netns;
  readonly router: TestRouter;
}

/** A World with a host netns running a started router. Call `world.cleanup()` in an after hook. */
export async function startKit(tag: string, opts: RouterOptions = {}): Promise<Kit> {
  const world = new World();
  try {
    const host = await world.netns(tag);
    const router = new TestRouter(world, host, opts);
    await router.start();
    return { world, host, router };
  } catch (e) {
    await world.cleanup();
    throw e;
  }
}

let seq = 0;
/** A container ID unique in this process (valid CNI_CONTAINERID charset). */
export function cid(tag: string): string {
  seq += 1;
  return `${tag}-${process.pid}-${seq}`;
}

const nsName = (ns: Netns | string): string => (typeof ns === 'string' ? ns : ns.name);

interface IpAddrJson {
  ifname: string;
  address?: string;
  link_type?: string;
  mtu?: number;
  operstate?: string;
  flags?: string[];
  addr_info?: { family: string; local: string; prefixlen: number; scope: string }[];
}

/** `ip -j addr show` of one device (undefined when it does not exist). */
export async function linkInfo(ns: Netns | string, dev: string): Promise<IpAddrJson | undefined> {
  const r = await exec('ip', ['-j', 'addr', 'show', 'dev', dev], { netns: nsName(ns) });
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as IpAddrJson[])[0];
}

/** Global addresses of a device, "addr/prefix", sorted. */
export async function addrs(ns: Netns | string, dev: string): Promise<string[]> {
  const l = await linkInfo(ns, dev);
  return (l?.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`).sort();
}

export interface RouteJson { dst: string; gateway?: string; dev?: string; protocol?: string; scope?: string }

/** `ip -j [-6] route show` in a namespace. */
export async function routes(ns: Netns | string, family: 4 | 6 = 4): Promise<RouteJson[]> {
  return JSON.parse(await execOk('ip', ['-j', `-${family}`, 'route', 'show'], { netns: nsName(ns) })) as RouteJson[];
}

/** Names of every link in a namespace. */
export async function linkNames(ns: Netns | string): Promise<string[]> {
  return (JSON.parse(await execOk('ip', ['-j', 'link', 'show'], { netns: nsName(ns) })) as { ifname: string }[]).map((l) => l.ifname);
}

/** Parses the stdout of a CLI call that must succeed. */
export async function weftJson<T>(r: TestRouter, ...args: string[]): Promise<T> {
  const out = await r.weft(...args, '-o', 'json');
  assert.equal(out.code, 0, `weft ${args.join(' ')} -o json: exit ${out.code}\n${out.stderr}`);
  try {
    return JSON.parse(out.stdout) as T;
  } catch (e) {
    throw new Error(`weft ${args.join(' ')} -o json printed no JSON: ${(e as Error).message}\n${out.stdout}`);
  }
}

/**
 * What `weft ip list -o json` and `weft ps -o json` print (the CLI prints the
 * API's answer as is; cli.test.ts proves that), read straight from the API
 * because a CLI process costs ~0.3 s and these are read after every step.
 */
export const ipList = (r: TestRouter): Promise<{ allocations: Allocation[]; reservations: Reservation[] }> => r.api().get('/v1/ips');
export const ps = (r: TestRouter): Promise<Attachment[]> => r.api().get<Attachment[]>('/v1/attachments');

export interface CniErrorJson { cniVersion: string; code: number; msg: string; details?: string }

/** Asserts the plugin failed the CNI way (exit 1, error object on stdout) and returns the object. */
export function cniError(o: CniOutcome, code?: number): CniErrorJson {
  assert.equal(o.code, 1, `expected the plugin to fail; exit ${o.code}\nstdout: ${o.stdout}\nstderr: ${o.stderr}`);
  assert.ok(o.json, `the error must be JSON on stdout, got: ${o.stdout}`);
  const e = o.json as unknown as CniErrorJson;
  assert.equal(typeof e.msg, 'string');
  assert.equal(typeof e.cniVersion, 'string');
  if (code !== undefined) assert.equal(e.code, code, `CNI code; error: ${JSON.stringify(e)}`);
  return e;
}

/** Asserts the plugin succeeded; returns the parsed stdout (undefined when empty). */
export function cniOk(o: CniOutcome): Record<string, unknown> | undefined {
  assert.equal(o.code, 0, `expected success; exit ${o.code}\nstdout: ${o.stdout}\nstderr: ${o.stderr}`);
  return o.json;
}

/**
 * A failed (or deleted) attachment left nothing: no host veth end for it in
 * the router's netns, no allocation and no attachment of that container interface.
 */
export async function assertNothingLeft(r: TestRouter, containerId: string, ifname = 'eth0'): Promise<void> {
  const [links, ips, atts] = await Promise.all([linkNames(r.host), ipList(r), ps(r)]);
  assert.ok(!links.includes(hostIfnameFor(containerId, ifname)), `host veth of ${containerId}/${ifname} left behind`);
  assert.deepEqual(ips.allocations.filter((a) => a.containerId === containerId && a.ifname === ifname), [], `allocation of ${containerId}/${ifname} left behind`);
  assert.deepEqual(atts.filter((a) => a.containerId === containerId && a.ifname === ifname), [], `attachment of ${containerId}/${ifname} left behind`);
}

/** The allocations of one container, from `weft ip list -o json`. */
export async function allocationsOf(r: TestRouter, containerId: string): Promise<Allocation[]> {
  return (await ipList(r)).allocations.filter((a) => a.containerId === containerId);
}

/** Runs the plugin bundle with raw stdin and exactly `env` (plus PATH), from the router's netns. */
export async function rawCni(r: TestRouter, env: Record<string, string>, stdin: string): Promise<CniOutcome> {
  const res = await exec(process.execPath, [PLUGIN_BUNDLE], { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', WEFT_PLUGIN_KIND: 'weft', ...env }, input: stdin, netns: r.host.name });
  let json: Record<string, unknown> | undefined;
  try { json = res.stdout.trim() ? JSON.parse(res.stdout) as Record<string, unknown> : undefined; } catch { /* not JSON */ }
  return { code: res.code ?? -1, stdout: res.stdout, stderr: res.stderr, ...(json ? { json } : {}) };
}

/** Polls `cond` until true or `ms` passed; returns its last value. */
export async function waitFor(cond: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((res) => setTimeout(res, 50));
  }
  return cond();
}

/** The first address (without prefix) of an ADD result. */
export function firstIp(result: Record<string, unknown> | undefined): string {
  const ips = (result?.['ips'] ?? []) as { address: string }[];
  assert.ok(ips[0], `result has no ips: ${JSON.stringify(result)}`);
  return ips[0].address.split('/')[0]!;
}
