import { ApiClient } from '../client/api-client.js';
import { DEFAULT_SOCKET } from '../core/cni/protocol.js';
import { type Io, type OutputFormat, UsageError, parseFormat } from './output.js';

/** What every command gets: where to print, how to reach the router, the output format. */
export interface Ctx {
  readonly io: Io;
  readonly env: NodeJS.ProcessEnv;
  api(opts: { socket?: unknown }): ApiClient;
  format(opts: { output?: unknown; o?: unknown }): OutputFormat;
}

export function makeCtx(io: Io, env: NodeJS.ProcessEnv): Ctx {
  return {
    io,
    env,
    api: (opts) => new ApiClient(typeof opts.socket === 'string' ? opts.socket : env.WEFT_SOCKET ?? DEFAULT_SOCKET),
    format: (opts) => parseFormat(opts.output ?? opts.o),
  };
}

export const SOCKET_OPT = ['--socket <path>', `router API socket (env WEFT_SOCKET, default ${DEFAULT_SOCKET})`] as const;
export const OUTPUT_OPT = ['-o, --output <format>', 'output format: table or json'] as const;

/** cac hands back numbers for numeric-looking values and arrays for repeated flags; normalise. */
export function strings(v: unknown): string[] {
  if (v === undefined || v === false) return [];
  return (Array.isArray(v) ? v : [v]).map(String).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}

export function optString(v: unknown): string | undefined {
  if (v === undefined || v === true || v === false) return undefined;
  return String(v);
}

export function optInt(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} needs a whole number, got "${String(v)}"`);
  return n;
}
