/**
 * The built plugin bundle (dist/weft-cni.cjs, made by `npm run build`) run as
 * a real child process, the way a runtime runs it, against a fake daemon: a
 * node:http server on a temporary unix socket that records what it gets.
 * This proves the plugin's own I/O contract (env + stdin in, one request
 * out, stdout + exit status back); the daemon's behaviour is tested elsewhere.
 * Needs no root and touches no network namespace.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BUNDLE = join(ROOT, 'dist', 'weft-cni.cjs');
const META = join(ROOT, 'dist', 'weft-cni.meta.json');

interface Recorded { method: string; url: string; contentType: string | undefined; body: unknown }
type Reply = { status: number; body?: unknown };

let dir: string;
let socketPath: string;
let server: http.Server;
const recorded: Recorded[] = [];
let reply: (body: Record<string, unknown>) => Reply = () => ({ status: 200, body: {} });

before(async () => {
  assert.ok(existsSync(BUNDLE), `${BUNDLE} is missing: run \`npm run build\` first`);
  dir = mkdtempSync(join(tmpdir(), 'weft-cni-it-'));
  socketPath = join(dir, 'weft.sock');
  server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(text) as Record<string, unknown>;
      recorded.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], body });
      const r = reply(body);
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body === undefined ? '' : JSON.stringify(r.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs the plugin asynchronously (the fake daemon lives in this process, so spawnSync would deadlock). */
function run(env: Record<string, string>, stdin: string, opts: { file?: string; args?: string[] } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const file = opts.file ?? BUNDLE;
    const cmd = opts.file ? file : process.execPath;
    const args = opts.file ? opts.args ?? [] : [file, ...(opts.args ?? [])];
    // Only what a runtime would pass, plus PATH so `#!/usr/bin/env node` resolves.
    const child = spawn(cmd, args, { env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

function cniError(r: Run): { cniVersion: string; code: number; msg: string; details?: string } {
  assert.equal(r.code, 1, `exit status; stdout=${r.stdout} stderr=${r.stderr}`);
  return JSON.parse(r.stdout) as never;
}

const conf = (extra: Record<string, unknown> = {}): string => JSON.stringify({ cniVersion: '1.0.0', name: 'weftnet', type: 'weft', socket: socketPath, ...extra });
const ADD = { WEFT_PLUGIN_KIND: 'weft', CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/run/netns/wt-x', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web', CNI_PATH: '/opt/cni/bin' };

test('the bundle is executable and pulls in only the small plugin modules', () => {
  assert.ok(readFileSync(BUNDLE, 'utf8').startsWith('#!/usr/bin/env node\n'));
  const inputs = Object.keys((JSON.parse(readFileSync(META, 'utf8')) as { inputs: Record<string, unknown> }).inputs).sort();
  assert.deepEqual(inputs, [
    'src/bin/weft-cni.ts', 'src/client/unix-http.ts', 'src/cni/plugin.ts',
    'src/core/cni/args.ts', 'src/core/cni/env.ts', 'src/core/cni/error-json.ts', 'src/core/cni/protocol.ts', 'src/core/cni/syntax.ts', 'src/core/cni/versions.ts',
    'src/core/errors.ts', 'src/core/ip/addr.ts', 'src/core/ip/cidr.ts',
  ]);
});

test('VERSION', async () => {
  const n = recorded.length;
  const r = await run({ WEFT_PLUGIN_KIND: 'weft', CNI_COMMAND: 'VERSION', CNI_CONTAINERID: '', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy', CNI_ARGS: '' }, '{"cniVersion":"1.0.0"}');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  assert.equal(recorded.length, n, 'VERSION must not reach the daemon');
});

test('ADD: one POST /v1/cni with env and config; the result is printed as is', async () => {
  const result = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: '0a:58:0a:20:00:05', sandbox: '/run/netns/wt-x' }], ips: [{ interface: 0, address: '10.32.0.5/12', gateway: '10.32.0.1' }] };
  reply = () => ({ status: 200, body: { result } });
  recorded.length = 0;
  const stdin = conf({ subnet: 'blue' });
  const r = await run({ ...ADD, UNRELATED: 'x' }, stdin);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), result);
  assert.equal(recorded.length, 1);
  const rec = recorded[0]!;
  assert.equal(rec.method, 'POST');
  assert.equal(rec.url, '/v1/cni');
  assert.equal(rec.contentType, 'application/json');
  assert.deepEqual(rec.body, {
    plugin: 'weft', command: 'ADD',
    env: { containerId: 'c0ffee', netns: '/run/netns/wt-x', ifname: 'eth0', args: 'IgnoreUnknown=1;K8S_POD_NAME=web', path: '/opt/cni/bin' },
    config: JSON.parse(stdin),
  });
});

