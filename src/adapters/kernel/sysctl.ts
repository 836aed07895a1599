/**
 * Network sysctls of the daemon's netns. /proc/sys/net is per network
 * namespace (it reflects the netns of the process that opens it), so the
 * daemon writes its own files directly; with an explicit netns (tests, tools)
 * the read/write runs through `nsenter --net=PATH cat|tee`, never from this
 * process, which may sit in another netns (the root one, in tests).
 *
 * Only keys under net/ are accepted: everything else in /proc/sys is global
 * to the machine, and weft has no business changing it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { InternalError, KernelError } from '../../core/errors.js';
import { inNetns, runCommand } from './exec.js';

/** `net/ipv4/ip_forward` or `net.ipv4.ip_forward` → `net/ipv4/ip_forward`. */
export function sysctlPath(key: string): string {
  const rel = key.includes('/') ? key : key.replace(/\./g, '/');
  if (!/^net\/[A-Za-z0-9_./-]+$/.test(rel) || rel.split('/').some((p) => p === '..' || p === '.' || p === '')) {
    throw new InternalError(`sysctl "${key}" is not a per-netns key under net/`);
  }
  return `/proc/sys/${rel}`;
}

export async function readSysctl(key: string, netns?: string): Promise<string> {
  const path = sysctlPath(key);
  if (netns === undefined) {
    try {
      return (await readFile(path, 'utf8')).trim();
    } catch (e) {
      throw new KernelError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
  const { cmd, args } = inNetns(netns, 'cat', [path]);
  const r = await runCommand(cmd, args);
  if (r.code !== 0) throw new KernelError(`cannot read ${path} in netns ${netns}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

export async function writeSysctl(key: string, value: string, netns?: string): Promise<void> {
  const path = sysctlPath(key);
  if (netns === undefined) {
    try {
      await writeFile(path, `${value}\n`);
    } catch (e) {
      throw new KernelError(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
    }
    return;
  }
  // tee, not `sh -c "echo > file"`: no shell, nothing to quote.
  const { cmd, args } = inNetns(netns, 'tee', [path]);
  const r = await runCommand(cmd, args, { input: `${value}\n` });
  if (r.code !== 0) throw new KernelError(`cannot write ${path} in netns ${netns}: ${r.stderr.trim()}`);
}

/** Writes only when the value differs; returns whether it changed anything. */
export async function ensureSysctl(key: string, value: string, netns?: string): Promise<boolean> {
  if ((await readSysctl(key, netns)) === value) return false;
  await writeSysctl(key, value, netns);
  return true;
}
