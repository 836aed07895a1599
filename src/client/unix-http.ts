/**
 * One JSON request over the daemon's unix socket, using only node:http.
 * It is bundled into the CNI plugin, whose start-up time is on every
 * container's ADD/DEL path, so it imports nothing else (not even
 * ../core/errors.ts): failures are a UnixHttpError carrying the system error
 * code, and each caller decides what "not reachable" means for it (the CNI
 * plugin maps it to code 11 or 50, the CLI to a hint about `weft launch`).
 */
import http from 'node:http';

export interface UnixRequest {
  readonly socketPath: string;
  readonly method: string;
  readonly path: string;
  /** Sent as JSON when defined. */
  readonly body?: unknown;
  /** Whole-request deadline; none when undefined. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface UnixResponse {
  readonly status: number;
  /** Decoded JSON, or undefined for an empty body. */
  readonly body: unknown;
  /** The router's own time on the request (its server-timing header), in ms. */
  readonly serverMs?: number;
}

/**
 * `code` is the Node system error code for transport failures (ENOENT: no
 * socket file, ECONNREFUSED: nobody listening, EACCES, ECONNRESET, …) or one
 * of ETIMEDOUT, EABORTED, EBADRESPONSE (not JSON, or too large).
 */
export class UnixHttpError extends Error {
  readonly code: string;
  readonly socketPath: string;
  /** HTTP status when a response arrived (EBADRESPONSE). */
  readonly status: number | undefined;
  constructor(code: string, socketPath: string, message: string, opts: { cause?: unknown; status?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'UnixHttpError';
    this.code = code;
    this.socketPath = socketPath;
    this.status = opts.status;
  }
}

/** Responses larger than this are refused: the daemon's answers are small. */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** The router's `server-timing: handle;dur=MS` (its own time on the request), when present. */
export function serverTiming(header: string | string[] | undefined): number | undefined {
  const v = Array.isArray(header) ? header.join(',') : header;
  const m = v !== undefined ? /(?:^|,)\s*handle;dur=([0-9.]+)/.exec(v) : null;
  return m ? Number(m[1]) : undefined;
}

export function request(opts: UnixRequest): Promise<UnixResponse> {
  const { socketPath } = opts;
  return new Promise<UnixResponse>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const fail = (e: UnixHttpError): void => {
      if (settled) return;
      settled = true;
      cleanup();
      req.destroy();
      reject(e);
    };
    const onAbort = (): void => fail(new UnixHttpError('EABORTED', socketPath, `request to ${socketPath} was aborted`));

    // agent:false → one connection, closed afterwards, so a short-lived
    // process (the plugin) exits as soon as it has its answer.
    const req = http.request(
      {
        socketPath,
        method: opts.method,
        path: opts.path,
        agent: false,
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            fail(new UnixHttpError('EBADRESPONSE', socketPath, `response from ${socketPath} exceeds ${MAX_RESPONSE_BYTES} bytes`, { status: res.statusCode }));
            return;
          }
          chunks.push(c);
        });
        res.on('error', (e) => fail(wrap(e, socketPath)));
        res.on('end', () => {
          if (settled) return;
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          if (text.trim() !== '') {
            try {
              body = JSON.parse(text);
            } catch (e) {
              fail(new UnixHttpError('EBADRESPONSE', socketPath, `response from ${socketPath} (HTTP ${status}) is not JSON: ${text.slice(0, 200)}`, { cause: e, status }));
              return;
            }
          }
          settled = true;
          cleanup();
          const serverMs = serverTiming(res.headers['server-timing']);
          resolve({ status, body, ...(serverMs !== undefined ? { serverMs } : {}) });
        });
      },
    );
    req.on('error', (e) => fail(wrap(e, socketPath)));

    function cleanup(): void {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }

    if (opts.signal?.aborted) {
      onAbort();
      return;
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => fail(new UnixHttpError('ETIMEDOUT', socketPath, `no answer from ${socketPath} within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    }
    req.end(payload);
  });
}

function wrap(e: unknown, socketPath: string): UnixHttpError {
  if (e instanceof UnixHttpError) return e;
  const code = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'EIO';
  const msg = e instanceof Error ? e.message : String(e);
  return new UnixHttpError(code, socketPath, `${socketPath}: ${msg}`, { cause: e });
}