test('DEL with an empty netns (containerd) succeeds silently', async () => {
  reply = () => ({ status: 200, body: {} });
  recorded.length = 0;
  const r = await run({ ...ADD, CNI_COMMAND: 'DEL', CNI_NETNS: '', CNI_ARGS: '' }, conf());
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, '');
  assert.deepEqual((recorded[0]!.body as { env: unknown }).env, { containerId: 'c0ffee', ifname: 'eth0', path: '/opt/cni/bin' });
});

test('the plugin kind comes from --kind or the executable name too', async () => {
  reply = () => ({ status: 200, body: {} });
  recorded.length = 0;
  const { WEFT_PLUGIN_KIND: _drop, ...env } = ADD;
  const ipamConf = JSON.stringify({ cniVersion: '1.1.0', name: 'podnet', type: 'bridge', ipam: { type: 'weft-ipam', socket: socketPath } });
  const viaFlag = await run({ ...env, CNI_COMMAND: 'STATUS' }, ipamConf, { args: ['--kind=weft-ipam'] });
  assert.equal(viaFlag.code, 0, viaFlag.stdout);
  const link = join(dir, 'weft-ipam');
  symlinkSync(BUNDLE, link);
  const viaName = await run({ ...env, CNI_COMMAND: 'STATUS' }, ipamConf, { file: link });
  assert.equal(viaName.code, 0, viaName.stdout + viaName.stderr);
  assert.deepEqual(recorded.map((x) => (x.body as { plugin: string }).plugin), ['weft-ipam', 'weft-ipam']);
  const unknown = cniError(await run({ ...env, CNI_COMMAND: 'ADD' }, conf()));
  assert.equal(unknown.code, 4);
  assert.match(unknown.msg, /WEFT_PLUGIN_KIND/);
});

test('daemon errors are printed as CNI errors with their code', async () => {
  reply = () => ({ status: 409, body: { error: { cniCode: 100, code: 'SUBNET_EXHAUSTED', message: 'subnet blue is full', details: '254 of 254 in use' } } });
  const e = cniError(await run(ADD, conf({ cniVersion: '0.4.0' })));
  assert.deepEqual(e, { cniVersion: '0.4.0', code: 100, msg: 'subnet blue is full', details: '254 of 254 in use' });
});

test('daemon down: 11 for ADD/DEL, 50 for STATUS, naming the socket', async () => {
  const missing = join(dir, 'nobody-here.sock');
  const add = cniError(await run(ADD, conf({ socket: missing })));
  assert.equal(add.code, 11);
  assert.equal(add.msg, `weft router not reachable at ${missing}: is \`weft launch\` running?`);
  const del = cniError(await run({ ...ADD, CNI_COMMAND: 'DEL' }, conf({ socket: missing })));
  assert.equal(del.code, 11);
  const status = cniError(await run({ WEFT_PLUGIN_KIND: 'weft', CNI_COMMAND: 'STATUS' }, conf({ cniVersion: '1.1.0', socket: missing })));
  assert.equal(status.code, 50);
  assert.equal(status.cniVersion, '1.1.0');
  assert.match(status.msg, /not reachable/);
});

test('garbage, truncated or empty stdin is code 6', async () => {
  for (const stdin of ['not json at all', '{"cniVersion":"1.0.0","name":', '']) {
    const e = cniError(await run(ADD, stdin));
    assert.equal(e.code, 6, JSON.stringify(e));
    assert.equal(e.cniVersion, '1.1.0');
  }
});

test('missing environment is code 4 naming the variables', async () => {
  const { CNI_NETNS: _n, CNI_IFNAME: _i, ...env } = ADD;
  const e = cniError(await run(env, conf()));
  assert.equal(e.code, 4);
  assert.match(e.msg, /CNI_NETNS, CNI_IFNAME/);
  assert.equal(e.cniVersion, '1.0.0');
  const noCmd = cniError(await run({ WEFT_PLUGIN_KIND: 'weft' }, conf()));
  assert.equal(noCmd.code, 4);
  assert.match(noCmd.msg, /CNI_COMMAND/);
});
