import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CniRequest } from '../../src/core/cni/protocol.js';
import { type PluginDeps, runPlugin, stdinFailure } from '../../src/cni/plugin.js';

interface Call { socket: string; req: CniRequest }

function fakeDaemon(answer: (req: CniRequest) => { status: number; body: unknown } | Error): PluginDeps & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    send(socket, req) {
      calls.push({ socket, req: JSON.parse(JSON.stringify(req)) as CniRequest });
      const a = answer(req);
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    },
  };
}

function sysError(code: string): Error {
  return Object.assign(new Error(`connect ${code} /x.sock`), { code });
}

const RESULT = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/run/netns/x' }], ips: [{ address: '10.32.0.2/12', interface: 0 }] };
const okAdd = (): { status: number; body: unknown } => ({ status: 200, body: { result: RESULT } });

const CONF = { cniVersion: '1.0.0', name: 'weftnet', type: 'weft' };
const ADD_ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web' };

function parseErr(stdout: string): { cniVersion: string; code: number; msg: string; details?: string } {
  assert.ok(stdout.endsWith('\n'), 'error output is newline-terminated');
  return JSON.parse(stdout) as never;
}

async function expectError(p: Promise<{ stdout: string; exitCode: number }>, code: number, cniVersion: string, ...fragments: string[]): Promise<void> {
  const out = await p;
  assert.equal(out.exitCode, 1, out.stdout);
  const e = parseErr(out.stdout);
  assert.equal(e.code, code, out.stdout);
  assert.equal(e.cniVersion, cniVersion, out.stdout);
  for (const f of fragments) assert.ok(`${e.msg} ${e.details ?? ''}`.includes(f), `${out.stdout} lacks "${f}"`);
}

