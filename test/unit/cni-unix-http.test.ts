import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnixHttpError, request } from '../../src/client/unix-http.js';

async function withServer(handler: http.RequestListener, fn: (socketPath: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-uh-'));
  const socketPath = join(dir, 's.sock');
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  try {
    await fn(socketPath);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    req.on('data', (c: Buffer) => (s += c.toString())).on('end', () => resolve(s));
  });
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<UnixHttpError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof UnixHttpError, String(e));
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

test('POSTs JSON and decodes the JSON answer', async () => {
  let seen: { method?: string; url?: string; type?: string; body?: string } = {};
  await withServer(async (req, res) => {
    seen = { method: req.method, url: req.url, type: req.headers['content-type'], body: await readBody(req) };
    res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}');
  }, async (socketPath) => {
    const r = await request({ socketPath, method: 'POST', path: '/v1/cni', body: { a: [1, 'é'] }, timeoutMs: 5000 });
    assert.deepEqual(r, { status: 201, body: { ok: true } });
  });
  assert.deepEqual(seen, { method: 'POST', url: '/v1/cni', type: 'application/json', body: '{"a":[1,"é"]}' });
});

test('GET without a body; empty answer is undefined; error statuses resolve', async () => {
  await withServer((req, res) => {
    if (req.url === '/empty') res.writeHead(204).end();
    else res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"nope"}}');
  }, async (socketPath) => {
    assert.deepEqual(await request({ socketPath, method: 'GET', path: '/empty' }), { status: 204, body: undefined });
    assert.deepEqual(await request({ socketPath, method: 'GET', path: '/x' }), { status: 404, body: { error: { message: 'nope' } } });
  });
});

test('non-JSON answers are EBADRESPONSE with the status', async () => {
  await withServer((_req, res) => res.writeHead(500).end('<html>oops</html>'), async (socketPath) => {
    const e = await rejectsWith(request({ socketPath, method: 'GET', path: '/' }), 'EBADRESPONSE');
    assert.equal(e.status, 500);
    assert.match(e.message, /oops/);
  });
});

test('missing socket is ENOENT; a stale socket file is ECONNREFUSED', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-uh-'));
  try {
    const e = await rejectsWith(request({ socketPath: join(dir, 'none.sock'), method: 'GET', path: '/' }), 'ENOENT');
    assert.equal(e.socketPath, join(dir, 'none.sock'));
    // A socket file with nobody listening: a child binds it and SIGKILLs
    // itself, so nothing unlinks the file (a clean close would).
    const stale = join(dir, 'stale.sock');
    const child = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.equal(child.signal, 'SIGKILL');
    await rejectsWith(request({ socketPath: stale, method: 'GET', path: '/' }), 'ECONNREFUSED');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('timeout is ETIMEDOUT; abort is EABORTED', async () => {
  const pending: http.ServerResponse[] = [];
  await withServer((_req, res) => { pending.push(res); }, async (socketPath) => {
    const t0 = Date.now();
    await rejectsWith(request({ socketPath, method: 'GET', path: '/', timeoutMs: 100 }), 'ETIMEDOUT');
    assert.ok(Date.now() - t0 < 2000);
    const ac = new AbortController();
    const p = request({ socketPath, method: 'GET', path: '/', signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await rejectsWith(p, 'EABORTED');
    await rejectsWith(request({ socketPath, method: 'GET', path: '/', signal: AbortSignal.abort() }), 'EABORTED');
  });
});

test('a connection closed mid-answer is a transport error with a system code', async () => {
  await withServer((req) => { req.socket.destroy(); }, async (socketPath) => {
    const e = await rejectsWith(request({ socketPath, method: 'POST', path: '/', body: {} }), 'ECONNRESET');
    assert.match(e.message, /s\.sock/);
  });
});
