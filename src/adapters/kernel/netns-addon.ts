/**
 * weft's own N-API addon (native/netns/netns.c, built by scripts/setup.sh
 * with node-gyp) and the one thing it is for: running a few synchronous
 * statements with the main thread inside another network namespace.
 *
 * setns(2) moves only the calling thread. Everything asynchronous in Node
 * (libuv's thread pool, lmdb's threads, timers firing later) stays where it
 * was. A socket takes the netns of the thread that creates it and keeps it
 * for its whole life, so "switch, create a netlink socket, switch back" gives
 * a socket in the container's netns while the process never leaves its own.
 * The switch back is in a finally; if even that fails the process aborts
 * rather than go on with its main thread in a container's namespace.
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NetnsAddon {
  setns(fd: number, nstype: number): void;
  readonly CLONE_NEWNET: number;
}

export type Loaded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Where node-gyp puts the addon, relative to the repository root. */
export const ADDON_RELATIVE_PATH = 'native/netns/build/Release/weft_netns.node';

/**
 * The addon file: WEFT_NETNS_ADDON when set, else the first
 * native/netns/build/Release/weft_netns.node found walking up from this
 * module (src/adapters/kernel under the repository, or dist/src/adapters/kernel).
 */
export function findAddon(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const override = env.WEFT_NETNS_ADDON;
  if (override !== undefined && override !== '') return override;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, ADDON_RELATIVE_PATH);
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

let cached: Loaded<NetnsAddon> | undefined;

export function loadNetnsAddon(): Loaded<NetnsAddon> {
  if (cached) return cached;
  const path = findAddon();
  if (path === undefined) {
    cached = { ok: false, reason: `the setns addon is not built (${ADDON_RELATIVE_PATH} is missing; scripts/setup.sh builds it)` };
    return cached;
  }
  try {
    const mod = createRequire(import.meta.url)(path) as Partial<NetnsAddon>;
    if (typeof mod.setns !== 'function' || typeof mod.CLONE_NEWNET !== 'number') throw new Error('it does not export setns and CLONE_NEWNET');
    cached = { ok: true, value: mod as NetnsAddon };
  } catch (e) {
    cached = { ok: false, reason: `the setns addon ${path} cannot be loaded: ${(e as Error).message}` };
  }
  return cached;
}

/** A failure to enter a netns (missing path, not a netns): the caller treats the netns as gone. */
export class NetnsEnterError extends Error {
  readonly code: string;
  constructor(readonly path: string, code: string, message: string) {
    super(`cannot enter netns ${path}: ${message}`);
    this.name = 'NetnsEnterError';
    this.code = code;
  }
}

export class NetnsSwitcher {
  private homeFd: number | undefined;

  constructor(private readonly addon: NetnsAddon) {}

  /** The netns the main thread lives in, held open so switching back cannot fail for want of a path. */
  private home(): number {
    this.homeFd ??= openSync('/proc/thread-self/ns/net', 'r');
    return this.homeFd;
  }

  /**
   * Runs `fn` with the calling thread in the netns at `path` (undefined: runs
   * it where we are). `fn` must be synchronous: anything it leaves for later
   * would run after the switch back.
   */
  run<T>(path: string | undefined, fn: () => T): T {
    if (path === undefined) return fn();
    const home = this.home();
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new NetnsEnterError(path, err.code ?? 'EIO', err.message);
    }
    try {
      try {
        this.addon.setns(fd, this.addon.CLONE_NEWNET);
      } catch (e) {
        const err = e as Error & { code?: string };
        throw new NetnsEnterError(path, err.code ?? 'EINVAL', err.message);
      }
      try {
        const r = fn();
        if (r instanceof Promise) throw new TypeError('NetnsSwitcher.run takes a synchronous function');
        return r;
      } finally {
        this.restore(home, path);
      }
    } finally {
      closeSync(fd);
    }
  }

  private restore(home: number, from: string): void {
    try {
      this.addon.setns(home, this.addon.CLONE_NEWNET);
    } catch (e) {
      // Every later socket, child process and /proc/sys write would land in the container's netns.
      process.stderr.write(`weft: FATAL: cannot switch the main thread back from netns ${from} to its own: ${(e as Error).message}\n`);
      process.abort();
    }
  }
}