test('VERSION is answered locally, whatever stdin holds', async () => {
  const d = fakeDaemon(okAdd);
  for (const stdin of ['{"cniVersion":"1.0.0"}', '', 'garbage']) {
    const out = await runPlugin('weft', { CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy', CNI_CONTAINERID: '' }, stdin, d);
    assert.equal(out.exitCode, 0);
    assert.equal(out.stdout, '{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n');
  }
  assert.equal(d.calls.length, 0);
});

test('ADD forwards env and the decoded config to the default socket and prints the result', async () => {
  const d = fakeDaemon(okAdd);
  const conf = { ...CONF, subnet: 'blue', prevResult: { cniVersion: '1.0.0' } };
  const out = await runPlugin('weft', { ...ADD_ENV, HOME: '/root' }, JSON.stringify(conf), d);
  assert.equal(out.exitCode, 0, out.stdout);
  assert.equal(out.stdout, `${JSON.stringify(RESULT)}\n`);
  assert.deepEqual(d.calls, [{
    socket: '/run/weft/weft.sock',
    req: {
      plugin: 'weft', command: 'ADD',
      env: { containerId: 'c1', netns: '/run/netns/x', ifname: 'eth0', args: 'IgnoreUnknown=1;K8S_POD_NAME=web', path: '/opt/cni/bin' },
      config: conf,
    },
  }]);
});

test('socket comes from `socket` (weft) or `ipam.socket` (weft-ipam)', async () => {
  const d = fakeDaemon(okAdd);
  await runPlugin('weft', ADD_ENV, JSON.stringify({ ...CONF, socket: '/tmp/w.sock' }), d);
  await runPlugin('weft-ipam', ADD_ENV, JSON.stringify({ ...CONF, type: 'bridge', socket: '/ignored.sock', ipam: { type: 'weft-ipam', socket: '/tmp/i.sock' } }), d);
  await runPlugin('weft-ipam', ADD_ENV, JSON.stringify({ ...CONF, type: 'bridge', ipam: { type: 'weft-ipam' } }), d);
  assert.deepEqual(d.calls.map((c) => [c.socket, c.req.plugin]), [['/tmp/w.sock', 'weft'], ['/tmp/i.sock', 'weft-ipam'], ['/run/weft/weft.sock', 'weft-ipam']]);
  await expectError(runPlugin('weft', ADD_ENV, JSON.stringify({ ...CONF, socket: 'w.sock' }), d), 7, '1.0.0', 'socket', 'absolute');
  await expectError(runPlugin('weft', ADD_ENV, JSON.stringify({ ...CONF, socket: 1 }), d), 7, '1.0.0', 'socket');
  await expectError(runPlugin('weft-ipam', ADD_ENV, JSON.stringify({ ...CONF, type: 'bridge' }), d), 7, '1.0.0', 'ipam');
  await expectError(runPlugin('weft-ipam', ADD_ENV, JSON.stringify({ ...CONF, type: 'bridge', ipam: { type: 'weft-ipam', socket: '' } }), d), 7, '1.0.0', 'ipam.socket');
  assert.equal(d.calls.length, 3);
});

test('DEL/CHECK/GC/STATUS print nothing on success; DEL with empty netns omits it', async () => {
  const d = fakeDaemon(() => ({ status: 200, body: {} }));
  const v11 = JSON.stringify({ ...CONF, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] });
  for (const [env, stdin] of [
    [{ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'default-c1', CNI_NETNS: '', CNI_IFNAME: 'eth0', CNI_ARGS: '' }, JSON.stringify(CONF)],
    [{ ...ADD_ENV, CNI_COMMAND: 'CHECK' }, JSON.stringify(CONF)],
    [{ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, v11],
    [{ CNI_COMMAND: 'STATUS' }, v11],
  ] as const) {
    const out = await runPlugin('weft', env, stdin, d);
    assert.deepEqual(out, { stdout: '', exitCode: 0 }, env.CNI_COMMAND);
  }
  assert.deepEqual(d.calls.map((c) => [c.req.command, c.req.env]), [
    ['DEL', { containerId: 'default-c1', ifname: 'eth0' }],
    ['CHECK', { containerId: 'c1', netns: '/run/netns/x', ifname: 'eth0', args: 'IgnoreUnknown=1;K8S_POD_NAME=web', path: '/opt/cni/bin' }],
    ['GC', { path: '/opt/cni/bin' }],
    ['STATUS', {}],
  ]);
});

test('stdin problems are code 6 with a clear message (and reach no daemon)', async () => {
  const d = fakeDaemon(okAdd);
  await expectError(runPlugin('weft', ADD_ENV, '', d), 6, '1.1.0', 'empty input');
  await expectError(runPlugin('weft', ADD_ENV, '  \n', d), 6, '1.1.0', 'empty input');
  await expectError(runPlugin('weft', ADD_ENV, '{"cniVersion":"1.0.0","na', d), 6, '1.1.0', 'not valid JSON', '{\\"cniVersion');
  await expectError(runPlugin('weft', ADD_ENV, 'hello', d), 6, '1.1.0', 'not valid JSON');
  await expectError(runPlugin('weft', ADD_ENV, '[1,2]', d), 6, '1.1.0', 'JSON object', 'an array');
  await expectError(runPlugin('weft', ADD_ENV, 'null', d), 6, '1.1.0', 'JSON object', 'null');
  await expectError(runPlugin('weft', ADD_ENV, '42', d), 6, '1.1.0', 'number');
  assert.equal(d.calls.length, 0);
});

test('a stdin read failure is code 5', () => {
  const out = stdinFailure(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
  assert.equal(out.exitCode, 1);
  const e = parseErr(out.stdout);
  assert.equal(e.code, 5);
  assert.match(e.msg, /stdin.*EIO/);
});

test('environment problems are code 4 naming the variable, labelled with the config version', async () => {
  const d = fakeDaemon(okAdd);
  const conf = JSON.stringify({ ...CONF, cniVersion: '0.4.0' });
  await expectError(runPlugin('weft', {}, conf, d), 4, '1.1.0', 'CNI_COMMAND');
  await expectError(runPlugin('weft', { CNI_COMMAND: 'BOGUS' }, conf, d), 4, '1.1.0', 'CNI_COMMAND', 'BOGUS');
  // Unknown verb is reported even when stdin is garbage.
  await expectError(runPlugin('weft', { CNI_COMMAND: 'BOGUS' }, 'garbage', d), 4, '1.1.0', 'BOGUS');
  await expectError(runPlugin('weft', { ...ADD_ENV, CNI_NETNS: '' }, conf, d), 4, '0.4.0', 'CNI_NETNS');
  await expectError(runPlugin('weft', { ...ADD_ENV, CNI_CONTAINERID: undefined }, conf, d), 4, '0.4.0', 'CNI_CONTAINERID');
  await expectError(runPlugin('weft', { ...ADD_ENV, CNI_IFNAME: 'a-very-long-ifname' }, conf, d), 4, '0.4.0', 'CNI_IFNAME');
  await expectError(runPlugin('weft', { ...ADD_ENV, CNI_CONTAINERID: 'no spaces' }, conf, d), 4, '0.4.0', 'CNI_CONTAINERID');
  assert.equal(d.calls.length, 0);
});

test('CNI_ARGS is checked for ADD/CHECK (unknown key 2, malformed 4) but not DEL, which must always be able to clean up', async () => {
  const d = fakeDaemon(okAdd);
  const conf = JSON.stringify(CONF);
  await expectError(runPlugin('weft', { ...ADD_ENV, CNI_ARGS: 'FOO=bar' }, conf, d), 2, '1.0.0', 'FOO="bar"');
  await expectError(runPlugin('weft', { ...ADD_ENV, CNI_COMMAND: 'CHECK', CNI_ARGS: 'junk' }, JSON.stringify({ ...CONF, prevResult: { cniVersion: '1.0.0', ips: [] } }), d), 4, '1.0.0', 'CNI_ARGS');
  await expectError(runPlugin('weft', { ...ADD_ENV, CNI_ARGS: 'IP=10.0.0.300' }, conf, d), 4, '1.0.0', 'CNI_ARGS', 'IP=');
  assert.equal(d.calls.length, 0);
  const del = await runPlugin('weft', { ...ADD_ENV, CNI_COMMAND: 'DEL', CNI_ARGS: 'MAC=zz:zz' }, conf, d);
  assert.equal(del.exitCode, 0, del.stdout);
  assert.equal(d.calls.length, 1);
});

test('name and version checks: 7 and 1, like libskel', async () => {
  const d = fakeDaemon(okAdd);
  await expectError(runPlugin('weft', ADD_ENV, JSON.stringify({ cniVersion: '1.0.0', type: 'weft' }), d), 7, '1.0.0', 'name');
  await expectError(runPlugin('weft', ADD_ENV, JSON.stringify({ ...CONF, name: 'a b' }), d), 7, '1.0.0', 'name', '"a b"');
  await expectError(runPlugin('weft', ADD_ENV, JSON.stringify({ ...CONF, name: 7 }), d), 7, '1.0.0', 'name');
  await expectError(runPlugin('weft', ADD_ENV, JSON.stringify({ ...CONF, cniVersion: '0.2.0' }), d), 1, '0.2.0', '"0.2.0"');
  await expectError(runPlugin('weft', ADD_ENV, JSON.stringify({ name: 'n', type: 'weft' }), d), 1, '1.1.0', 'no cniVersion');
  await expectError(runPlugin('weft', { ...ADD_ENV, CNI_COMMAND: 'CHECK' }, JSON.stringify({ ...CONF, cniVersion: '0.3.1' }), d), 1, '0.3.1', 'CHECK', '0.4.0');
  await expectError(runPlugin('weft', { CNI_COMMAND: 'GC' }, JSON.stringify(CONF), d), 1, '1.0.0', 'GC', '1.1.0');
  await expectError(runPlugin('weft', { CNI_COMMAND: 'STATUS' }, JSON.stringify({ ...CONF, cniVersion: '0.4.0' }), d), 1, '0.4.0', 'STATUS');
  assert.equal(d.calls.length, 0);
});

test('cniVersions: the negotiated version labels errors', async () => {
  const d = fakeDaemon(() => ({ status: 409, body: { error: { cniCode: 100, code: 'SUBNET_EXHAUSTED', message: 'full' } } }));
  await expectError(runPlugin('weft', ADD_ENV, JSON.stringify({ name: 'n', type: 'weft', cniVersions: ['0.4.0', '1.1.0'] }), d), 100, '1.1.0', 'full');
});

test('daemon errors are passed through with their code, message and details', async () => {
  const d = fakeDaemon(() => ({ status: 409, body: { error: { cniCode: 101, code: 'ADDRESS_UNAVAILABLE', message: '10.32.0.9 is taken', details: 'by c7/eth0' } } }));
  const out = await runPlugin('weft', ADD_ENV, JSON.stringify({ ...CONF, cniVersion: '0.4.0' }), d);
  assert.equal(out.exitCode, 1);
  assert.deepEqual(parseErr(out.stdout), { cniVersion: '0.4.0', code: 101, msg: '10.32.0.9 is taken', details: 'by c7/eth0' });
});

test('odd daemon answers become code 999', async () => {
  for (const [status, body, frag] of [
    [500, undefined, 'HTTP 500'],
    [502, { message: 'no' }, 'HTTP 502'],
    [400, { error: { cniCode: 'x', message: 'y' } }, 'HTTP 400'],
    [200, {}, 'without a result'],
    [200, { result: 'str' }, 'without a result'],
  ] as const) {
    const d = fakeDaemon(() => ({ status, body }));
    await expectError(runPlugin('weft', ADD_ENV, JSON.stringify(CONF), d), 999, '1.0.0', frag);
  }
});

test('transport failures: unreachable is 11 (50 for STATUS), with the socket and a hint', async () => {
  const conf11 = JSON.stringify({ ...CONF, cniVersion: '1.1.0', socket: '/run/w/x.sock' });
  for (const code of ['ENOENT', 'ECONNREFUSED']) {
    const d = fakeDaemon(() => sysError(code));
    for (const env of [ADD_ENV, { ...ADD_ENV, CNI_COMMAND: 'DEL' }, { ...ADD_ENV, CNI_COMMAND: 'CHECK' }, { CNI_COMMAND: 'GC' }]) {
      const stdin = env.CNI_COMMAND === 'GC' ? JSON.stringify({ ...JSON.parse(conf11), 'cni.dev/valid-attachments': [] }) : conf11;
      await expectError(runPlugin('weft', env, stdin, d), 11, '1.1.0', 'weft router not reachable at /run/w/x.sock: is `weft launch` running?', code);
    }
    await expectError(runPlugin('weft', { CNI_COMMAND: 'STATUS' }, conf11, d), 50, '1.1.0', 'weft router not reachable at /run/w/x.sock: is `weft launch` running?');
  }
  await expectError(runPlugin('weft', ADD_ENV, conf11, fakeDaemon(() => sysError('EACCES'))), 103, '1.1.0', 'permission denied', '/run/w/x.sock');
  await expectError(runPlugin('weft', ADD_ENV, conf11, fakeDaemon(() => sysError('ETIMEDOUT'))), 11, '1.1.0', 'did not answer in time');
  await expectError(runPlugin('weft', ADD_ENV, conf11, fakeDaemon(() => sysError('ECONNRESET'))), 11, '1.1.0', 'closed the connection');
  await expectError(runPlugin('weft', ADD_ENV, conf11, fakeDaemon(() => sysError('EBADRESPONSE'))), 999, '1.1.0', 'unreadable');
  await expectError(runPlugin('weft', ADD_ENV, conf11, fakeDaemon(() => sysError('EWHATEVER'))), 5, '1.1.0', '/run/w/x.sock');
  await expectError(runPlugin('weft', ADD_ENV, conf11, fakeDaemon(() => new Error('plain'))), 5, '1.1.0', 'plain');
});
