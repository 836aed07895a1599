/**
 * Small wrappers around the real weft CLI of a TestRouter, for client tests:
 * install the CNI plugins the way an operator would, and read the IPAM state.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestRouter } from '../router.js';

export interface Allocation {
  subnet: string;
  ip: string;
  state: 'bound' | 'held';
  identity?: string;
  containerId?: string;
  ifname?: string;
  network?: string;
}

export interface Reservation { subnet: string; ip: string; owner: string }

/** Runs the CLI and fails the test (with its output) when it exits non-zero. */
export async function weftOk(router: TestRouter, ...args: string[]): Promise<string> {
  const r = await router.weft(...args);
  assert.equal(r.code, 0, `weft ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** `weft ip list -o json`. */
export async function ipList(router: TestRouter): Promise<{ allocations: Allocation[]; reservations: Reservation[] }> {
  return JSON.parse(await weftOk(router, 'ip', 'list', '-o', 'json')) as { allocations: Allocation[]; reservations: Reservation[] };
}

export interface InstallOptions {
  readonly network?: string;
  readonly subnet?: string;
  readonly ports?: 'builtin' | 'portmap';
}

/**
 * `weft install-cni --bin-dir BIN --conf-dir CONF ...` against this router
 * (the router's socket is written into the conflist); returns the parsed
 * conflist it wrote.
 */
export async function installCni(router: TestRouter, binDir: string, confDir: string, o: InstallOptions = {}): Promise<Record<string, unknown>> {
  const network = o.network ?? 'weft';
  await weftOk(router, 'install-cni', '--bin-dir', binDir, '--conf-dir', confDir, '--network', network,
    ...(o.subnet ? ['--subnet', o.subnet] : []), ...(o.ports ? ['--ports', o.ports] : []));
  return JSON.parse(readFileSync(join(confDir, `10-${network}.conflist`), 'utf8')) as Record<string, unknown>;
}

/** The IPv4 address (no prefix) in `ip -4 addr` output for `dev`. */
export function ipv4Of(ipAddrOutput: string, dev = 'eth0'): string | undefined {
  const lines = ipAddrOutput.split('\n');
  const at = lines.findIndex((l) => new RegExp(`^\\d+: ${dev}[@:]`).test(l));
  if (at < 0) return undefined;
  for (const l of lines.slice(at + 1)) {
    if (/^\d+: /.test(l)) break;
    const m = /^\s+inet (\d+\.\d+\.\d+\.\d+)\/\d+/.exec(l);
    if (m) return m[1];
  }
  return undefined;
}
