/**
 * POST /v1/cni/raw (src/daemon/cni-raw.ts) against the Node plugin: the
 * daemon's real router (buildRouter) on a temp unix socket with a fake CNI
 * handler, driven once the way the bundle does (runPlugin + request() to
 * /v1/cni) and once the way the sh launcher does (stdin as the body, CNI_* as
 * headers). For every input the printed bytes, the exit status and what the
 * handler was asked must be the same.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, createServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from '../../src/client/unix-http.js';
import { type PluginOutput, runPlugin } from '../../src/cni/plugin.js';
import { CNI_ENDPOINT, type CniRequest, DAEMON_TIMEOUT_MS, type PluginKind, RAW_ENV_HEADERS, RAW_OUTPUT_TYPE } from '../../src/core/cni/protocol.js';
import { CheckFailedError, DegradedError, InterfaceExistsError, NotAvailableError, isWeftError } from '../../src/core/errors.js';
import { buildRouter } from '../../src/daemon/api.js';
import { parseRawRequest, rawReply, runRawCni } from '../../src/daemon/cni-raw.js';
import { MAX_BODY } from '../../src/daemon/http-router.js';
import type { IpamService } from '../../src/daemon/ipam-service.js';
import { silentLogger } from '../../src/daemon/logger.js';
import type { Metrics } from '../../src/daemon/metrics.js';

type Behave = (req: CniRequest) => Promise<unknown>;

let dir: string;
let sock: string;
let server: Server;
const asked: CniRequest[] = [];
let behave: Behave = () => Promise.resolve(undefined);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-raw-'));
  sock = join(dir, 'weft.sock');
  const router = buildRouter({
    ipam: {} as IpamService,
    metrics: {} as Metrics,
    status: { status: () => Promise.resolve({}), attachments: () => [] },
    cni: { handle: (req) => { asked.push(req); return behave(req); } },
  });
  server = createServer((req, res) => { void router.handle(req, res, silentLogger); });
  await new Promise<void>((r) => server.listen(sock, r));
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

/** The Node plugin, exactly as src/bin/weft-cni.ts wires it. */
function viaBundle(kind: PluginKind, env: Record<string, string>, stdin: string, timeoutMs = DAEMON_TIMEOUT_MS): Promise<PluginOutput> {
  return runPlugin(kind, env, stdin, { send: (socketPath, req) => request({ socketPath, method: 'POST', path: CNI_ENDPOINT, body: req, timeoutMs }) });
}

interface RawAnswer { status: number; type: string; exitHeader: string | undefined; text: string }

/** What the sh launcher sends: stdin as the body, each set CNI_* variable as a header. */
function viaRaw(kind: PluginKind, env: Record<string, string>, stdin: string | Buffer, over: Record<string, string> = {}): Promise<RawAnswer> {
  const headers: Record<string, string> = { 'x-weft-plugin': kind, 'x-weft-socket': sock, 'content-type': 'application/octet-stream', ...over };
  for (const [name, h] of RAW_ENV_HEADERS) if (env[name] !== undefined) headers[h] = env[name];
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: sock, method: 'POST', path: '/v1/cni/raw', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', exitHeader: res.headers['x-cni-exit'] as string | undefined, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(stdin);
  });
}

function asOutput(a: RawAnswer): PluginOutput {
  const m = new RegExp(`^${RAW_OUTPUT_TYPE.replace(/\./g, '\\.')}; exit=(\\d)$`).exec(a.type);
  assert.equal(a.status, 200, `raw answer: HTTP ${a.status} ${a.text}`);
  assert.ok(m, `raw content type: ${a.type}`);
  assert.equal(a.exitHeader, m[1], 'X-Cni-Exit agrees with the content type');
  return { stdout: a.text, exitCode: Number(m[1]) };
}

const ADD = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/run/netns/wt-x', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web', CNI_PATH: '/opt/cni/bin' };
const conf = (over: Record<string, unknown> = {}): string => JSON.stringify({ cniVersion: '1.0.0', name: 'weftnet', type: 'weft', socket: sock, ...over });
const RESULT = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: '0a:58:0a:20:00:05', sandbox: '/run/netns/wt-x' }], ips: [{ interface: 0, address: '10.32.0.5/12', gateway: '10.32.0.1' }], dns: {} };

