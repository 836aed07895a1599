#!/usr/bin/env node
// The whole suite: removes leftovers of crashed runs (wt* namespaces whose owner died),
// then runs every test file under dist/test with node's test runner, whose
// closing lines ("# tests N", "# pass N", "# fail N") CI reads.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (process.getuid?.() !== 0) {
  console.error('weft tests build network namespaces and need root (run as root, e.g. in CI or a VM).');
  process.exit(1);
}
spawnSync(process.execPath, ['scripts/cleanup-leftovers.mjs'], { stdio: 'inherit' });
const dirs = ['dist/test/unit', 'dist/test/integration', 'dist/test/clients'].filter((d) => existsSync(d));
const extra = process.argv.slice(2);
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...extra, ...dirs], { stdio: 'inherit' });
spawnSync(process.execPath, ['scripts/cleanup-leftovers.mjs'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
