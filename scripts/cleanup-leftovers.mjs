#!/usr/bin/env node
/**
 * Deletes test network namespaces (`wt*`) left behind by crashed test runs.
 * Standalone twin of cleanupLeftovers() in test/helpers/world.ts (the test
 * runner calls it before dist/ may exist). Same rules:
 *   - only namespaces named wt*, and only namespaces (every link a test makes
 *     lives inside one of them, so nothing else can be left over);
 *   - a namespace whose owner record (/run/weft-test-owners/NAME) names a
 *     process that is still alive belongs to a run in progress: kept;
 *   - without a record, only namespaces older than an hour are deleted.
 * Usage: node scripts/cleanup-leftovers.mjs [--dry-run]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const NETNS_DIR = '/run/netns';
const OWNER_DIR = '/run/weft-test-owners';
const PREFIX = 'wt';
const UNOWNED_MAX_AGE_MS = 60 * 60 * 1000;
const dryRun = process.argv.includes('--dry-run');

function processStartTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isLeftover(name, now) {
  const record = join(OWNER_DIR, name);
  if (existsSync(record)) {
    try {
      const { pid, start } = JSON.parse(readFileSync(record, 'utf8'));
      const alive = processStartTime(pid);
      return alive === undefined || (start !== undefined && alive !== start);
    } catch {
      return true;
    }
  }
  try {
    return now - statSync(join(NETNS_DIR, name)).mtimeMs > UNOWNED_MAX_AGE_MS;
  } catch {
    return false;
  }
}

if (process.platform !== 'linux' || process.getuid?.() !== 0) {
  console.log('cleanup-leftovers: not root on Linux; nothing to do');
  process.exit(0);
}

const now = Date.now();
let names = [];
try {
  names = readdirSync(NETNS_DIR).filter((n) => n.startsWith(PREFIX));
} catch {
  /* no /run/netns: nothing was ever created */
}
const removed = [];
for (const name of names) {
  if (!isLeftover(name, now)) continue;
  if (!dryRun) {
    const r = spawnSync('ip', ['netns', 'del', name], { encoding: 'utf8' });
    if (r.status !== 0 && existsSync(join(NETNS_DIR, name))) {
      console.error(`cleanup-leftovers: ip netns del ${name}: ${r.stderr.trim()}`);
      continue;
    }
    rmSync(join(OWNER_DIR, name), { force: true });
  }
  removed.push(name);
}
try {
  for (const r of readdirSync(OWNER_DIR)) if (!existsSync(join(NETNS_DIR, r)) && isLeftover(r, now) && !dryRun) rmSync(join(OWNER_DIR, r), { force: true });
} catch {
  /* no records */
}
// Temp dirs of crashed runs (World.tempDir: <tmp>/weft-*), e.g. podman or containerd
// storage with overlay mounts still inside. Only those untouched for an hour, so a
// run in progress keeps its own; mounts below them go first, deepest first.
const tmp = tmpdir();
let mounts = [];
try {
  mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter(Boolean);
} catch {
  /* no mountinfo */
}
for (const d of readdirSync(tmp).filter((n) => n.startsWith('weft-'))) {
  const dir = join(tmp, d);
  let st;
  try { st = statSync(dir); } catch { continue; }
  if (!st.isDirectory() || now - st.mtimeMs < UNOWNED_MAX_AGE_MS) continue;
  if (!dryRun) {
    for (const m of mounts.filter((m) => m === dir || m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', m]);
    rmSync(dir, { recursive: true, force: true });
  }
  removed.push(dir);
}

console.log(removed.length === 0 ? 'cleanup-leftovers: nothing left over' : `cleanup-leftovers: ${dryRun ? 'would delete' : 'deleted'} ${removed.join(' ')}`);
