/**
 * POST /v1/cni/raw (protocol: CNI_RAW_ENDPOINT in src/core/cni/protocol.ts):
 * the CNI plugin run inside the daemon for the sh launcher, which only has
 * sh and curl and so cannot parse JSON, negotiate versions or render errors.
 *
 * Nothing here re-implements the plugin: this runs runPlugin from
 * src/cni/plugin.ts — the code of the Node bundle — on the runtime's stdin
 * and environment as the launcher received them. Only the transport
 * differs: where the bundle POSTs its CniRequest to /v1/cni, this hands it to
 * the same route handler in process, with the same JSON round trip, the same
 * error body and the same deadline, so the bytes the launcher prints and the
 * exit status it returns are the ones the bundle would have produced.
 *
 * One case cannot be served here: a configuration naming a socket other than
 * the one the launcher connected to (the bundle would talk to that other
 * router). That is answered 421 and the launcher runs the bundle.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { type PluginOutput, runPlugin } from '../cni/plugin.js';
import { type CniRequest, DAEMON_TIMEOUT_MS, type PluginKind, RAW_ENV_HEADERS, RAW_EXIT_HEADER, RAW_OUTPUT_TYPE, RAW_PLUGIN_HEADER, RAW_SOCKET_HEADER } from '../core/cni/protocol.js';
import { BadRequestError } from '../core/errors.js';
import { type Reply, errorBody, failed, jsonText } from './http-router.js';
import type { Logger } from './logger.js';

/** What the daemon's /v1/cni route does with a request body (api.ts). */
export type CniRoute = (body: unknown) => Promise<Reply>;

/** A raw request decoded from HTTP. */
export interface RawCniRequest {
  readonly kind: PluginKind;
  /** The socket the launcher connected to. */
  readonly socket: string;
  /** CNI_* variables; a missing header is an unset variable. */
  readonly env: Readonly<Record<string, string>>;
  /** stdin, decoded as the bundle decodes it (UTF-8). */
  readonly stdin: string;
}

export type RawOutcome =
  | { readonly output: PluginOutput }
  /** The configuration names `socket`, not the one the launcher used. */
  | { readonly misdirected: string };

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  if (Array.isArray(v)) throw new BadRequestError(`header ${name} given more than once`);
  return v;
}

/** Headers and body → RawCniRequest; 400 (the launcher then runs the bundle) when the launcher's own headers are wrong. */
export function parseRawRequest(headers: IncomingHttpHeaders, body: Buffer): RawCniRequest {
  const kind = header(headers, RAW_PLUGIN_HEADER);
  if (kind !== 'weft' && kind !== 'weft-ipam') throw new BadRequestError(`header ${RAW_PLUGIN_HEADER} must be "weft" or "weft-ipam", got ${JSON.stringify(kind) ?? 'nothing'}`);
  const socket = header(headers, RAW_SOCKET_HEADER);
  if (socket === undefined || !socket.startsWith('/')) throw new BadRequestError(`header ${RAW_SOCKET_HEADER} must be the absolute path of the socket the request came through`);
  const env: Record<string, string> = {};
  for (const [name, h] of RAW_ENV_HEADERS) {
    const v = header(headers, h);
    if (v !== undefined) env[name] = v;
  }
  return { kind, socket, env, stdin: body.toString('utf8') };
}

/**
 * `route(body)` as the bundle sees it through HTTP: the request and the
 * answer each go through JSON text, errors become the router's error body
 * with their status, and an empty body is undefined (src/client/unix-http.ts).
 */
async function inProcess(route: CniRoute, req: CniRequest, log: Logger): Promise<{ status: number; body: unknown }> {
  let status: number;
  let text: string;
  try {
    const reply = await route(JSON.parse(JSON.stringify(req)) as unknown);
    status = reply.status ?? 200;
    text = jsonText(reply.body);
  } catch (e) {
    const err = failed(e, log, 'POST', '/v1/cni/raw');
    status = err.status;
    text = JSON.stringify(errorBody(err));
  }
  return { status, body: text.trim() === '' ? undefined : JSON.parse(text) as unknown };
}

/** Rejects like the bundle's request() does when the daemon takes longer than `ms`. */
function withDeadline<T>(p: Promise<T>, ms: number, socket: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(Object.assign(new Error(`no answer from ${socket} within ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
    p.then((v) => { clearTimeout(timer); resolve(v); }, (e: unknown) => { clearTimeout(timer); reject(e); });
  });
}

/** Runs the plugin for one raw request. */
export async function runRawCni(req: RawCniRequest, route: CniRoute, log: Logger, timeoutMs = DAEMON_TIMEOUT_MS): Promise<RawOutcome> {
  let misdirected: string | undefined;
  const output = await runPlugin(req.kind, req.env, req.stdin, {
    send: (socketPath, cniReq) => {
      if (socketPath !== req.socket) {
        misdirected = socketPath;
        return Promise.reject(new Error('misdirected'));
      }
      return withDeadline(inProcess(route, cniReq, log), timeoutMs, socketPath);
    },
  });
  return misdirected === undefined ? { output } : { misdirected };
}

/** The HTTP answer for an outcome. */
export function rawReply(req: RawCniRequest, o: RawOutcome): Reply {
  if ('misdirected' in o) {
    return {
      status: 421,
      body: { error: { code: 'MISDIRECTED', message: `the configuration names the socket ${o.misdirected}, but the plugin reached this router at ${req.socket}: run the Node plugin` } },
    };
  }
  const exit = String(o.output.exitCode);
  return { status: 200, text: o.output.stdout, contentType: `${RAW_OUTPUT_TYPE}; exit=${exit}`, headers: { [RAW_EXIT_HEADER]: exit } };
}

/** The /v1/cni/raw handler. */
export async function serveRawCni(headers: IncomingHttpHeaders, body: Buffer, route: CniRoute, log: Logger): Promise<Reply> {
  const req = parseRawRequest(headers, body);
  return rawReply(req, await runRawCni(req, route, log));
}
