/**
 * Runs nft(8) with a script on stdin. Text, not JSON: `nft -j -f -` fails
 * under Node because Node's child stdin is a socketpair and nft reopens
 * /dev/stdin by path. A script is one kernel transaction, so a table replace
 * is atomic.
 */
import { KernelError } from '../../core/errors.js';
import { formatCommand, inNetns, isNsenterFailure, runCommand } from './exec.js';

export interface NftOptions {
  /** Netns path to run in; undefined = the calling process's netns. */
  readonly netns?: string;
  readonly timeoutMs?: number;
  /** nft binary; tests point it at a missing one. */
  readonly bin?: string;
}

export class NftCommandError extends KernelError {
  readonly stderr: string;
  constructor(command: string, stderr: string, netns: string | undefined) {
    const first = stderr.split('\n').find((l) => l.trim() !== '') ?? 'no error message';
    super(`nft failed${netns !== undefined ? ` in netns ${netns}` : ''}: ${first.trim()}`, { details: `${command}\n${stderr}`.trim() });
    this.stderr = stderr;
  }
}

export class NftRunner {
  private readonly netns: string | undefined;
  private readonly timeoutMs: number | undefined;
  private readonly bin: string;

  constructor(opts: NftOptions = {}) {
    this.netns = opts.netns;
    this.timeoutMs = opts.timeoutMs;
    this.bin = opts.bin ?? 'nft';
  }

  private async exec(args: string[], input?: string): Promise<string> {
    const { cmd, args: full } = inNetns(this.netns, this.bin, args);
    // A missing nft binary surfaces from runCommand as FeatureUnavailableError.
    const r = await runCommand(cmd, full, { ...(input !== undefined ? { input } : {}), ...(this.timeoutMs !== undefined ? { timeoutMs: this.timeoutMs } : {}) });
    if (r.code !== 0) throw new NftCommandError(formatCommand(cmd, full), r.stderr, this.netns);
    return r.stdout;
  }

  /** Applies a script (`nft -f -`) as one transaction. */
  async apply(script: string): Promise<void> {
    await this.exec(['-f', '-'], script);
  }

  /** `nft list table FAMILY NAME`, or undefined when the table does not exist. */
  async listTable(family: string, name: string): Promise<string | undefined> {
    try {
      return await this.exec(['list', 'table', family, name]);
    } catch (e) {
      if (e instanceof NftCommandError && !isNsenterFailure(e.stderr) && /No such file or directory/.test(e.stderr)) return undefined;
      throw e;
    }
  }
}
