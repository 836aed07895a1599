/**
 * One router per data directory. The lock file holds the owner's PID; a
 * lock left by a process that no longer runs (kill -9, power loss) is taken
 * over, so a crashed router never blocks its own restart.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
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
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch { /* already gone */ }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let pid = NaN;
      try { pid = Number(readFileSync(path, 'utf8').trim()); } catch { /* raced with its removal */ }
      if (Number.isInteger(pid) && pid !== process.pid && alive(pid)) {
        throw new ConflictError(`another weft router (pid ${pid}) is using data dir ${dir}`, { hint: 'stop it first, or give this one another --data-dir' });
      }
      try { unlinkSync(path); } catch { /* someone else took it over; retry */ }
    }
  }
  throw new ConflictError(`could not lock data dir ${dir}: another router keeps taking it`);
}
