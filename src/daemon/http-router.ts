/**
 * A small router for the daemon's JSON API on node:http. Bodies are capped,
 * parsed as JSON and handed to handlers; any WeftError becomes
 * `{"error":{code,cniCode,message,hint}}` with its HTTP status.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { BadRequestError, NotFoundError, toWeftError, type WeftError } from '../core/errors.js';
import type { Logger } from './logger.js';

export interface Req {
  readonly method: string;
  readonly path: string;
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
  /** Parsed JSON, or for a route added with addRaw the body's bytes (a Buffer). */
  readonly body: unknown;
  readonly headers: IncomingHttpHeaders;
  readonly log: Logger;
}

export interface Reply {
  readonly status?: number;
  readonly body?: unknown;
  /** Raw text (Prometheus exposition). */
  readonly text?: string;
  readonly contentType?: string;
  /** Extra response headers. */
  readonly headers?: Readonly<Record<string, string>>;
}

export type Handler = (req: Req) => Promise<Reply> | Reply;

interface Route {
  readonly method: string;
  readonly parts: readonly string[];
  readonly handler: Handler;
  /** The body is handed over as bytes, not parsed as JSON. */
  readonly raw: boolean;
}

export const MAX_BODY = 1 << 20;

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler, raw: false });
    return this;
  }

  /** Like add, but `req.body` is the request body as a Buffer (same size cap). */
  addRaw(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler, raw: true });
    return this;
  }

  private match(method: string, path: string): { handler: Handler; params: Record<string, string>; raw: boolean } | 'method' | undefined {
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
      return { handler: r.handler, params, raw: r.raw };
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
      const body = m.raw ? await readBody(req) : await readJson(req);
      const handling = process.hrtime.bigint();
      const reply = await m.handler({ method, path: url.pathname, params: m.params, query: parsed.searchParams, body, headers: req.headers, log });
      status = reply.status ?? 200;
      const text = reply.text ?? jsonText(reply.body);
      // How long the router worked on it, from the whole request read to the answer (RFC: W3C Server Timing).
      const timing = { 'server-timing': `handle;dur=${(Number(process.hrtime.bigint() - handling) / 1e6).toFixed(3)}` };
      res.writeHead(status, { ...reply.headers, ...timing, 'content-type': reply.text !== undefined ? (reply.contentType ?? 'text/plain; charset=utf-8') : 'application/json' });
      res.end(text);
    } catch (e) {
      const err = failed(e, log, method, url.pathname);
      status = err.status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(errorBody(err)));
    } finally {
      log.debug('request', { method, path: url.pathname, status, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    }
  }
}

/** The JSON text of a reply body (`{}` for none). */
export function jsonText(body: unknown): string {
  return body === undefined ? '{}' : JSON.stringify(body);
}

/** Any thrown value as the WeftError to answer with; 5xx (a bug or a kernel failure) is logged with its stack. */
export function failed(e: unknown, log: Logger, method: string, path: string): WeftError {
  const err = toWeftError(e);
  if (err.status >= 500) log.error('request failed', { method, path, err: err.message, code: err.code, stack: e instanceof Error ? e.stack : undefined });
  return err;
}

/** The body of an error answer. */
export function errorBody(err: WeftError): { error: { code: string; cniCode: number; message: string; hint?: string; details?: string } } {
  return { error: { code: err.code, cniCode: err.cniCode, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...(err.details ? { details: err.details } : {}) } };
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

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    const b = c as Buffer;
    size += b.length;
    if (size > MAX_BODY) throw new BadRequestError(`request body larger than ${MAX_BODY} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const buf = await readBody(req);
  if (buf.length === 0) return undefined;
  const text = buf.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new BadRequestError(`request body is not valid JSON: ${(e as Error).message}`);
  }
}
