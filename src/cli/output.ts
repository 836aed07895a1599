/** Renders read commands as aligned tables for people or JSON for programs (`-o json`). */
export type OutputFormat = 'table' | 'json';

export interface Io {
  out(s: string): void;
  err(s: string): void;
}

export const processIo: Io = {
  out: (s) => { process.stdout.write(s.endsWith('\n') ? s : `${s}\n`); },
  err: (s) => { process.stderr.write(s.endsWith('\n') ? s : `${s}\n`); },
};

export function table(headers: readonly string[], rows: readonly (readonly (string | number | undefined)[])[]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined || c === '' ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function parseFormat(v: unknown): OutputFormat {
  if (v === undefined || v === 'table' || v === 'wide') return 'table';
  if (v === 'json') return 'json';
  throw new UsageError(`unknown output format "${String(v)}": use -o json or -o table`);
}

export function emit(io: Io, format: OutputFormat, data: unknown, human: () => string): void {
  io.out(format === 'json' ? JSON.stringify(data, null, 2) : human());
}

/** A mistake in how the command was called; printed with the command's usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
