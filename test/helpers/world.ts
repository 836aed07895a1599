/**
 * Test worlds: network namespaces, processes and temp dirs a test creates,
 * tracked so `cleanup()` removes exactly those and nothing else.
 *
 * Names: every namespace is `wt` + tag + random, at most 12 characters, so
 * link names derived from it (`<ns>-x`) still fit in 15. All links a test
 * makes live inside its namespaces, so deleting the namespaces deletes them.
 *
 * Leftovers: before creating a namespace, World writes an owner record
 * (/run/weft-test-owners/NAME = our PID and its start time). cleanupLeftovers()
 * deletes a `wt*` namespace only when its owner has died (a crashed run), or
 * when it has no owner record and is older than an hour; namespaces of test
 * runs still in progress — ours or another engineer's — are left alone.
 */
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec, type ExecOptions, type ExecResult, execOk, netnsPath, spawnIn } from './exec.js';

export const NETNS_PREFIX = 'wt';
export const OWNER_DIR = '/run/weft-test-owners';
const NETNS_DIR = '/run/netns';
const UNOWNED_MAX_AGE_MS = 60 * 60 * 1000;

export interface Netns {
  readonly name: string;
  /** /run/netns/NAME, what CNI_NETNS would carry. */
  readonly path: string;
}

/** Start time of a process (field 22 of /proc/PID/stat, clock ticks since boot), or undefined when it is gone. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

function writeOwnerRecord(name: string): void {
  mkdirSync(OWNER_DIR, { recursive: true });
  writeFileSync(join(OWNER_DIR, name), JSON.stringify({ pid: process.pid, start: processStartTime(process.pid) }));
}

function removeOwnerRecord(name: string): void {
  rmSync(join(OWNER_DIR, name), { force: true });
}

/** `wt` + tag (up to 4 chars) + 6 random hex chars. */
export function randomNetnsName(tag = ''): string {
  const t = tag.replace(/[^a-z0-9]/gi, '').slice(0, 4).toLowerCase();
  return `${NETNS_PREFIX}${t}${randomBytes(3).toString('hex')}`;
}

/** Creates a named netns (with lo up) and returns it; the caller owns its deletion. Prefer World.netns(). */
export async function createNetns(prefixTag = ''): Promise<Netns> {
  const name = randomNetnsName(prefixTag);
  writeOwnerRecord(name);
  try {
    await execOk('ip', ['netns', 'add', name]);
    await execOk('ip', ['link', 'set', 'dev', 'lo', 'up'], { netns: name });
  } catch (e) {
    await deleteNetns(name);
    throw e;
  }
  return { name, path: netnsPath(name) };
}

/** Deletes a test netns (only `wt*` names); true when it existed. */
export async function deleteNetns(name: string): Promise<boolean> {
  if (!name.startsWith(NETNS_PREFIX) || name.includes('/')) throw new Error(`refusing to delete netns "${name}": not a test namespace`);
  const existed = existsSync(join(NETNS_DIR, name));
  if (existed) {
    const r = await exec('ip', ['netns', 'del', name]);
    if (r.code !== 0 && existsSync(join(NETNS_DIR, name))) throw new Error(`ip netns del ${name}: ${r.stderr.trim()}`);
  }
  removeOwnerRecord(name);
  return existed;
}

function isLeftover(name: string, now: number): boolean {
  const record = join(OWNER_DIR, name);
  if (existsSync(record)) {
    try {
      const { pid, start } = JSON.parse(readFileSync(record, 'utf8')) as { pid: number; start?: string };
      const alive = processStartTime(pid);
      return alive === undefined || (start !== undefined && alive !== start);
    } catch {
      return true; // unreadable record: written by a run that crashed mid-write
    }
  }
  try {
    // The nsfs inode's mtime is the namespace's creation time.
    return now - statSync(join(NETNS_DIR, name)).mtimeMs > UNOWNED_MAX_AGE_MS;
  } catch {
    return false;
  }
}

/** Deletes `wt*` namespaces left by crashed runs (see the file comment); returns their names. */
export async function cleanupLeftovers(): Promise<string[]> {
  const now = Date.now();
  let names: string[] = [];
  try {
    names = readdirSync(NETNS_DIR).filter((n) => n.startsWith(NETNS_PREFIX));
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    if (!isLeftover(n, now)) continue;
    await deleteNetns(n);
    removed.push(n);
  }
  // Records whose namespace is gone and whose owner is dead.
  try {
    for (const r of readdirSync(OWNER_DIR)) if (!existsSync(join(NETNS_DIR, r)) && isLeftover(r, now)) removeOwnerRecord(r);
  } catch {
    /* no records */
  }
  return removed;
}

export class World {
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly dirs: string[] = [];
  private cleaning: Promise<void> | undefined;

  /** A new namespace with lo up, deleted by cleanup(). */
  async netns(tag = ''): Promise<Netns> {
    const ns = await createNetns(tag);
    this.namespaces.push(ns.name);
    return ns;
  }

  /** Deletes one of this world's namespaces now (e.g. to simulate a container going away). */
  async deleteNetns(ns: Netns | string): Promise<void> {
    const name = typeof ns === 'string' ? ns : ns.name;
    if (!this.namespaces.includes(name)) throw new Error(`netns ${name} is not part of this world`);
    await deleteNetns(name);
  }

  exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return exec(cmd, args, opts);
  }

  execOk(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<string> {
    return execOk(cmd, args, opts);
  }

  /** A long-running process in a namespace, killed by cleanup(). */
  spawnIn(ns: Netns | string, cmd: string, args: readonly string[]): ChildProcess {
    const child = spawnIn(typeof ns === 'string' ? ns : ns.name, cmd, args);
    this.children.push(child);
    return child;
  }

  tempDir(tag = 'weft'): string {
    const d = mkdtempSync(join(tmpdir(), `${tag}-`));
    this.dirs.push(d);
    return d;
  }

  /** Kills this world's processes, deletes its namespaces and temp dirs. Safe to call twice. */
  cleanup(): Promise<void> {
    this.cleaning ??= this.doCleanup().finally(() => {
      this.cleaning = undefined;
    });
    return this.cleaning;
  }

  private async doCleanup(): Promise<void> {
    const errors: unknown[] = [];
    for (const c of this.children.splice(0)) {
      if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGKILL');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    }
    for (const n of this.namespaces.splice(0)) {
      try {
        await deleteNetns(n);
      } catch (e) {
        errors.push(e);
      }
    }
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, 'world cleanup failed');
  }
}

/** True when the tests can create namespaces (root on Linux). */
export function canCreateNetns(): boolean {
  return process.platform === 'linux' && typeof process.getuid === 'function' && process.getuid() === 0;
}
