/**
 * Runs ip(8), in the daemon's own netns or (via nsenter) in a netns given as
 * a path. `ip -n` only takes names under /run/netns, and container runtimes
 * hand us paths (/run/netns/netns-UUID, /proc/PID/ns/net), hence nsenter.
 * Many commands go through one `ip -batch -` process: a spawn costs ~1 ms,
 * a batched command ~10 µs.
 */
import { KernelError } from '../../core/errors.js';
import { parseJsonDocuments } from '../../core/dataplane/ip-json.js';
import { type CommandResult, formatCommand, inNetns, isNsenterFailure, runCommand } from './exec.js';

/** A failed ip(8) run; `stderr` and `failedLine` let callers tell "missing" from "broken". */
export class IpCommandError extends KernelError {
  readonly stderr: string;
  readonly failedLine: string | undefined;
  readonly netns: string | undefined;
  /** nsenter could not enter the netns (it vanished, or is not a netns). */
  readonly netnsUnusable: boolean;

  constructor(args: { command: string; stderr: string; failedLine?: string; netns?: string }) {
    const netnsUnusable = isNsenterFailure(args.stderr);
    const reason = firstReason(args.stderr);
    const where = args.netns !== undefined ? ` in netns ${args.netns}` : '';
    const what = args.failedLine !== undefined ? `"${args.failedLine}"` : args.command;
    super(`ip: ${what} failed${where}: ${reason}`, { details: `${args.command}\n${args.stderr}`.trim() });
    this.stderr = args.stderr;
    this.failedLine = args.failedLine;
    this.netns = args.netns;
    this.netnsUnusable = netnsUnusable;
  }
}

/** The line of stderr that explains the failure (ip's "Command failed -:N" trailer is not it). */
function firstReason(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^Command failed /.test(l));
  return lines[0] ?? 'no error message';
}

const NO_DEVICE = /Cannot find device|does not exist|No such device/;

/** The link is not there: what idempotent deletes and lookups treat as "absent". */
export function isNoSuchDevice(e: unknown): boolean {
  return e instanceof IpCommandError && !e.netnsUnusable && NO_DEVICE.test(e.stderr);
}

/** nsenter could not enter the netns: it was deleted (or the path is not a netns). */
export function isNetnsUnusable(e: unknown): boolean {
  return e instanceof IpCommandError && e.netnsUnusable;
}

export function isAlreadyExists(e: unknown): boolean {
  return e instanceof IpCommandError && /File exists/.test(e.stderr);
}

/** 1-based line number from ip's "Command failed -:N", or undefined. */
export function failedBatchLine(stderr: string): number | undefined {
  const m = /Command failed -:(\d+)/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

/** All failed line numbers of an `ip -force -batch` run (the probe uses one). */
export function failedBatchLines(stderr: string): number[] {
  return [...stderr.matchAll(/Command failed -:(\d+)/g)].map((m) => Number(m[1]));
}

export interface IpRunnerOptions {
  /** Netns path to run in; undefined = the calling process's netns. */
  readonly netns?: string;
  readonly timeoutMs?: number;
}

export interface BatchOptions {
  /** `-j`: show commands print JSON; returned parsed, one document per show command. */
  readonly json?: boolean;
  /** `-d`: link details (kind, alias). */
  readonly details?: boolean;
}

export class IpRunner {
  readonly netns: string | undefined;
  private readonly timeoutMs: number | undefined;

  constructor(opts: IpRunnerOptions = {}) {
    this.netns = opts.netns;
    this.timeoutMs = opts.timeoutMs;
  }

  /** Same settings, other netns. */
  in(netns: string | undefined): IpRunner {
    return new IpRunner({ ...(netns !== undefined ? { netns } : {}), ...(this.timeoutMs !== undefined ? { timeoutMs: this.timeoutMs } : {}) });
  }

  private async exec(args: string[], input?: string): Promise<CommandResult & { command: string }> {
    const { cmd, args: full } = inNetns(this.netns, 'ip', args);
    const r = await runCommand(cmd, full, { ...(input !== undefined ? { input } : {}), ...(this.timeoutMs !== undefined ? { timeoutMs: this.timeoutMs } : {}) });
    return { ...r, command: formatCommand(cmd, full) };
  }

  /**
   * Runs the lines in one `ip -batch -`. ip stops at the first failing line;
   * the error names that line. Lines before it have taken effect.
   */
  async batch(lines: readonly string[], opts: BatchOptions = {}): Promise<unknown[]> {
    if (lines.length === 0) return [];
    const args = [...(opts.json ? ['-j'] : []), ...(opts.details ? ['-d'] : []), '-batch', '-'];
    const r = await this.exec(args, lines.join('\n') + '\n');
    if (r.code !== 0) {
      const n = failedBatchLine(r.stderr);
      const failedLine = n !== undefined ? lines[n - 1] : undefined;
      throw new IpCommandError({ command: r.command, stderr: r.stderr, ...(failedLine !== undefined ? { failedLine } : {}), ...(this.netns !== undefined ? { netns: this.netns } : {}) });
    }
    return opts.json ? parseJsonDocuments(r.stdout) : [];
  }

  /** One command with `-j` (and `-d` when asked); returns the parsed document. */
  async json(args: readonly string[], opts: { details?: boolean } = {}): Promise<unknown> {
    const r = await this.exec(['-j', ...(opts.details ? ['-d'] : []), ...args]);
    if (r.code !== 0) throw new IpCommandError({ command: r.command, stderr: r.stderr, ...(this.netns !== undefined ? { netns: this.netns } : {}) });
    const docs = parseJsonDocuments(r.stdout);
    return docs[0] ?? [];
  }

  /** One command; returns stdout. */
  async run(args: readonly string[]): Promise<string> {
    const r = await this.exec([...args]);
    if (r.code !== 0) throw new IpCommandError({ command: r.command, stderr: r.stderr, ...(this.netns !== undefined ? { netns: this.netns } : {}) });
    return r.stdout;
  }
}
