import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidEnvError, UnsupportedFieldError, isWeftError } from '../../src/core/errors.js';
import { parseCniArgs } from '../../src/core/cni/args.js';

function throwsCni(fn: () => unknown, cniCode: number, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isWeftError(e), `not a WeftError: ${String(e)}`);
    assert.equal(e.cniCode, cniCode, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    return true;
  });
}

test('empty and absent CNI_ARGS', () => {
  const empty = { ignoreUnknown: false, ips: [], ignored: {} };
  assert.deepEqual(parseCniArgs(undefined), empty);
  assert.deepEqual(parseCniArgs(''), empty);
  assert.deepEqual(parseCniArgs(';'), empty);
});

test('what podman sends with --ip and --mac-address', () => {
  assert.deepEqual(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=nostalgic_gauss;MAC=02:00:00:00:00:50;IP=10.250.1.50'), {
    ignoreUnknown: true, ips: ['10.250.1.50'], mac: '02:00:00:00:00:50', k8sPodName: 'nostalgic_gauss', ignored: {},
  });
});

test('all known keys', () => {
  const a = parseCniArgs('K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=u-1;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_NETWORK=net;IP=10.0.0.1/24,fd00::1;MAC=0A:BB:CC:DD:EE:FF');
  assert.deepEqual(a, {
    ignoreUnknown: false, ips: ['10.0.0.1/24', 'fd00::1'], mac: '0a:bb:cc:dd:ee:ff',
    k8sPodNamespace: 'ns', k8sPodName: 'p', k8sPodUid: 'u-1', k8sPodInfraContainerId: 'abc', k8sPodNetwork: 'net', ignored: {},
  });
});

test('IgnoreUnknown accepts 1/true in any case and 0/false; other values are code 4', () => {
  for (const v of ['1', 'true', 'True', 'TRUE']) assert.equal(parseCniArgs(`IgnoreUnknown=${v}`).ignoreUnknown, true, v);
  for (const v of ['0', 'false', 'False']) assert.equal(parseCniArgs(`IgnoreUnknown=${v}`).ignoreUnknown, false, v);
  throwsCni(() => parseCniArgs('IgnoreUnknown=yes'), 4, 'CNI_ARGS', 'IgnoreUnknown="yes"');
});

test('unknown keys: code 2 naming key and value, unless IgnoreUnknown (in any position)', () => {
  throwsCni(() => parseCniArgs('FOO=bar'), 2, 'CNI_ARGS', 'FOO="bar"');
  throwsCni(() => parseCniArgs('FOO=bar;BAZ=1'), 2, 'FOO="bar"', 'BAZ="1"');
  assert.throws(() => parseCniArgs('FOO=bar;IgnoreUnknown=0'), UnsupportedFieldError);
  assert.deepEqual(parseCniArgs('FOO=bar;IgnoreUnknown=1').ignored, { FOO: 'bar' });
  assert.deepEqual(parseCniArgs('IgnoreUnknown=true;FOO=bar').ignored, { FOO: 'bar' });
  // Keys are case-sensitive, as in libcni.
  throwsCni(() => parseCniArgs('ip=10.0.0.1'), 2, 'ip="10.0.0.1"');
  throwsCni(() => parseCniArgs('ignoreunknown=1;X=1'), 2, 'ignoreunknown');
});

test('malformed pairs are code 4 naming CNI_ARGS and the pair', () => {
  for (const s of ['FOO', 'A=1;B', 'A=b=c', '=1', 'IP==10.0.0.1']) throwsCni(() => parseCniArgs(s), 4, 'CNI_ARGS', 'invalid pair');
  assert.throws(() => parseCniArgs('noequals'), InvalidEnvError);
});

test('the last occurrence of a key wins', () => {
  assert.deepEqual(parseCniArgs('IP=10.0.0.1;IP=10.0.0.2').ips, ['10.0.0.2']);
  assert.equal(parseCniArgs('K8S_POD_NAME=a;K8S_POD_NAME=b').k8sPodName, 'b');
});

test('IP values are validated', () => {
  for (const s of ['IP=', 'IP=10.0.0', 'IP=10.0.0.1/33', 'IP=10.0.0.1,', 'IP=host', 'IP=10.0.0.1,fd00::zz']) throwsCni(() => parseCniArgs(s), 4, 'CNI_ARGS', 'IP=', 'not an IP address');
  assert.deepEqual(parseCniArgs('IP=10.0.0.1, 10.0.0.2').ips, ['10.0.0.1', '10.0.0.2']);
});

test('MAC values are validated', () => {
  throwsCni(() => parseCniArgs('MAC=02:00:00:00:00'), 4, 'MAC="02:00:00:00:00"', 'not a MAC');
  throwsCni(() => parseCniArgs('MAC=0200.0000.0050'), 4, 'not a MAC');
  throwsCni(() => parseCniArgs('MAC=01:00:5e:00:00:01'), 4, 'multicast');
  throwsCni(() => parseCniArgs('MAC='), 4, 'MAC=""');
});