describe('raw endpoint = Node plugin, byte for byte', () => {
  const ok = (v: unknown): Behave => () => Promise.resolve(v);
  const fail = (e: Error): Behave => () => Promise.reject(e);
  const cases: [string, PluginKind, Record<string, string>, string, Behave][] = [
    ['ADD with a result', 'weft', ADD, conf(), ok(RESULT)],
    ['ADD at 0.4.0 with unicode in the config', 'weft', ADD, conf({ cniVersion: '0.4.0', 'cni.dev/x': 'ünï ✓' }), ok({ ...RESULT, cniVersion: '0.4.0' })],
    ['ADD whose handler returns no result', 'weft', ADD, conf(), ok(undefined)],
    ['DEL with an empty netns', 'weft', { ...ADD, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, conf(), ok(undefined)],
    ['CHECK failing with details and a hint', 'weft', { ...ADD, CNI_COMMAND: 'CHECK' }, conf({ prevResult: RESULT }), fail(new CheckFailedError('eth0 has no 10.32.0.5', { details: 'found 10.32.0.6', hint: 'DEL and ADD again' }))],
    ['STATUS not available', 'weft', { CNI_COMMAND: 'STATUS' }, conf({ cniVersion: '1.1.0' }), fail(new NotAvailableError('subnet "default" has no free address'))],
    ['GC degraded', 'weft', { CNI_COMMAND: 'GC' }, conf({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] }), fail(new DegradedError('GC released 1 attachment(s) but failed on 1', { details: 'x' }))],
    ['ADD with a hint only', 'weft', ADD, conf(), fail(new InterfaceExistsError('eth0 exists', { hint: 'pick another CNI_IFNAME' }))],
    ['ADD hitting a bug (999)', 'weft', ADD, conf(), fail(new Error('kaboom'))],
    ['empty stdin', 'weft', ADD, '', ok(RESULT)],
    ['blank stdin', 'weft', ADD, ' \n\t\n', ok(RESULT)],
    ['garbage', 'weft', ADD, 'not json at all', ok(RESULT)],
    ['truncated', 'weft', ADD, conf().slice(0, 30), ok(RESULT)],
    ['an array', 'weft', ADD, '[1,2]', ok(RESULT)],
    ['\\001 (what a NUL becomes)', 'weft', ADD, '{"a":"\x01"}', ok(RESULT)],
    ['no CNI_COMMAND', 'weft', { CNI_CONTAINERID: 'c' }, conf(), ok(RESULT)],
    ['an unknown CNI_COMMAND', 'weft', { ...ADD, CNI_COMMAND: 'ADDX' }, conf(), ok(RESULT)],
    ['missing CNI_NETNS and CNI_IFNAME', 'weft', { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c' }, conf(), ok(RESULT)],
    ['a relative CNI_NETNS', 'weft', { ...ADD, CNI_NETNS: 'netns/x' }, conf(), ok(RESULT)],
    ['a bad container ID', 'weft', { ...ADD, CNI_CONTAINERID: '-x' }, conf(), ok(RESULT)],
    ['an unsupported version', 'weft', ADD, conf({ cniVersion: '0.2.0' }), ok(RESULT)],
    ['GC below 1.1.0', 'weft', { CNI_COMMAND: 'GC' }, conf(), ok(undefined)],
    ['CHECK below 0.4.0', 'weft', { ...ADD, CNI_COMMAND: 'CHECK' }, conf({ cniVersion: '0.3.1' }), ok(undefined)],
    ['an unknown CNI_ARGS key', 'weft', { ...ADD, CNI_ARGS: 'COLOR=blue' }, conf(), ok(RESULT)],
    ['a bad network name', 'weft', ADD, conf({ name: 'bad name' }), ok(RESULT)],
    ['a relative socket', 'weft', ADD, conf({ socket: 'x.sock' }), ok(RESULT)],
    ['weft-ipam without ipam', 'weft-ipam', ADD, conf(), ok(RESULT)],
    ['weft-ipam ADD', 'weft-ipam', ADD, JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'bridge', ipam: { type: 'weft-ipam', socket: sock } }), ok({ cniVersion: '1.0.0', ips: [{ address: '10.1.0.2/24' }] })],
  ];
  for (const [what, kind, env, stdin, b] of cases) {
    test(what, async () => {
      behave = b;
      asked.length = 0;
      const bundle = await viaBundle(kind, env, stdin);
      const bundleAsked = asked.splice(0);
      const raw = asOutput(await viaRaw(kind, env, stdin));
      assert.deepEqual(raw, bundle);
      assert.deepEqual(asked, bundleAsked, 'the handler is asked the same thing');
    });
  }
});

