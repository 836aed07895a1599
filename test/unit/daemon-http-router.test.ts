import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ConflictError, QuotaExceededError } from '../../src/core/errors.js';
import { MAX_BODY, type Req, Router } from '../../src/daemon/http-router.js';
import type { Fields, Logger } from '../../src/daemon/logger.js';

const logged: { level: string; msg: string; fields?: Fields }[] = [];
const log: Logger = {
  debug: (msg, fields) => { logged.push({ level: 'debug', msg, ...(fields ? { fields } : {}) }); },
  info: (msg, fields) => { logged.push({ level: 'info', msg, ...(fields ? { fields } : {}) }); },
  warn: (msg, fields) => { logged.push({ level: 'warn', msg, ...(fields ? { fields } : {}) }); },
  error: (msg, fields) => { logged.push({ level: 'error', msg, ...(fields ? { fields } : {}) }); },
  child: () => log,
};

let dir: string;
let socketPath: string;
let server: Server;
const seen: Req[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-router-'));
  socketPath = join(dir, 'api.sock');
  const r = new Router()
    .add('GET', '/v1/subnets', () => ({ body: [{ name: 'a' }] }))
    .add('POST', '/v1/subnets', (q) => { seen.push(q); return { status: 201, body: { got: q.body } }; })
    .add('GET', '/v1/subnets/:name', (q) => { seen.push(q); return { body: { name: q.params.name, q: q.query.get('q') } }; })
    .add('DELETE', '/v1/subnets/:name', () => ({ status: 204 }))
    .add('GET', '/v1/pools/:pool/ips/:ip', (q) => ({ body: q.params }))
    .add('GET', '/metrics', () => ({ text: '# HELP x\nx 1\n', contentType: 'text/plain; version=0.0.4' }))
    .add('GET', '/plain', () => ({ text: 'hi' }))
    .add('GET', '/conflict', () => { throw new ConflictError('it clashes', { hint: 'do something else', details: 'more' }); })
    .add('GET', '/quota', async () => { await Promise.resolve(); throw new QuotaExceededError('too many'); })
    .add('GET', '/boom', () => { throw new Error('kaboom'); })
    .add('POST', '/echo', (q) => ({ body: { body: q.body === undefined ? 'undefined' : q.body } }));
  server = createServer((req, res) => { void r.handle(req, res, log); });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

interface Resp { status: number; type: string | undefined; text: string; json: unknown }

function call(method: string, path: string, body?: string | Buffer): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: body !== undefined ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('routes: static path, JSON reply, status from the handler', async () => {
  assert.deepEqual(await call('GET', '/v1/subnets'), { status: 200, type: 'application/json', text: '[{"name":"a"}]', json: [{ name: 'a' }] });
  const created = await call('POST', '/v1/subnets', JSON.stringify({ name: 'b', cidr: '10.0.0.0/24' }));
  assert.equal(created.status, 201);
  assert.deepEqual(created.json, { got: { name: 'b', cidr: '10.0.0.0/24' } });
  const del = await call('DELETE', '/v1/subnets/b');
  assert.deepEqual([del.status, del.text], [204, '']);
});

test('routes: params are URL-decoded, query is parsed, trailing slash ignored', async () => {
  seen.length = 0;
  const r = await call('GET', '/v1/subnets/my%20net?q=1&x=2');
  assert.deepEqual(r.json, { name: 'my net', q: '1' });
  assert.equal(seen[0]!.path, '/v1/subnets/my%20net');
  assert.equal(seen[0]!.method, 'GET');
  assert.equal(seen[0]!.query.get('x'), '2');
  assert.equal(seen[0]!.body, undefined);
  assert.deepEqual((await call('GET', '/v1/subnets/a/')).json, { name: 'a', q: null });
  assert.deepEqual((await call('GET', '/v1/pools/p1/ips/fd00%3A%3A1')).json, { pool: 'p1', ip: 'fd00::1' });
});

test('text replies', async () => {
  assert.deepEqual(await call('GET', '/metrics'), { status: 200, type: 'text/plain; version=0.0.4', text: '# HELP x\nx 1\n', json: undefined });
  const p = await call('GET', '/plain');
  assert.deepEqual([p.type, p.text], ['text/plain; charset=utf-8', 'hi']);
});

test('errors: unknown path 404, wrong method, bad percent-encoding', async () => {
  assert.deepEqual(await call('GET', '/v2/nothing'), {
    status: 404, type: 'application/json', text: '{"error":{"code":"NOT_FOUND","cniCode":104,"message":"no such endpoint: GET /v2/nothing"}}',
    json: { error: { code: 'NOT_FOUND', cniCode: 104, message: 'no such endpoint: GET /v2/nothing' } },
  });
  const m = await call('PUT', '/v1/subnets');
  assert.equal(m.status, 400);
  assert.deepEqual(m.json, { error: { code: 'BAD_REQUEST', cniCode: 7, message: 'method PUT not allowed on /v1/subnets' } });
  const bad = await call('GET', '/v1/subnets/%E0%A4%A');
  assert.equal(bad.status, 404);
  assert.equal((bad.json as { error: { code: string } }).error.code, 'NOT_FOUND');
});

test('errors: WeftErrors keep status, code, hint and details; other errors are 500 INTERNAL and logged', async () => {
  assert.deepEqual(await call('GET', '/conflict'), {
    status: 409, type: 'application/json',
    text: '{"error":{"code":"CONFLICT","cniCode":105,"message":"it clashes","hint":"do something else","details":"more"}}',
    json: { error: { code: 'CONFLICT', cniCode: 105, message: 'it clashes', hint: 'do something else', details: 'more' } },
  });
  assert.deepEqual((await call('GET', '/quota')).json, { error: { code: 'QUOTA_EXCEEDED', cniCode: 102, message: 'too many' } });
  logged.length = 0;
  const boom = await call('GET', '/boom');
  assert.equal(boom.status, 500);
  assert.deepEqual(boom.json, { error: { code: 'INTERNAL', cniCode: 999, message: 'kaboom' } });
  const err = logged.find((l) => l.level === 'error');
  assert.equal(err?.msg, 'request failed');
  assert.equal(err?.fields?.path, '/boom');
  assert.equal(err?.fields?.code, 'INTERNAL');
  const dbg = logged.find((l) => l.level === 'debug');
  assert.equal(dbg?.fields?.status, 500);
  // 4xx are not logged as errors
  logged.length = 0;
  await call('GET', '/conflict');
  assert.equal(logged.filter((l) => l.level === 'error').length, 0);
  assert.equal(logged.find((l) => l.level === 'debug')?.fields?.status, 409);
});

test('bodies: JSON parsed, empty is undefined, invalid JSON is 400', async () => {
  assert.deepEqual((await call('POST', '/echo', '{"a":[1,2]}')).json, { body: { a: [1, 2] } });
  assert.deepEqual((await call('POST', '/echo', '')).json, { body: 'undefined' });
  assert.deepEqual((await call('POST', '/echo')).json, { body: 'undefined' });
  assert.deepEqual((await call('POST', '/echo', '"x"')).json, { body: 'x' });
  const bad = await call('POST', '/echo', '{nope');
  assert.equal(bad.status, 400);
  const e = (bad.json as { error: { code: string; message: string } }).error;
  assert.equal(e.code, 'BAD_REQUEST');
  assert.match(e.message, /^request body is not valid JSON: /);
});

test('bodies: larger than MAX_BODY is refused with 400, and the client gets the answer', async () => {
  const big = Buffer.alloc(MAX_BODY + 10, 0x20);
  const r = await call('POST', '/echo', big);
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, { error: { code: 'BAD_REQUEST', cniCode: 7, message: `request body larger than ${MAX_BODY} bytes` } });
  // exactly MAX_BODY is accepted
  const ok = Buffer.concat([Buffer.from('"'), Buffer.alloc(MAX_BODY - 2, 0x61), Buffer.from('"')]);
  const r2 = await call('POST', '/echo', ok);
  assert.equal(r2.status, 200);
  assert.equal(((r2.json as { body: string }).body).length, MAX_BODY - 2);
});

