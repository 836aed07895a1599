/** Pure parts of the kernel adapter, testable without root. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatCommand, inNetns, isNsenterFailure, runCommand } from '../../src/adapters/kernel/exec.js';
import { IpCommandError, failedBatchLine, failedBatchLines, isAlreadyExists, isNetnsUnusable, isNoSuchDevice } from '../../src/adapters/kernel/ip-runner.js';
import { isNetns } from '../../src/adapters/kernel/netns.js';
import { sysctlPath } from '../../src/adapters/kernel/sysctl.js';
import { KeyedSerializer } from '../../src/adapters/kernel/serial.js';
import { FeatureUnavailableError, InternalError, KernelError } from '../../src/core/errors.js';

test('isNetns: /proc/self/ns/net yes; files, dirs, other ns types, missing no', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-netns-'));
  try {
    const file = join(dir, 'f');
    writeFileSync(file, '');
    symlinkSync('/proc/self/ns/net', join(dir, 'link'));
    assert.equal(isNetns('/proc/self/ns/net'), true);
    assert.equal(isNetns(`/proc/${process.pid}/ns/net`), true);
    assert.equal(isNetns(join(dir, 'link')), true, 'a plain symlink to a netns is followed');
    assert.equal(isNetns('/proc/self/ns/uts'), false);
    assert.equal(isNetns('/proc/self/ns/mnt'), false);
    assert.equal(isNetns(file), false);
    assert.equal(isNetns(dir), false);
    assert.equal(isNetns(join(dir, 'missing')), false);
    assert.equal(isNetns('relative'), false);
    assert.equal(isNetns(''), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('inNetns wraps with nsenter, or not at all', () => {
  assert.deepEqual(inNetns(undefined, 'ip', ['-j', 'link']), { cmd: 'ip', args: ['-j', 'link'] });
  assert.deepEqual(inNetns('/proc/1/ns/net', 'ip', ['link']), { cmd: 'nsenter', args: ['--net=/proc/1/ns/net', '--', 'ip', 'link'] });
  assert.equal(formatCommand('ip', ['link', 'a b']), "ip link 'a b'");
});

test('batch failure lines and error classification', () => {
  const stderr = 'Error: Unknown device type.\nCommand failed -:4\nError: x\nCommand failed -:6\n';
  assert.equal(failedBatchLine(stderr), 4);
  assert.deepEqual(failedBatchLines(stderr), [4, 6]);
  assert.equal(failedBatchLine('nothing'), undefined);
  const e = new IpCommandError({ command: 'ip -batch -', stderr: 'RTNETLINK answers: File exists\nCommand failed -:1\n', failedLine: 'link add x type veth', netns: '/run/netns/c' });
  assert.ok(e instanceof KernelError);
  assert.equal(e.message, 'ip: "link add x type veth" failed in netns /run/netns/c: RTNETLINK answers: File exists');
  assert.ok(isAlreadyExists(e));
  assert.ok(!isNoSuchDevice(e));
  assert.ok(isNoSuchDevice(new IpCommandError({ command: 'ip', stderr: 'Cannot find device "x"\n' })));
  assert.ok(isNoSuchDevice(new IpCommandError({ command: 'ip', stderr: 'Device "eth9" does not exist.\n' })));
  const gone = new IpCommandError({ command: 'nsenter', stderr: "nsenter: reassociate to namespace 'ns/net' failed: Invalid argument\n" });
  assert.ok(isNetnsUnusable(gone));
  assert.ok(!isNoSuchDevice(gone));
  assert.ok(isNsenterFailure('nsenter: cannot open /proc/9/ns/net: No such file or directory'));
  assert.ok(!isNsenterFailure('nsenter: failed to execute ip: No such file or directory'));
});

test('runCommand: missing binary is FeatureUnavailableError; exit codes are returned', async () => {
  await assert.rejects(runCommand('weft-no-such-binary', []), FeatureUnavailableError);
  const r = await runCommand('sh', ['-c', 'cat; echo err >&2; exit 3'], { input: 'hello' });
  assert.deepEqual([r.code, r.stdout, r.stderr], [3, 'hello', 'err\n']);
  await assert.rejects(runCommand('sleep', ['5'], { timeoutMs: 100 }), (e: unknown) => e instanceof KernelError && /did not finish/.test(e.message));
});

test('sysctlPath accepts only per-netns keys', () => {
  assert.equal(sysctlPath('net.ipv4.ip_forward'), '/proc/sys/net/ipv4/ip_forward');
  assert.equal(sysctlPath('net/ipv6/conf/all/forwarding'), '/proc/sys/net/ipv6/conf/all/forwarding');
  for (const bad of ['kernel.hostname', 'net/../kernel/x', 'vm/swappiness', 'net//x', 'net/ipv4/ip forward']) assert.throws(() => sysctlPath(bad), InternalError, bad);
});

test('KeyedSerializer runs one key at a time, other keys in parallel, survives failures', async () => {
  const s = new KeyedSerializer();
  const log: string[] = [];
  const step = (k: string, n: number, fail = false) => s.run(k, async () => {
    log.push(`start ${k}${n}`);
    await new Promise((r) => setTimeout(r, 10));
    log.push(`end ${k}${n}`);
    if (fail) throw new Error('boom');
    return n;
  });
  const all = await Promise.allSettled([step('a', 1, true), step('a', 2), step('b', 1)]);
  assert.equal(all[0].status, 'rejected');
  assert.deepEqual(all[1], { status: 'fulfilled', value: 2 });
  assert.ok(log.indexOf('end a1') < log.indexOf('start a2'));
  assert.ok(log.indexOf('start b1') < log.indexOf('end a1'));
});
