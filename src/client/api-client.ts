/**
 * The CLI's client of the daemon API. Errors come back as ApiError carrying
 * the daemon's stable code and hint, or RouterUnreachableError when nothing
 * listens on the socket.
 */
import { request } from './unix-http.js';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(readonly status: number, readonly code: string, message: string, readonly hint?: string) {
    super(message);
  }
}

export class RouterUnreachableError extends Error {
  override readonly name = 'RouterUnreachableError';
  constructor(readonly socketPath: string, cause: unknown) {
    super(`weft router is not reachable at ${socketPath}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

export class ApiClient {
  constructor(readonly socketPath: string, private readonly timeoutMs = 30_000) {}

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    let r: { status: number; body: unknown };
    try {
      r = await request({ socketPath: this.socketPath, method, path, ...(body !== undefined ? { body } : {}), timeoutMs: this.timeoutMs });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES') throw new RouterUnreachableError(this.socketPath, e);
      throw e;
    }
    const parsed: unknown = typeof r.body === 'string' ? (r.body === '' ? undefined : JSON.parse(r.body)) : r.body;
    if (r.status >= 400) {
      const err = (parsed as { error?: { code?: string; message?: string; hint?: string } } | undefined)?.error;
      throw new ApiError(r.status, err?.code ?? `HTTP_${r.status}`, err?.message ?? `router answered HTTP ${r.status}`, err?.hint);
    }
    return parsed as T;
  }

  get<T = unknown>(path: string): Promise<T> { return this.call<T>('GET', path); }
  post<T = unknown>(path: string, body?: unknown): Promise<T> { return this.call<T>('POST', path, body ?? {}); }
  patch<T = unknown>(path: string, body: unknown): Promise<T> { return this.call<T>('PATCH', path, body); }
  delete<T = unknown>(path: string): Promise<T> { return this.call<T>('DELETE', path); }
}
