import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderLauncher, shQuote } from '../../src/core/cni/launcher.js';
import { runPlugin } from '../../src/cni/plugin.js';

const noSend = { send: (): Promise<never> => Promise.reject(new Error('must not be called')) };

test('shQuote survives quotes, spaces and $', () => {
  for (const s of ["it's", 'a b', '$HOME', '`x`', '"q"', "''", '']) {
    assert.equal(execFileSync('sh', ['-c', `printf %s ${shQuote(s)}`], { encoding: 'utf8' }), s);
  }
});

test('renderLauncher refuses relative paths and unknown kinds', () => {
  assert.throws(() => renderLauncher({ nodePath: 'node', bundlePath: '/x.cjs', kind: 'weft' }), /nodePath/);
  assert.throws(() => renderLauncher({ nodePath: '/usr/bin/node', bundlePath: 'x.cjs', kind: 'weft' }), /bundlePath/);
  assert.throws(() => renderLauncher({ nodePath: '/usr/bin/node', bundlePath: '/x\n.cjs', kind: 'weft' }), /bundlePath/);
  assert.throws(() => renderLauncher({ nodePath: '/usr/bin/node', bundlePath: '/x.cjs', kind: 'bridge' as never }), /kind/);
});

test('the launcher is a POSIX sh script that starts with a shebang', () => {
  const s = renderLauncher({ nodePath: '/usr/bin/node', bundlePath: '/opt/weft/weft-cni.cjs', kind: 'weft-ipam' });
  assert.ok(s.startsWith('#!/bin/sh\n'));
  assert.match(s, /exec '\/usr\/bin\/node' '\/opt\/weft\/weft-cni.cjs' "\$@"/);
  assert.match(s, /WEFT_PLUGIN_KIND='weft-ipam'/);
  const syntax = spawnSync('sh', ['-n'], { input: s });
  assert.equal(syntax.status, 0, syntax.stderr.toString());
});

test('launcher answers VERSION itself, identically to the Node plugin, without node', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-launcher-'));
  try {
    const file = join(dir, 'weft');
    // A nodePath that does not exist proves VERSION never reaches exec.
    writeFileSync(file, renderLauncher({ nodePath: '/nonexistent/node', bundlePath: '/nonexistent/weft-cni.cjs', kind: 'weft' }));
    chmodSync(file, 0o755);
    const r = spawnSync(file, [], { input: '{"cniVersion":"1.0.0"}', env: { PATH: process.env['PATH'], CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy' } });
    assert.equal(r.status, 0, r.stderr.toString());
    const node = await runPlugin('weft', { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}', noSend);
    assert.equal(r.stdout.toString(), node.stdout);
    assert.deepEqual(JSON.parse(r.stdout.toString()), { cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    // Also with a large stdin (drained, no EPIPE for the writer).
    const big = spawnSync(file, [], { input: 'x'.repeat(1 << 20), env: { PATH: process.env['PATH'], CNI_COMMAND: 'VERSION' } });
    assert.equal(big.error, undefined, 'writer saw an error (stdin not drained?)');
    assert.equal(big.status, 0);
    assert.equal(big.stdout.toString(), node.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('launcher execs node on the bundle for other verbs, with WEFT_PLUGIN_KIND, stdin and exit status', () => {
  const dir = mkdtempSync(join(tmpdir(), "weft launcher 'q' "));
  try {
    const bundle = join(dir, 'fake bundle.cjs');
    writeFileSync(bundle, [
      "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{",
      "process.stdout.write(JSON.stringify({kind:process.env.WEFT_PLUGIN_KIND,cmd:process.env.CNI_COMMAND,stdin:s,argv:process.argv.slice(2)}));",
      'process.exitCode=3;});',
    ].join('\n'));
    const file = join(dir, 'weft-ipam');
    writeFileSync(file, renderLauncher({ nodePath: process.execPath, bundlePath: bundle, kind: 'weft-ipam' }));
    chmodSync(file, 0o755);
    const r = spawnSync(file, ['--x'], { input: '{"a":1}', env: { PATH: process.env['PATH'], CNI_COMMAND: 'ADD' } });
    assert.equal(r.status, 3, r.stderr.toString());
    assert.deepEqual(JSON.parse(r.stdout.toString()), { kind: 'weft-ipam', cmd: 'ADD', stdin: '{"a":1}', argv: ['--x'] });
    // Unset CNI_COMMAND also goes to node (which reports code 4), not to the VERSION branch.
    const u = spawnSync(file, [], { input: '', env: { PATH: process.env['PATH'] } });
    assert.equal(JSON.parse(u.stdout.toString()).cmd, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
