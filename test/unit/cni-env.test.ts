import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWeftError } from '../../src/core/errors.js';
import { parseCommand, validateEnv } from '../../src/core/cni/env.js';

function throwsCni(fn: () => unknown, cniCode: number, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isWeftError(e), `not a WeftError: ${String(e)}`);
    assert.equal(e.cniCode, cniCode, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    return true;
  });
}

const FULL = { CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', CNI_ARGS: 'IgnoreUnknown=1' };

test('CNI_COMMAND: missing or unknown is code 4 naming the variable', () => {
  throwsCni(() => parseCommand(undefined), 4, 'CNI_COMMAND');
  throwsCni(() => parseCommand(''), 4, 'CNI_COMMAND');
  throwsCni(() => parseCommand('add'), 4, 'CNI_COMMAND', '"add"');
  throwsCni(() => parseCommand('FOO'), 4, 'unknown CNI_COMMAND "FOO"');
  throwsCni(() => validateEnv({}), 4, 'CNI_COMMAND');
  for (const c of ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION']) assert.equal(parseCommand(c), c);
});

// verb, the variables removed, expected missing names (undefined = accepted)
const REQUIRED_TABLE: [string, string[], string[] | undefined][] = [
  ['ADD', [], undefined],
  ['ADD', ['CNI_CONTAINERID'], ['CNI_CONTAINERID']],
  ['ADD', ['CNI_NETNS'], ['CNI_NETNS']],
  ['ADD', ['CNI_IFNAME'], ['CNI_IFNAME']],
  ['ADD', ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'], ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME']],
  ['ADD', ['CNI_PATH', 'CNI_ARGS'], undefined],
  ['CHECK', [], undefined],
  ['CHECK', ['CNI_NETNS'], ['CNI_NETNS']],
  ['CHECK', ['CNI_IFNAME'], ['CNI_IFNAME']],
  ['DEL', [], undefined],
  ['DEL', ['CNI_NETNS'], undefined],
  ['DEL', ['CNI_CONTAINERID'], ['CNI_CONTAINERID']],
  ['DEL', ['CNI_IFNAME'], ['CNI_IFNAME']],
  ['GC', ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH', 'CNI_ARGS'], undefined],
  ['STATUS', ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH', 'CNI_ARGS'], undefined],
  ['VERSION', ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH', 'CNI_ARGS'], undefined],
];

for (const [verb, removed, missing] of REQUIRED_TABLE) {
  for (const how of ['absent', 'empty'] as const) {
    test(`${verb} without ${removed.join(',') || 'nothing'} (${how}) → ${missing ? 'code 4' : 'ok'}`, () => {
      const env: Record<string, string | undefined> = { ...FULL, CNI_COMMAND: verb };
      for (const r of removed) {
        if (how === 'absent') delete env[r];
        else env[r] = '';
      }
      if (missing) throwsCni(() => validateEnv(env), 4, ...missing, `CNI_COMMAND=${verb}`);
      else assert.doesNotThrow(() => validateEnv(env));
    });
  }
}

test('ADD returns the validated fields; empty optional ones are dropped', () => {
  assert.deepEqual(validateEnv({ ...FULL, CNI_COMMAND: 'ADD' }), {
    command: 'ADD', containerId: 'c0ffee', netns: '/run/netns/x', ifname: 'eth0', args: 'IgnoreUnknown=1', path: '/opt/cni/bin',
  });
  assert.deepEqual(validateEnv({ ...FULL, CNI_COMMAND: 'DEL', CNI_NETNS: '', CNI_ARGS: '', CNI_PATH: '' }), { command: 'DEL', containerId: 'c0ffee', ifname: 'eth0' });
});

test('containerd DEL: empty netns, namespaced container id', () => {
  assert.deepEqual(validateEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'default-ra-ctr1', CNI_NETNS: '', CNI_IFNAME: 'eth0', CNI_ARGS: '' }), {
    command: 'DEL', containerId: 'default-ra-ctr1', ifname: 'eth0',
  });
});

test('podman VERSION with dummy values is accepted and ignores them', () => {
  assert.deepEqual(validateEnv({ CNI_COMMAND: 'VERSION', CNI_CONTAINERID: '', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy', CNI_ARGS: '' }), { command: 'VERSION' });
});

test('GC/STATUS ignore (and do not validate) container variables', () => {
  assert.deepEqual(validateEnv({ CNI_COMMAND: 'GC', CNI_CONTAINERID: 'bad id!', CNI_IFNAME: '..', CNI_PATH: '/opt/cni/bin' }), { command: 'GC', path: '/opt/cni/bin' });
  assert.deepEqual(validateEnv({ CNI_COMMAND: 'STATUS' }), { command: 'STATUS' });
});

test('container id charset', () => {
  const ok = ['a', 'A9', '0', 'f357322cb7016487', 'default-ra-ctr1', 'a_b.c-d', 'x'.repeat(200)];
  const bad = ['-a', '_a', '.a', 'a b', 'a/b', 'a:b', 'ä', 'a;b'];
  for (const id of ok) assert.equal(validateEnv({ ...FULL, CNI_COMMAND: 'ADD', CNI_CONTAINERID: id }).containerId, id);
  for (const id of bad) throwsCni(() => validateEnv({ ...FULL, CNI_COMMAND: 'ADD', CNI_CONTAINERID: id }), 4, 'CNI_CONTAINERID', JSON.stringify(id), 'invalid characters');
});

test('interface name rules (libskel ValidateInterfaceName)', () => {
  const ok = ['eth0', 'e', 'x'.repeat(15), 'net1.100', 'veth-a_b', 'é'.repeat(7)];
  for (const n of ok) assert.equal(validateEnv({ ...FULL, CNI_COMMAND: 'CHECK', CNI_IFNAME: n }).ifname, n);
  const bad: [string, string][] = [
    ['x'.repeat(16), 'longer than 15'],
    ['é'.repeat(8), 'longer than 15'],
    ['.', '"." or ".."'],
    ['..', '"." or ".."'],
    ['a/b', 'whitespace'],
    ['a:b', 'whitespace'],
    ['a b', 'whitespace'],
    ['a\tb', 'whitespace'],
    ['a\u00a0b', 'whitespace'],
  ];
  for (const [n, why] of bad) {
    for (const verb of ['ADD', 'CHECK', 'DEL']) throwsCni(() => validateEnv({ ...FULL, CNI_COMMAND: verb, CNI_IFNAME: n }), 4, 'CNI_IFNAME', why);
  }
});

test('CNI_NETNS must be absolute', () => {
  assert.equal(validateEnv({ ...FULL, CNI_COMMAND: 'ADD', CNI_NETNS: '/proc/14752/ns/net' }).netns, '/proc/14752/ns/net');
  throwsCni(() => validateEnv({ ...FULL, CNI_COMMAND: 'ADD', CNI_NETNS: 'netns-1' }), 4, 'CNI_NETNS', '"netns-1"', 'absolute');
  throwsCni(() => validateEnv({ ...FULL, CNI_COMMAND: 'DEL', CNI_NETNS: 'dummy' }), 4, 'CNI_NETNS');
});
