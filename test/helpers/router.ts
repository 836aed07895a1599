/**
 * A real weft router for tests: `weft launch` running inside a host
 * namespace of a World (entered with nsenter), with its data dir and socket
 * in a temp dir, driven through the real CNI plugin bundle and CLI.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../../src/client/api-client.js';
import { ROUTER_NODE_FLAGS } from '../../src/cli/commands/launch.js';
import type { Netns, World } from './world.js';
import { exec } from './exec.js';

const DIST = resolve(fileURLToPath(import.meta.url), '../../../');
export const WEFT_BIN = join(DIST, 'src/bin/weft.js');
export const PLUGIN_BUNDLE = join(DIST, 'weft-cni.cjs');

export interface CniCall {
  readonly command: 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';
  readonly containerId?: string;
  readonly netns?: string;
  readonly ifname?: string;
  readonly args?: string;
  readonly kind?: 'weft' | 'weft-ipam';
  /** Extra environment (e.g. CNI_PATH for chained reference plugins). */
  readonly env?: Record<string, string>;
}

export interface CniOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Parsed stdout when it is JSON. */
  readonly json?: Record<string, unknown>;
}

export interface RouterOptions {
  readonly ipallocRange?: string;
  readonly mtu?: number;
  readonly extraArgs?: readonly string[];
  /** `--name`; default the host netns name. */
  readonly name?: string;
  /** Reuse another router's data dir and socket (a restart with other arguments). */
  readonly stateDir?: string;
}

export class TestRouter {
  readonly dataDir: string;
  readonly socket: string;
  private child?: ChildProcess;
  private logs = '';

  constructor(private readonly world: World, readonly host: Netns, private readonly opts: RouterOptions = {}) {
    const dir = opts.stateDir ?? world.tempDir('weft-router');
    this.dataDir = join(dir, 'data');
    this.socket = join(dir, 'weft.sock');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get log(): string {
    return this.logs;
  }

  api(): ApiClient {
    return new ApiClient(this.socket, 30_000);
  }

  /** Starts `weft launch` and waits until /v1/status says ready. */
  async start(): Promise<void> {
    const args = [...ROUTER_NODE_FLAGS, WEFT_BIN, 'launch', '--data-dir', this.dataDir, '--socket', this.socket, '--name', this.opts.name ?? this.host.name, '--reconcile-interval', '0',
      ...(this.opts.ipallocRange ? ['--ipalloc-range', this.opts.ipallocRange] : []), ...(this.opts.mtu ? ['--mtu', String(this.opts.mtu)] : []), ...(this.opts.extraArgs ?? [])];
    const child = this.world.spawnIn(this.host, process.execPath, args);
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => { this.logs += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { this.logs += d.toString(); });
    const api = new ApiClient(this.socket, 1000);
    const until = Date.now() + 20_000;
    while (Date.now() < until) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`weft launch exited (${child.exitCode ?? child.signalCode}):\n${this.logs}`);
      try {
        if ((await api.get<{ ready: boolean }>('/v1/status')).ready) return;
      } catch { /* starting */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`weft router not ready after 20 s:\n${this.logs}`);
  }

  /** SIGTERM and wait for a clean exit; returns the exit code. */
  async stop(): Promise<number | null> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
    const done = once(c, 'exit');
    c.kill('SIGTERM');
    await done;
    return c.exitCode;
  }

  /** kill -9: the crash case. */
  async kill9(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const done = once(c, 'exit');
    c.kill('SIGKILL');
    await done;
  }

  /** Runs the CNI plugin bundle the way a runtime does (from the host namespace). */
  async cni(call: CniCall, config: Record<string, unknown>): Promise<CniOutcome> {
    const conf = { ...config };
    if (call.kind === 'weft-ipam') {
      const ipam = { ...(conf.ipam as Record<string, unknown> | undefined ?? { type: 'weft-ipam' }) };
      ipam.socket ??= this.socket;
      conf.ipam = ipam;
    } else {
      conf.socket ??= this.socket;
    }
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      WEFT_PLUGIN_KIND: call.kind ?? 'weft',
      CNI_COMMAND: call.command,
      ...(call.containerId !== undefined ? { CNI_CONTAINERID: call.containerId } : {}),
      ...(call.netns !== undefined ? { CNI_NETNS: call.netns } : {}),
      ...(call.ifname !== undefined ? { CNI_IFNAME: call.ifname } : {}),
      ...(call.args !== undefined ? { CNI_ARGS: call.args } : {}),
      ...call.env,
    };
    const r = await exec(process.execPath, [PLUGIN_BUNDLE], { env, input: JSON.stringify(conf), netns: this.host.name });
    let json: Record<string, unknown> | undefined;
    try { json = r.stdout.trim() ? JSON.parse(r.stdout) as Record<string, unknown> : undefined; } catch { /* not JSON */ }
    return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr, ...(json ? { json } : {}) };
  }

  /** Runs the weft CLI against this router. */
  async weft(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await exec(process.execPath, [WEFT_BIN, ...args, '--socket', this.socket], { netns: this.host.name });
    return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
  }
}

/** A minimal weft network config. */
export function weftConf(over: Record<string, unknown> = {}, cniVersion = '1.1.0'): Record<string, unknown> {
  return { cniVersion, name: 'weft', type: 'weft', ...over };
}
