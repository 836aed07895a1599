/**
 * Structured logs: one JSON object per line on stderr (journald and `docker
 * logs` friendly). Injected everywhere so tests can capture or silence it.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function jsonLogger(opts: { level?: Level; write?: (line: string) => void; base?: Fields; now?: () => Date } = {}): Logger {
  const min = ORDER[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const now = opts.now ?? (() => new Date());
  const base = opts.base ?? {};
  const emit = (level: Level, msg: string, fields?: Fields): void => {
    if (ORDER[level] < min) return;
    const rec: Fields = { time: now().toISOString(), level, msg, ...base, ...fields };
    write(`${JSON.stringify(rec, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Error ? { message: v.message, code: (v as { code?: unknown }).code } : v))}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => jsonLogger({ ...opts, base: { ...base, ...f } }),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child() { return silentLogger; } };
