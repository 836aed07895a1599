/**
 * One router per data directory. The lock file holds the owner's PID; a
 * lock left by a process that no longer runs (kill -9, power loss) is taken
 * over, so a crashed router never blocks its own restart.
 */
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { ConflictError } from '../core/errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // A recycled PID that now belongs to something else is not our owner.
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('weft');
  } catch {
    return false;
  }
}

export function acquireDataDirLock(dir: string): () => void {
  const path = `${dir}/weft.lock`;
  const readPid = (p: string): number => { try { return Number(readFileSync(p, 'utf8').trim()); } catch { return NaN; } };
  for (let attempt = 0; attempt < 5; attempt++) {
    // The PID is written to a private file first and linked into place, so nobody
    // ever sees the lock without its owner (an empty file would look stale).
    const mine = `${path}.${process.pid}`;
    writeFileSync(mine, `${process.pid}\n`, { mode: 0o600 });
    try {
      linkSync(mine, path);
      unlinkSync(mine);
      return () => {
        try {
          if (readPid(path) === process.pid) unlinkSync(path);
        } catch { /* already gone */ }
      };
    } catch (e) {
      unlinkSync(mine);
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = readPid(path);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new ConflictError(`another weft router (pid ${pid}) is using data dir ${dir}`, { hint: 'stop it first, or give this one another --data-dir' });
    }
    // Stale: move it aside atomically and make sure what we moved is the dead owner's
    // lock, not one a concurrent starter has just taken over.
    const aside = `${path}.stale.${process.pid}`;
    try { renameSync(path, aside); } catch { continue; }
    const moved = readPid(aside);
    if (moved !== pid && Number.isInteger(moved) && moved > 0 && alive(moved)) {
      try { linkSync(aside, path); } catch { /* a third starter took the slot */ }
    }
    try { unlinkSync(aside); } catch { /* gone */ }
  }
  throw new ConflictError(`could not lock data dir ${dir}: another router keeps taking it`);
}
