import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseVethProgramming } from '../../src/adapters/kernel/netlink-select.js';

const ok = () => ({ ok: true as const });
const fail = (reason: string) => () => ({ ok: false as const, reason });
const never = () => {
  throw new Error('must not be loaded');
};

test('netlink when the addon and the package both load on Linux', () => {
  assert.deepEqual(chooseVethProgramming({ platform: 'linux', addon: ok, netlink: ok }), { mode: 'netlink' });
  assert.deepEqual(chooseVethProgramming({ platform: 'linux', env: 'on', option: true, addon: ok, netlink: ok }), { mode: 'netlink' });
});

test('falls back to ip(8) with the reason when either native piece is missing', () => {
  assert.deepEqual(chooseVethProgramming({ platform: 'linux', addon: fail('the setns addon is not built'), netlink: never }), { mode: 'ip', reason: 'the setns addon is not built' });
  assert.deepEqual(chooseVethProgramming({ platform: 'linux', addon: ok, netlink: fail('no prebuilt binary for s390x') }), { mode: 'ip', reason: 'no prebuilt binary for s390x' });
});

test('turned off by the caller or by WEFT_NETLINK: nothing native is even loaded', () => {
  assert.equal(chooseVethProgramming({ platform: 'linux', option: false, addon: never, netlink: never }).mode, 'ip');
  for (const env of ['0', 'off', 'OFF', 'false', 'no', ' off ']) {
    const r = chooseVethProgramming({ platform: 'linux', env, addon: never, netlink: never });
    assert.equal(r.mode, 'ip', env);
    assert.match(r.reason ?? '', /WEFT_NETLINK/);
  }
  assert.equal(chooseVethProgramming({ platform: 'linux', env: '', addon: ok, netlink: ok }).mode, 'netlink', 'empty = unset');
});

test('not Linux: ip(8) (which will not work either, but the reason is clear)', () => {
  const r = chooseVethProgramming({ platform: 'darwin', addon: never, netlink: never });
  assert.equal(r.mode, 'ip');
  assert.match(r.reason ?? '', /Linux/);
});
