/**
 * A small router for the daemon's JSON API on node:http. Bodies are capped,
 * parsed as JSON and handed to handlers; any WeftError becomes
 * `{"error":{code,cniCode,message,hint}}` with its HTTP status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BadRequestError, NotFoundError, toWeftError, type WeftError } from '../core/errors.js';
import type { Logger } from './logger.js';

export interface Req {
  readonly method: string;
  readonly path: string;
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
  readonly body: unknown;
}

export interface Reply {
  readonly status?: number;
  readonly body?: unknown;
  /** Raw text (Prometheus exposition). */
  readonly text?: string;
  readonly contentType?: string;
}

export type Handler = (req: Req) => Promise<Reply> | Reply;

interface Route {
  readonly method: string;
  readonly parts: readonly string[];
  readonly handler: Handler;
}

export const MAX_BODY = 1 << 20;

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler });
    return this;
  }

  private match(method: string, path: string): { handler: Handler; params: Record<string, string> } | 'method' | undefined {
    const parts = path.split('/').filter(Boolean);
    let methodMismatch = false;
    for (const r of this.routes) {
      if (r.parts.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const want = r.parts[i]!;
        const got = parts[i]!;
        if (want.startsWith(':')) {
          try { params[want.slice(1)] = decodeURIComponent(got); } catch { ok = false; break; }
        } else if (want !== got) { ok = false; break; }
      }
      if (!ok) continue;
      if (r.method !== method) { methodMismatch = true; continue; }
      return { handler: r.handler, params };
    }
    return methodMismatch ? 'method' : undefined;
  }

  async handle(req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
    const started = process.hrtime.bigint();
    const method = req.method ?? 'GET';
    // What the logs and errors name until the target is parsed.
    const url = { pathname: req.url ?? '/' };
    let status = 500;
    try {
      const parsed = requestUrl(req.url ?? '/');
      url.pathname = parsed.pathname;
      const m = this.match(method, url.pathname);
      if (m === undefined) throw new NotFoundError(`no such endpoint: ${method} ${url.pathname}`);
      if (m === 'method') throw new BadRequestError(`method ${method} not allowed on ${url.pathname}`);
      const body = await readJson(req);
      const reply = await m.handler({ method, path: url.pathname, params: m.params, query: parsed.searchParams, body });
      status = reply.status ?? 200;
      if (reply.text !== undefined) {
        res.writeHead(status, { 'content-type': reply.contentType ?? 'text/plain; charset=utf-8' });
        res.end(reply.text);
      } else {
        const out = reply.body === undefined ? '{}' : JSON.stringify(reply.body);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(out);
      }
    } catch (e) {
      const err: WeftError = toWeftError(e);
      status = err.status;
      if (status >= 500) log.error('request failed', { method, path: url.pathname, err: err.message, code: err.code, stack: e instanceof Error ? e.stack : undefined });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: err.code, cniCode: err.cniCode, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...(err.details ? { details: err.details } : {}) } }));
    } finally {
      log.debug('request', { method, path: url.pathname, status, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    }
  }
}

/**
 * The request target as a URL. Parsed against a fixed origin by
 * concatenation, not resolution, so a target like `//host/x` stays a path;
 * anything unparseable is a 400, never an exception outside the handler.
 */
function requestUrl(target: string): URL {
  if (!target.startsWith('/')) throw new BadRequestError(`request target "${target}" is not a path`);
  try {
    return new URL(`http://weft${target}`);
  } catch {
    throw new BadRequestError(`request target "${target}" is not a valid path`);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    const b = c as Buffer;
    size += b.length;
    if (size > MAX_BODY) throw new BadRequestError(`request body larger than ${MAX_BODY} bytes`);
    chunks.push(b);
  }
  if (size === 0) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new BadRequestError(`request body is not valid JSON: ${(e as Error).message}`);
  }
}