test('a configuration naming another socket is 421 (the launcher then runs Node), before the handler is asked', async () => {
  asked.length = 0;
  for (const stdin of [conf({ socket: `${dir}//weft.sock` }), JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'weft' })]) {
    const a = await viaRaw('weft', ADD, stdin);
    assert.equal(a.status, 421, a.text);
    assert.equal(a.type, 'application/json');
    assert.match(a.text, /MISDIRECTED/);
  }
  const ipam = await viaRaw('weft-ipam', ADD, JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'bridge', ipam: { type: 'weft-ipam', socket: '/other.sock' } }));
  assert.equal(ipam.status, 421);
  assert.deepEqual(asked, []);
});

test('the launcher\'s own headers are checked: 400, never a CNI answer', async () => {
  for (const over of [{ 'x-weft-plugin': 'bridge' }, { 'x-weft-socket': 'relative.sock' }] as Record<string, string>[]) {
    const a = await viaRaw('weft', ADD, conf(), over);
    assert.equal(a.status, 400, JSON.stringify(over));
    assert.equal(a.type, 'application/json');
  }
  assert.throws(() => parseRawRequest({ 'x-weft-plugin': 'weft' }, Buffer.alloc(0)), /X-Weft-Socket/);
  assert.throws(() => parseRawRequest({ 'x-weft-plugin': 'weft', 'x-weft-socket': '/s', 'x-cni-args': ['a', 'b'] as unknown as string }, Buffer.alloc(0)), /more than once/);
});

test('parseRawRequest: a missing header is an unset variable, an empty one stays empty; the body is UTF-8', () => {
  const r = parseRawRequest({ 'x-weft-plugin': 'weft-ipam', 'x-weft-socket': '/run/weft/weft.sock', 'x-cni-command': 'DEL', 'x-cni-netns': '', 'x-other': 'x' }, Buffer.from('{"n":"ü"}'));
  assert.deepEqual(r, { kind: 'weft-ipam', socket: '/run/weft/weft.sock', env: { CNI_COMMAND: 'DEL', CNI_NETNS: '' }, stdin: '{"n":"ü"}' });
});

test('a body over the router\'s cap is 400 (the launcher then runs Node)', async () => {
  const a = await viaRaw('weft', ADD, Buffer.alloc(MAX_BODY + 1, 0x20));
  assert.equal(a.status, 400);
});

test('a handler slower than the deadline gives the bundle\'s timeout error, to the byte', async () => {
  let release: () => void = () => undefined;
  behave = () => new Promise((r) => { release = () => r(undefined); });
  const bundle = await viaBundle('weft', ADD, conf(), 80);
  release();
  const req = parseRawRequest({ 'x-weft-plugin': 'weft', 'x-weft-socket': sock, 'x-cni-command': 'ADD', 'x-cni-containerid': 'c0ffee', 'x-cni-netns': '/run/netns/wt-x', 'x-cni-ifname': 'eth0' }, Buffer.from(conf()));
  const raw = await runRawCni(req, () => new Promise(() => undefined), silentLogger, 80);
  assert.ok('output' in raw);
  assert.deepEqual(raw.output, bundle);
  assert.equal((JSON.parse(bundle.stdout) as { code: number }).code, 11);
  assert.match(bundle.stdout, /did not answer in time/);
});

test('rawReply: 200, the output as text, the exit status in the content type and X-Cni-Exit', () => {
  const req = parseRawRequest({ 'x-weft-plugin': 'weft', 'x-weft-socket': '/s' }, Buffer.alloc(0));
  assert.deepEqual(rawReply(req, { output: { stdout: 'x\n', exitCode: 1 } }), { status: 200, text: 'x\n', contentType: `${RAW_OUTPUT_TYPE}; exit=1`, headers: { 'X-Cni-Exit': '1' } });
  const m = rawReply(req, { misdirected: '/t' });
  assert.equal(m.status, 421);
  assert.ok(!isWeftError(m.body));
});
