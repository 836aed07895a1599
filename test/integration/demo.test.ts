/**
 * The README's main job: `weft demo` builds its world, shows containers
 * reaching each other, and `weft demo --down` removes every namespace it made.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { exec } from '../helpers/exec.js';
import { WEFT_BIN } from '../helpers/router.js';

test('weft demo runs, reports reachability, and --down leaves nothing behind', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-demo-'));
  const env = { ...process.env, WEFT_DEMO_DIR: join(dir, 'state') };
  let suffix: string | undefined;
  try {
    const up = await exec(process.execPath, [WEFT_BIN, 'demo'], { env, timeoutMs: 120_000 });
    suffix = /switch (wt[0-9a-f]+)sw/.exec(up.stdout)?.[1];
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
    // Three hosts, two containers each; every "-a" container pings a container on each other host.
    assert.equal((up.stdout.match(/: reachable/g) ?? []).length, 6, up.stdout);
    assert.match(up.stdout, /demo --down/);
    const status = await exec(process.execPath, [WEFT_BIN, 'status', '-o', 'json', '--socket', join(dir, 'state', 'host1', 'weft.sock')]);
    assert.equal(status.code, 0, status.stderr);
    const st = JSON.parse(status.stdout) as { attachments: { ready: number }; cluster: { peers: { reachable: number } } };
    assert.equal(st.attachments.ready, 2);
    assert.equal(st.cluster.peers.reachable, 2);
    const ps = await exec(process.execPath, [WEFT_BIN, 'ps', '--cluster', '-o', 'json', '--socket', join(dir, 'state', 'host1', 'weft.sock')]);
    assert.equal((JSON.parse(ps.stdout) as unknown[]).length, 6, 'host1 sees all six containers');
  } finally {
    const down = await exec(process.execPath, [WEFT_BIN, 'demo', '--down'], { env, timeoutMs: 60_000 });
    assert.equal(down.code, 0, down.stderr);
    rmSync(dir, { recursive: true, force: true });
  }
  const left = await exec('ip', ['netns', 'list']);
  assert.ok(suffix, 'the demo named its namespaces');
  assert.doesNotMatch(left.stdout, new RegExp(suffix!), 'no namespace of the demo is left');
});
