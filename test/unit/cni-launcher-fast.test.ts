/**
 * The sh launcher's fast path (src/core/cni/launcher.ts) against a fake
 * router on a temp unix socket and a fake Node bundle that reports what it
 * was given: what goes on the wire (headers, exact stdin bytes), what is
 * printed and returned, and every condition that must fall back to Node —
 * before stdin is read (stdin then reaches Node untouched) and after (stdin
 * is replayed byte for byte). Run under each sh found here (dash, bash,
 * busybox), with `set -u` in the script.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type FastPathOptions, fastPathSocketProblem, headerSafe, renderLauncher } from '../../src/core/cni/launcher.js';
import { RAW_OUTPUT_TYPE } from '../../src/core/cni/protocol.js';

const CURL = ['/usr/bin/curl', '/bin/curl'].find((p) => existsSync(p));
const TR = ['/usr/bin/tr', '/bin/tr'].find((p) => existsSync(p));
const SHELLS = [['dash'], ['bash'], ['busybox', 'sh']].filter(([c]) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);
// curl and tr are prerequisites scripts/setup.sh installs: their absence fails the suite rather than skipping it.
if (!CURL || !TR) throw new Error('curl or tr is missing: run scripts/setup.sh --test');
const skip = false;

interface Seen { url: string; method: string; headers: IncomingHttpHeaders; body: Buffer }
interface Answer { status: number; type?: string; body: string | Buffer; destroy?: boolean }

interface Run { code: number | null; stdout: Buffer; stderr: string }

describe('sh launcher fast path', { skip }, () => {
  let dir: string;
  let sock: string;
  let server: Server;
  const seen: Seen[] = [];
  let answer: (s: Seen) => Answer = () => ({ status: 200, type: `${RAW_OUTPUT_TYPE}; exit=0`, body: '' });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-fast-'));
    sock = join(dir, 'weft.sock');
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const s = { url: req.url ?? '', method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks) };
        seen.push(s);
        const a = answer(s);
        if (a.destroy) { res.socket?.destroy(); return; }
        res.writeHead(a.status, a.type ? { 'content-type': a.type } : {});
        res.end(a.body);
      });
    });
    server.listen(sock);
    await once(server, 'listening');
    // The fake bundle: reports stdin (base64, to see every byte), the CNI env, argv and the kind; exits 3.
    writeFileSync(join(dir, 'bundle.cjs'), [
      "const c=[];process.stdin.on('data',d=>c.push(d)).on('end',()=>{",
      'const e={};for(const k of Object.keys(process.env))if(k.startsWith("CNI_")||k==="WEFT_PLUGIN_KIND")e[k]=process.env[k];',
      "process.stdout.write(JSON.stringify({node:true,stdin:Buffer.concat(c).toString('base64'),env:e,argv:process.argv.slice(2)}));process.exitCode=3;});",
    ].join('\n'));
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  function launcher(name: string, over: Partial<FastPathOptions> = {}, kind: 'weft' | 'weft-ipam' = 'weft'): string {
    const file = join(dir, name);
    writeFileSync(file, renderLauncher({ nodePath: process.execPath, bundlePath: join(dir, 'bundle.cjs'), kind, fastPath: { curlPath: CURL!, trPath: TR!, socket: sock, ...over } }));
    chmodSync(file, 0o755);
    return file;
  }

  function run(shell: string[], file: string, env: Record<string, string>, stdin: string | Buffer, args: string[] = []): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child: ChildProcess = spawn(shell[0]!, [...shell.slice(1), file, ...args], { env: { PATH: '/usr/bin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      child.stdout!.on('data', (c: Buffer) => out.push(c));
      child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(stdin);
    });
  }

  const ADD = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/run/netns/wt-x', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.5,fd00::5;MAC=0a:58:00:00:00:01', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' };
  const nodeSaw = (r: Run): { node: true; stdin: string; env: Record<string, string>; argv: string[] } => {
    assert.equal(r.code, 3, `expected the Node bundle to run; exit ${r.code} stdout ${r.stdout.toString()} stderr ${r.stderr}`);
    const j = JSON.parse(r.stdout.toString()) as { node: true; stdin: string; env: Record<string, string>; argv: string[] };
    return { ...j, stdin: Buffer.from(j.stdin, 'base64').toString('latin1') };
  };

  test('the script is valid sh for every shell and names no file but its own', () => {
    const s = renderLauncher({ nodePath: '/usr/bin/node', bundlePath: '/opt/cni/bin/.weft-plugin.cjs', kind: 'weft-ipam', fastPath: { curlPath: '/usr/bin/curl', trPath: '/usr/bin/tr', socket: '/run/weft/weft.sock' } });
    for (const sh of SHELLS) {
      const r = spawnSync(sh[0]!, [...sh.slice(1), '-n'], { input: s });
      assert.equal(r.status, 0, `${sh.join(' ')}: ${r.stderr.toString()}`);
    }
    assert.match(s, /^set -u$/m);
    assert.match(s, /-H 'X-Weft-Plugin: weft-ipam' -H 'X-Weft-Socket: \/run\/weft\/weft.sock'/);
    assert.match(s, /--unix-socket '\/run\/weft\/weft.sock' --max-time 130/);
  });

  test('render refuses a socket that cannot go into a header, and bad tool paths', () => {
    const base = { nodePath: '/usr/bin/node', bundlePath: '/x.cjs', kind: 'weft' as const };
    assert.throws(() => renderLauncher({ ...base, fastPath: { curlPath: 'curl', trPath: '/usr/bin/tr', socket: '/s' } }), /curlPath/);
    assert.throws(() => renderLauncher({ ...base, fastPath: { curlPath: '/usr/bin/curl', trPath: 'tr', socket: '/s' } }), /trPath/);
    for (const bad of ['rel.sock', '/a b.sock', '/a\r\nX-Evil: 1', '/é.sock', "/a'b"]) {
      assert.ok(fastPathSocketProblem(bad), bad);
      assert.throws(() => renderLauncher({ ...base, fastPath: { curlPath: '/usr/bin/curl', trPath: '/usr/bin/tr', socket: bad } }), /socket/);
    }
    assert.equal(fastPathSocketProblem('/run/weft/weft.sock'), undefined);
    assert.ok(headerSafe('IgnoreUnknown=1;K8S_POD_NAME=a-b.c;IP=10.0.0.1,fd00::1'));
    assert.ok(!headerSafe('a b') && !headerSafe('a\tb') && !headerSafe('a\nb') && !headerSafe('"') && !headerSafe('ü'));
  });

  for (const sh of SHELLS) {
    describe(sh.join(' '), () => {
      test('ADD: stdin as the body, CNI_* as headers; the answer printed byte for byte with its exit status', async () => {
        const file = launcher('weft');
        for (const [stdin, printed, exit] of [
          ['{"cniVersion":"1.0.0","name":"n","type":"weft"}', '{"cniVersion":"1.0.0","ips":[]}\n', 0],
          ['{"a":1}\n\n\n', '{"cniVersion":"1.0.0","code":7,"msg":"bad \\\\ $x `y` \'q\' %s"}\n', 1],
          ['', '', 0],
          ['\n  \n', 'no newline at the end', 1],
          ['x\\ny %s %b $HOME `id` \'"', '\n\n\n', 0],
          ['{"name":"ünïcödé ✓"}', 'ünïcödé ✓\n', 0],
        ] as const) {
          seen.length = 0;
          answer = () => ({ status: 200, type: `${RAW_OUTPUT_TYPE}; exit=${exit}`, body: printed });
          const r = await run(sh, file, ADD, stdin);
          assert.equal(r.stdout.toString(), printed, JSON.stringify(stdin));
          assert.equal(r.code, exit, r.stderr);
          assert.equal(seen.length, 1);
          const s = seen[0]!;
          assert.equal(s.method, 'POST');
          assert.equal(s.url, '/v1/cni/raw');
          assert.deepEqual(s.body, Buffer.from(stdin), 'stdin reaches the router unchanged');
          assert.equal(s.headers['x-cni-command'], 'ADD');
          assert.equal(s.headers['x-cni-containerid'], 'c0ffee');
          assert.equal(s.headers['x-cni-netns'], '/run/netns/wt-x');
          assert.equal(s.headers['x-cni-ifname'], 'eth0');
          assert.equal(s.headers['x-cni-args'], ADD.CNI_ARGS);
          assert.equal(s.headers['x-cni-path'], ADD.CNI_PATH);
          assert.equal(s.headers['x-weft-plugin'], 'weft');
          assert.equal(s.headers['x-weft-socket'], sock);
          assert.equal(s.headers['expect'], undefined);
        }
      });

      test('large stdin (2 MiB) and NUL bytes (sent as \\001)', async () => {
        const file = launcher('weft-ipam', {}, 'weft-ipam');
        answer = () => ({ status: 200, type: `${RAW_OUTPUT_TYPE}; exit=0`, body: 'ok\n' });
        const big = `{"pad":"${'x'.repeat(2 << 20)}"}\n`;
        seen.length = 0;
        const r = await run(sh, file, { ...ADD, CNI_COMMAND: 'DEL' }, big);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(seen[0]!.body.length, Buffer.byteLength(big));
        assert.equal(seen[0]!.headers['x-weft-plugin'], 'weft-ipam');
        seen.length = 0;
        await run(sh, file, ADD, Buffer.from('{"a":"\0"}\0\n'));
        assert.deepEqual(seen[0]!.body, Buffer.from('{"a":"\x01"}\x01\n'));
      });

      test('unset and empty variables send no header (set -u safe); GC and STATUS need none', async () => {
        const file = launcher('weft');
        answer = () => ({ status: 200, type: `${RAW_OUTPUT_TYPE}; exit=0`, body: '' });
        for (const env of [{ CNI_COMMAND: 'STATUS' }, { CNI_COMMAND: 'GC', CNI_NETNS: '', CNI_ARGS: '' }] as Record<string, string>[]) {
          seen.length = 0;
          const r = await run(sh, file, env, '{}');
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout.length, 0);
          const h = seen[0]!.headers;
          assert.equal(h['x-cni-command'], env.CNI_COMMAND);
          for (const k of ['x-cni-containerid', 'x-cni-netns', 'x-cni-ifname', 'x-cni-args', 'x-cni-path']) assert.equal(h[k], undefined, k);
        }
      });

      test('Node before stdin is read: stdin reaches the bundle untouched', async () => {
        const file = launcher('weft');
        const stdin = '{"x":"\0"}\n\n';
        const cases: [string, Record<string, string>, string[], string?][] = [
          ['CR/LF in a value', { ...ADD, CNI_ARGS: 'K8S_POD_NAME=a\r\nX-Evil: 1' }, []],
          ['a space', { ...ADD, CNI_IFNAME: 'eth 0' }, []],
          ['a tab', { ...ADD, CNI_NETNS: '/run/netns/a\tb' }, []],
          ['a quote', { ...ADD, CNI_CONTAINERID: 'a"b' }, []],
          ['a $ and backquote', { ...ADD, CNI_PATH: '/$(id)/`id`' }, []],
          ['non-ASCII', { ...ADD, CNI_IFNAME: 'ethé' }, []],
          ['unknown verb', { ...ADD, CNI_COMMAND: 'add' }, []],
          ['no verb', { CNI_CONTAINERID: 'c' }, []],
          ['arguments', ADD, ['--kind=weft-ipam']],
          ['no curl', ADD, [], 'curl'],
          ['no tr', ADD, [], 'tr'],
          ['no socket', ADD, [], 'sock'],
        ];
        for (const [what, env, args, missing] of cases) {
          const f = missing === undefined ? file
            : launcher(`weft-no-${missing}`, missing === 'curl' ? { curlPath: join(dir, 'nope', 'curl') } : missing === 'tr' ? { trPath: join(dir, 'nope', 'tr') } : { socket: join(dir, 'nope.sock') });
          seen.length = 0;
          const n = nodeSaw(await run(sh, f, env, stdin, args));
          assert.equal(seen.length, 0, `${what}: nothing may reach the router`);
          assert.equal(n.stdin, stdin, `${what}: stdin untouched`);
          assert.deepEqual(n.argv, args, what);
          assert.equal(n.env['WEFT_PLUGIN_KIND'], 'weft');
          for (const [k, v] of Object.entries(env)) assert.equal(n.env[k], v, `${what}: ${k}`);
        }
      });

      test('Node after stdin is read: anything but a raw answer replays stdin byte for byte', async () => {
        const file = launcher('weft');
        const stdin = '{"cniVersion":"1.1.0"}\n\n';
        const answers: [string, Answer][] = [
          ['an older router (404)', { status: 404, type: 'application/json', body: '{"error":{"code":"NOT_FOUND","cniCode":104,"message":"no such endpoint: POST /v1/cni/raw"}}' }],
          ['another socket in the config (421)', { status: 421, type: 'application/json', body: '{"error":{"code":"MISDIRECTED"}}' }],
          ['a 200 of another type', { status: 200, type: 'application/json', body: '{}' }],
          ['an unknown exit status', { status: 200, type: `${RAW_OUTPUT_TYPE}; exit=2`, body: '' }],
          ['the connection dropped', { status: 0, body: '', destroy: true }],
        ];
        for (const [what, a] of answers) {
          answer = () => a;
          seen.length = 0;
          const n = nodeSaw(await run(sh, file, ADD, stdin));
          assert.equal(seen.length, 1, what);
          assert.equal(n.stdin, stdin, `${what}: stdin replayed`);
          assert.equal(n.env['CNI_COMMAND'], 'ADD');
        }
      });
    });
  }

  test('a socket file nobody listens on (router killed -9): curl fails, stdin is replayed into Node', async () => {
    const stale = join(dir, 'stale.sock');
    // A router that dies with SIGKILL leaves its socket file behind.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(child.stdout!, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.ok(existsSync(stale));
    const file = launcher('weft-stale', { socket: stale });
    const n = nodeSaw(await run(['sh'], file, ADD, 'garbage\n'));
    assert.equal(n.stdin, 'garbage\n');
  });
});

test('install-cni finds curl and tr by absolute PATH entries only, executable files only', async () => {
  const { findOnPath } = await import('../../src/cli/commands/install-cni.js');
  const d = mkdtempSync(join(tmpdir(), 'weft-path-'));
  try {
    const [a, b, c] = ['a', 'b', 'c'].map((x) => join(d, x));
    for (const x of [a!, b!, c!]) mkdirSync(x);
    writeFileSync(join(a!, 'curl'), '');   // not executable
    mkdirSync(join(b!, 'curl'));           // a directory
    writeFileSync(join(c!, 'curl'), '#!/bin/sh\n');
    chmodSync(join(c!, 'curl'), 0o755);
    assert.equal(findOnPath('curl', `rel/dir:${a}:${b}:${c}`), join(c!, 'curl'));
    assert.equal(findOnPath('curl', `${a}:${b}`), undefined);
    assert.equal(findOnPath('curl', ''), undefined);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
