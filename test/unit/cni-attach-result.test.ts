import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipamResultOf, mainResultOf, mergeDns } from '../../src/core/cni/attach-result.js';
import { containerSideComplete } from '../../src/core/dataplane/interrupted-add.js';

const rec = {
  ifname: 'eth0', netns: '/run/netns/c1', ips: [{ address: '10.32.0.5/12', gateway: '10.32.0.1' }, { address: 'fd00::5/64' }],
  bridge: 'weft', hostIfname: 'wv1', mtu: 1400, routes: [{ dst: '0.0.0.0/0' }], dns: { nameservers: ['10.32.0.1'] },
};

test('mainResultOf: bridge mode lists bridge, host end, container end; ips point at the container end', () => {
  const r = mainResultOf({ ...rec, mode: 'bridge' }, { container: '02:00:00:00:00:01', host: '02:00:00:00:00:02', bridge: '02:00:00:00:00:03' });
  assert.deepEqual(r.interfaces, [
    { name: 'weft', mac: '02:00:00:00:00:03' },
    { name: 'wv1', mac: '02:00:00:00:00:02' },
    { name: 'eth0', mac: '02:00:00:00:00:01', mtu: 1400, sandbox: '/run/netns/c1' },
  ]);
  assert.deepEqual(r.ips, [{ address: '10.32.0.5/12', gateway: '10.32.0.1', interface: 2 }, { address: 'fd00::5/64', interface: 2 }]);
  assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0' }]);
  assert.deepEqual(r.dns, { nameservers: ['10.32.0.1'] });
  // A MAC the kernel did not report is left out, not invented.
  assert.deepEqual(mainResultOf({ ...rec, mode: 'bridge' }, { container: 'c' }).interfaces.slice(0, 2), [{ name: 'weft' }, { name: 'wv1' }]);
});

test('mainResultOf: macvlan has the container end only; ipamResultOf has no interfaces', () => {
  const r = mainResultOf({ ...rec, mode: 'macvlan' }, { container: 'c' });
  assert.equal(r.interfaces.length, 1);
  assert.ok(r.ips.every((i) => i.interface === 0));
  const i = ipamResultOf({ ...rec, mode: 'ipam', routes: undefined, dns: undefined });
  assert.deepEqual(i, { ips: [{ address: '10.32.0.5/12', gateway: '10.32.0.1' }, { address: 'fd00::5/64' }], routes: [], dns: {} });
});

test('mergeDns: later layers replace the fields they set', () => {
  assert.deepEqual(mergeDns([{ nameservers: ['1.1.1.1'], search: ['a'] }, { nameservers: [], domain: 'd' }, { search: ['b'], options: ['ndots:2'] }]),
    { nameservers: ['1.1.1.1'], search: ['b'], domain: 'd', options: ['ndots:2'] });
});

test('containerSideComplete: up, every address, every route (default written either way)', () => {
  const st = { ifname: 'eth0', mac: 'm', up: true, mtu: 1500, addresses: ['10.32.0.5/12', 'fd00::5/64'], routes: [{ dst: '0.0.0.0/0', gw: '10.32.0.1' }, { dst: '10.99.0.0/16' }] };
  const want = { addresses: ['10.32.0.5/12'], routes: [{ dst: '0.0.0.0/0' }, { dst: '10.99.0.0/16' }] };
  assert.equal(containerSideComplete(want, st), true);
  assert.equal(containerSideComplete(want, { ...st, routes: [{ dst: 'default' }, { dst: '10.99.0.0/16' }] }), true);
  assert.equal(containerSideComplete(want, { ...st, up: false }), false);
  assert.equal(containerSideComplete(want, { ...st, addresses: [] }), false);
  assert.equal(containerSideComplete(want, { ...st, routes: [{ dst: '0.0.0.0/0' }] }), false);
  assert.equal(containerSideComplete({ addresses: [], routes: [{ dst: 'not a prefix' }] }, st), false);
  assert.equal(containerSideComplete(want, undefined), false);
});
