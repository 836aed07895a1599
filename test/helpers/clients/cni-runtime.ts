/**
 * A tiny CNI runtime, doing for a network configuration list what libcni
 * does (containernetworking/cni libcni: AddNetworkList / DelNetworkList /
 * CheckNetworkList), so chains of real plugins can be run by hand:
 *  - each plugin's config is the plugin object plus the list's `name` and
 *    `cniVersion`, plus `prevResult` when there is one;
 *  - `runtimeConfig` carries only the capability arguments the plugin
 *    declared in `capabilities` (libcni injectRuntimeConfig);
 *  - ADD runs the plugins in order, each getting the previous result;
 *  - DEL runs them in reverse order, each getting the cached final result;
 *  - CHECK runs them in order with the final result;
 *  - a plugin is found by `type` in the CNI_PATH directories and runs in
 *    the host namespace with the CNI_* environment.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../exec.js';
import type { Netns } from '../world.js';

export type Json = Record<string, unknown>;

export interface Conflist {
  readonly cniVersion: string;
  readonly name: string;
  readonly plugins: readonly Json[];
}

export interface RuntimeConf {
  readonly containerId: string;
  /** Path of the container's netns; '' sends an empty CNI_NETNS (as containerd does on DEL). */
  readonly netns: string;
  readonly ifname: string;
  /** CNI_ARGS. */
  readonly args?: string;
  /** Capability arguments (portMappings, ips, mac, …), injected per declared capability. */
  readonly capabilityArgs?: Json;
}

export interface PluginRun {
  readonly type: string;
  readonly command: string;
  readonly stdin: Json;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class CniPluginError extends Error {
  constructor(readonly run: PluginRun) {
    super(`plugin ${run.type} ${run.command} exited ${run.code}: ${run.stdout.trim()} ${run.stderr.trim()}`.trim());
  }
}

export class MiniRuntime {
  /** Every plugin execution, in order, for assertions and failure messages. */
  readonly runs: PluginRun[] = [];

  constructor(readonly host: Netns, readonly pluginDirs: readonly string[]) {}

  private find(type: string): string {
    for (const d of this.pluginDirs) {
      const p = join(d, type);
      if (existsSync(p)) return p;
    }
    throw new Error(`CNI plugin "${type}" not found in ${this.pluginDirs.join(':')}`);
  }

  /** libcni buildOneConfig + injectRuntimeConfig. */
  static pluginConfig(list: Conflist, plugin: Json, rt: RuntimeConf, prevResult: Json | undefined): Json {
    const conf: Json = { ...plugin, name: list.name, cniVersion: list.cniVersion };
    if (prevResult) conf['prevResult'] = prevResult;
    const caps = (plugin['capabilities'] ?? {}) as Record<string, boolean>;
    const injected: Json = {};
    for (const [cap, on] of Object.entries(caps)) if (on && rt.capabilityArgs && cap in rt.capabilityArgs) injected[cap] = rt.capabilityArgs[cap];
    if (Object.keys(injected).length) conf['runtimeConfig'] = injected;
    return conf;
  }

  async exec(command: 'ADD' | 'DEL' | 'CHECK', type: string, conf: Json, rt: RuntimeConf): Promise<PluginRun> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifname,
      CNI_ARGS: rt.args ?? '',
      CNI_PATH: this.pluginDirs.join(':'),
    };
    const r = await exec(this.find(type), [], { netns: this.host.name, env, input: JSON.stringify(conf), timeoutMs: 120_000 });
    const run: PluginRun = { type, command, stdin: conf, code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
    this.runs.push(run);
    if (run.code !== 0) throw new CniPluginError(run);
    return run;
  }

  /** ADD through the list; returns the final result (what libcni caches). */
  async add(list: Conflist, rt: RuntimeConf): Promise<Json> {
    let prev: Json | undefined;
    for (const plugin of list.plugins) {
      const run = await this.exec('ADD', String(plugin['type']), MiniRuntime.pluginConfig(list, plugin, rt, prev), rt);
      prev = JSON.parse(run.stdout) as Json;
    }
    if (!prev) throw new Error('empty plugin list');
    return prev;
  }

  /** DEL in reverse order, every plugin getting the cached result. */
  async del(list: Conflist, rt: RuntimeConf, cached: Json | undefined): Promise<void> {
    for (const plugin of [...list.plugins].reverse()) {
      await this.exec('DEL', String(plugin['type']), MiniRuntime.pluginConfig(list, plugin, rt, cached), rt);
    }
  }

  /** CHECK in order with the cached result. */
  async check(list: Conflist, rt: RuntimeConf, cached: Json): Promise<void> {
    for (const plugin of list.plugins) {
      await this.exec('CHECK', String(plugin['type']), MiniRuntime.pluginConfig(list, plugin, rt, cached), rt);
    }
  }
}