function raw(requestLine: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const s = connect(socketPath);
    let out = '';
    s.on('data', (d) => { out += d.toString('utf8'); });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(3000, () => { s.destroy(); resolve(out); });
    s.write(`${requestLine}\r\nHost: x\r\nConnection: close\r\n\r\n`);
  });
}

test('odd request targets get an answer, never an exception outside the handler', async () => {
  const bracket = await raw('GET //[bad/v1/subnets HTTP/1.1');
  assert.match(bracket, /^HTTP\/1\.1 404 /, `got: ${JSON.stringify(bracket.slice(0, 80))}`);
  assert.ok(bracket.includes('"message":"no such endpoint: GET //[bad/v1/subnets"'), bracket);
  const star = await raw('OPTIONS * HTTP/1.1');
  assert.match(star, /^HTTP\/1\.1 400 /, `got: ${JSON.stringify(star.slice(0, 80))}`);
  assert.ok(star.includes('"message":"request target \\"*\\" is not a path"'), star);
  const abs = await raw('GET http://other/v1/subnets HTTP/1.1');
  assert.match(abs, /^HTTP\/1\.1 400 /, `got: ${JSON.stringify(abs.slice(0, 80))}`);
});

test('a path starting with // is not taken for a host name', async () => {
  const r = await call('GET', '//evil/v1/subnets');
  assert.equal(r.status, 404);
  assert.deepEqual(r.json, { error: { code: 'NOT_FOUND', cniCode: 104, message: 'no such endpoint: GET //evil/v1/subnets' } });
});
