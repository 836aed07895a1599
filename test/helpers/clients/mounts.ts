/**
 * Mounts that container engines leave under a test's temp dir (overlay
 * layers, the overlay home's private bind mount, per-container shm tmpfs).
 * A temp dir must never be removed recursively while something is mounted
 * below it, so after-hooks call unmountUnder() before World.cleanup().
 */
import { readFileSync } from 'node:fs';
import { exec } from '../exec.js';

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points at or below `dir` in our mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  const root = dir.replace(/\/+$/, '');
  const points = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => unescapeMountPath(l.split(' ')[4] ?? ''))
    .filter((p) => p === root || p.startsWith(`${root}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything below `dir` (lazily when busy); returns what is still mounted (should be nothing). */
export async function unmountUnder(dir: string): Promise<string[]> {
  for (let round = 0; round < 5; round++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return [];
    for (const p of points) {
      const r = await exec('umount', [p]);
      if (r.code !== 0) await exec('umount', ['-l', p]);
    }
  }
  return mountsUnder(dir);
}
