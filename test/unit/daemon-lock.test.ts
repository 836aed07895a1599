import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { acquireDataDirLock } from '../../src/daemon/data-dir-lock.js';

test('the data-dir lock: taken, refused while its owner lives, taken over from a dead owner, released', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-lock-'));
  try {
    const release = acquireDataDirLock(dir);
    assert.equal(readFileSync(join(dir, 'weft.lock'), 'utf8').trim(), String(process.pid));
    release();
    assert.deepEqual(readdirSync(dir), [], 'release removes the lock and leaves no temp file');

    // A live router (a process whose command line names weft) holds it: refused.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)', 'weft-lock-holder']);
    try {
      writeFileSync(join(dir, 'weft.lock'), `${other.pid}\n`);
      assert.throws(() => acquireDataDirLock(dir), (e: Error & { code?: string }) => e.code === 'CONFLICT' && e.message.includes(String(other.pid)));
    } finally {
      other.kill('SIGKILL');
      await new Promise((r) => other.once('exit', r));
    }
    // Its owner is dead now (kill -9 left the file): taken over.
    const again = acquireDataDirLock(dir);
    assert.equal(readFileSync(join(dir, 'weft.lock'), 'utf8').trim(), String(process.pid));
    again();
    // An empty or garbage lock file (a crash mid-write of an older weft) is stale too.
    writeFileSync(join(dir, 'weft.lock'), '');
    acquireDataDirLock(dir)();
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
