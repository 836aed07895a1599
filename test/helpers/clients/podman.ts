/**
 * A private podman 4.3 for tests: CNI backend, runc, every bit of state
 * (storage, run root, tmp, locks, events) under one temp dir, configured
 * through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF so nothing global is
 * read or written, and every command run inside the test's host namespace
 * with `nsenter --net=` (`ip netns exec` remounts /sys and breaks runc).
 *
 * What this machine needs (see /work/shared/research/real-clients.md):
 *  - runtime "runc": crun 1.8 fails on hybrid cgroups;
 *  - default_ulimits: podman's default nofile (1048576) is above the hard
 *    limit and we lack CAP_SYS_RESOURCE;
 *  - network_backend "cni" explicitly (a fresh store could pick netavark);
 *  - lock_type "file": the default shm lock lives in /dev/shm/libpod_lock,
 *    shared with every other podman on the machine.
 * Containers run from a busybox directory with `--rootfs` (a boolean flag:
 * every option must come before it, the first positional is the rootfs).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec, type ExecResult } from '../exec.js';
import type { Netns } from '../world.js';
import { unmountUnder } from './mounts.js';
import { buildBusyboxRootfs } from './rootfs.js';

export const PODMAN = '/usr/bin/podman';
const TIMEOUT_MS = 180_000;

export function havePodman(): boolean {
  return existsSync(PODMAN) && existsSync('/usr/sbin/runc');
}

export interface PodmanOptions {
  /** Directories podman looks for CNI plugins in (cni_plugin_dirs), in order. */
  readonly cniPluginDirs: readonly string[];
  /** network_config_dir: where the conflists are. */
  readonly confDir: string;
  /** default_network. */
  readonly defaultNetwork: string;
}

/** TOML basic string. */
const q = (s: string): string => JSON.stringify(s);

export class Podman {
  readonly containersConf: string;
  readonly storageConf: string;
  readonly rootfs: string;

  /** `dir` must be a temp dir the caller owns; everything podman writes goes below it. */
  constructor(readonly dir: string, readonly host: Netns, o: PodmanOptions) {
    for (const d of ['storage', 'run', 'tmp', 'volumes']) mkdirSync(join(dir, d), { recursive: true });
    this.containersConf = join(dir, 'containers.conf');
    this.storageConf = join(dir, 'storage.conf');
    writeFileSync(this.containersConf, [
      '[containers]',
      'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]',
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = [${o.cniPluginDirs.map(q).join(', ')}]`,
      `network_config_dir = ${q(o.confDir)}`,
      `default_network = ${q(o.defaultNetwork)}`,
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = ${q(join(dir, 'events.log'))}`,
      'lock_type = "file"',
      `tmp_dir = ${q(join(dir, 'tmp'))}`,
      `volume_path = ${q(join(dir, 'volumes'))}`,
      `static_dir = ${q(join(dir, 'storage', 'libpod'))}`,
      '',
    ].join('\n'));
    writeFileSync(this.storageConf, [
      '[storage]',
      'driver = "overlay"',
      `graphroot = ${q(join(dir, 'storage'))}`,
      `runroot = ${q(join(dir, 'run'))}`,
      '',
    ].join('\n'));
    this.rootfs = buildBusyboxRootfs(join(dir, 'rootfs'));
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, CONTAINERS_CONF: this.containersConf, CONTAINERS_STORAGE_CONF: this.storageConf };
  }

  /** `podman ARGS` in the host namespace. */
  run(args: readonly string[], timeoutMs = TIMEOUT_MS): Promise<ExecResult> {
    return exec(PODMAN, args, { netns: this.host.name, env: this.env(), timeoutMs });
  }

  /** Like run, but throws with podman's stderr on failure; returns trimmed stdout. */
  async ok(args: readonly string[], timeoutMs = TIMEOUT_MS): Promise<string> {
    const r = await this.run(args, timeoutMs);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** `podman run OPTIONS --rootfs ROOTFS CMD...` (options must precede --rootfs). */
  runContainer(options: readonly string[], cmd: readonly string[]): Promise<ExecResult> {
    return this.run(['run', ...options, '--rootfs', this.rootfs, ...cmd]);
  }

  /** Starts a detached container; returns its full ID. */
  async startDetached(name: string, options: readonly string[], cmd: readonly string[] = ['/bin/sleep', '3600']): Promise<string> {
    const r = await this.runContainer(['-d', '--name', name, ...options], cmd);
    if (r.code !== 0) throw new Error(`podman run -d --name ${name} exited ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout.trim().split('\n').pop()!.trim();
  }

  /** `podman inspect` of one container. */
  async inspect(name: string): Promise<PodmanInspect> {
    const [c] = JSON.parse(await this.ok(['inspect', '--type', 'container', name])) as PodmanInspect[];
    if (!c) throw new Error(`podman inspect ${name}: no such container`);
    return c;
  }

  /** The address podman recorded for the container on `network`. */
  async addressOn(name: string, network: string): Promise<string> {
    const c = await this.inspect(name);
    const ip = c.NetworkSettings.Networks?.[network]?.IPAddress;
    if (!ip) throw new Error(`container ${name} has no address on ${network}: ${JSON.stringify(c.NetworkSettings)}`);
    return ip;
  }

  /**
   * Removes every container, resets the store, and unmounts whatever is
   * still mounted under the dir. Never throws: after-hooks must go on.
   * Returns problems worth reporting (e.g. a mount that would not go).
   */
  async cleanup(): Promise<string[]> {
    const problems: string[] = [];
    const rm = await this.run(['rm', '-a', '-f', '-t', '0']).catch((e: unknown) => ({ code: -1, stdout: '', stderr: String(e) }));
    if (rm.code !== 0) problems.push(`podman rm -af: ${rm.stderr.trim()}`);
    const reset = await this.run(['system', 'reset', '-f']).catch((e: unknown) => ({ code: -1, stdout: '', stderr: String(e) }));
    if (reset.code !== 0) problems.push(`podman system reset: ${reset.stderr.trim()}`);
    const left = await unmountUnder(this.dir);
    if (left.length) problems.push(`still mounted: ${left.join(', ')}`);
    return problems;
  }
}

export interface PodmanInspect {
  Id: string;
  Name: string;
  State: { Running: boolean; Status: string };
  NetworkSettings: {
    SandboxKey?: string;
    Ports?: Record<string, { HostIp: string; HostPort: string }[] | null>;
    Networks?: Record<string, { IPAddress: string; IPPrefixLen: number; Gateway: string; MacAddress: string }>;
  };
}
