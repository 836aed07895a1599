/**
 * A private containerd 1.6 for tests: root, state and sockets under a temp
 * dir, the CRI plugin disabled, running inside the test's host namespace.
 *
 * `ctr run --cni` has no flags for the CNI directories: go-cni reads
 * /etc/cni/net.d and /opt/cni/bin. runCni() therefore runs ctr in a private
 * mount namespace (unshare --mount) where those two paths (and libcni's
 * result cache, /var/lib/cni) are bind mounts of the test's temp dirs; the
 * host's directories are never written. The plugins ctr execs inherit that
 * mount namespace and the host network namespace.
 */
import { type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec, type ExecResult } from '../exec.js';
import { netnsPath } from '../exec.js';
import type { Netns, World } from '../world.js';
import { unmountUnder } from './mounts.js';

export const CONTAINERD = '/usr/bin/containerd';
export const CTR = '/usr/bin/ctr';

export function haveContainerd(): boolean {
  return existsSync(CONTAINERD) && existsSync(CTR) && existsSync('/usr/sbin/runc') && existsSync('/etc/cni/net.d');
}

/** Sets up the private mount namespace, then execs ctr in the host netns. Positional: ctr args. */
const CTR_CNI_SCRIPT = `
set -e
mount --make-rprivate /
mount --bind "$WT_CONF" /etc/cni/net.d
if [ -d /var/lib/cni ]; then mount --bind "$WT_CACHE" /var/lib/cni; fi
if [ -d /opt/cni/bin ]; then
  mount --bind "$WT_BIN" /opt/cni/bin
else
  # Keep the rest of /opt visible (node may live there) through symlinks to a private bind of it.
  mount --bind /opt "$WT_OPT"
  mount -t tmpfs wtopt /opt
  for e in "$WT_OPT"/* "$WT_OPT"/.[!.]*; do
    [ -e "$e" ] || continue
    n=\${e##*/}
    [ "$n" = cni ] || ln -s "$e" "/opt/$n"
  done
  mkdir -p /opt/cni/bin
  mount --bind "$WT_BIN" /opt/cni/bin
fi
exec nsenter --net="$WT_NETNS" -- "$@"
`;

export class Containerd {
  readonly socket: string;
  private child?: ChildProcess;
  private logs = '';

  constructor(private readonly world: World, readonly dir: string, readonly host: Netns) {
    this.socket = join(dir, 'containerd.sock');
  }

  get log(): string {
    return this.logs;
  }

  async start(): Promise<void> {
    for (const d of ['root', 'state', 'cni-cache', 'opt']) mkdirSync(join(this.dir, d), { recursive: true });
    const config = join(this.dir, 'config.toml');
    writeFileSync(config, [
      'version = 2',
      `root = ${JSON.stringify(join(this.dir, 'root'))}`,
      `state = ${JSON.stringify(join(this.dir, 'state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(this.socket)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(`${this.socket}.ttrpc`)}`,
      '[debug]',
      `  address = ${JSON.stringify(join(this.dir, 'debug.sock'))}`,
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'));
    const child = this.world.spawnIn(this.host, CONTAINERD, ['--config', config]);
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => { this.logs += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { this.logs += d.toString(); });
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`containerd exited (${String(child.exitCode ?? child.signalCode)}):\n${this.logs}`);
      const r = await exec(CTR, ['-a', this.socket, 'version'], { timeoutMs: 10_000 });
      if (r.code === 0) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`containerd not answering after 60 s:\n${this.logs}`);
  }

  /** `ctr -a SOCK ARGS` (from the root netns: ctr only talks to the socket). */
  ctr(args: readonly string[], timeoutMs = 120_000): Promise<ExecResult> {
    return exec(CTR, ['-a', this.socket, ...args], { timeoutMs });
  }

  /**
   * `ctr run --rm --cni --rootfs ROOTFS ID CMD...` with /etc/cni/net.d =
   * confDir and /opt/cni/bin = binDir. Resolves when ctr exits (after the
   * task ended and ctr ran the CNI DEL).
   */
  runCni(o: { confDir: string; binDir: string; rootfs: string; id: string; cmd: readonly string[]; timeoutMs?: number }): Promise<ExecResult> {
    const env = {
      ...process.env,
      WT_CONF: o.confDir, WT_BIN: o.binDir, WT_CACHE: join(this.dir, 'cni-cache'), WT_OPT: join(this.dir, 'opt'), WT_NETNS: netnsPath(this.host.name),
    };
    return exec('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', CTR_CNI_SCRIPT, 'ctr-cni',
      CTR, '-a', this.socket, 'run', '--rm', '--cni', '--rootfs', o.rootfs, o.id, ...o.cmd], { env, timeoutMs: o.timeoutMs ?? 180_000 });
  }

  /** SIGTERM and wait (SIGKILL after 20 s); then unmount anything left under the dir. */
  async stop(): Promise<void> {
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      const done = once(c, 'exit');
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 20_000);
      await done;
      clearTimeout(t);
    }
    await unmountUnder(this.dir);
  }
}
