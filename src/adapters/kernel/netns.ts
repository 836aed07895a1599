/**
 * Is a path a network namespace? Runtimes pass either a bind mount of an
 * nsfs inode (/run/netns/NAME, /var/run/netns/cni-UUID) or the magic link
 * /proc/PID/ns/net. Both live on nsfs, so statfs's f_type identifies them
 * without entering anything; a regular file, a directory or a missing path
 * is not a netns.
 */
import { lstatSync, readlinkSync, statfsSync } from 'node:fs';

/** NSFS_MAGIC from linux/magic.h. */
export const NSFS_MAGIC = 0x6e736673;

export function isNetns(path: string): boolean {
  if (typeof path !== 'string' || !path.startsWith('/')) return false;
  try {
    // /proc/PID/ns/* are magic links reading "TYPE:[INODE]": reject the other
    // namespace types (a mount or uts namespace is on nsfs too).
    if (lstatSync(path).isSymbolicLink()) {
      const target = readlinkSync(path);
      const m = /^([a-z_]+):\[\d+\]$/.exec(target);
      if (m && m[1] !== 'net') return false;
    }
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}
