/**
 * Spawning the kernel tools (ip, nft, nsenter, unshare). One place for
 * timeouts, stdin feeding and the "binary is missing" case, so every caller
 * reports those conditions the same way.
 */
import { spawn } from 'node:child_process';
import { FeatureUnavailableError, KernelError } from '../../core/errors.js';

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to stdin, which is then closed. */
  readonly input?: string;
  /** Default 30 s; a hung tool must not wedge the daemon. */
  readonly timeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * The command line that runs `cmd` in the netns at `netnsPath`, or `cmd`
 * itself when no netns is given. nsenter only enters the network namespace, so
 * the tool still sees the caller's mount namespace (paths stay valid).
 */
export function inNetns(netnsPath: string | undefined, cmd: string, args: readonly string[]): { cmd: string; args: string[] } {
  if (netnsPath === undefined) return { cmd, args: [...args] };
  return { cmd: 'nsenter', args: [`--net=${netnsPath}`, '--', cmd, ...args] };
}

/** `nsenter` reports its own failures with an "nsenter:" prefix; anything else came from the tool. */
export function isNsenterFailure(stderr: string): boolean {
  return /^nsenter: /m.test(stderr) && !/^nsenter: failed to execute /m.test(stderr);
}

function missingToolError(tool: string): FeatureUnavailableError {
  const pkg = tool === 'nft' ? 'nftables' : tool === 'ip' ? 'iproute2' : tool === 'nsenter' || tool === 'unshare' ? 'util-linux' : tool;
  return new FeatureUnavailableError(`${tool} is not installed (or not on PATH, or not executable)`, { hint: `install the ${pkg} package` });
}

export function formatCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * Runs a command to completion. Resolves with whatever exit status it had;
 * rejects only when it could not run (missing binary: FeatureUnavailableError)
 * or overran its timeout (KernelError).
 */
export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new KernelError(`${formatCommand(cmd, args)} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // EACCES too: execvp reports it when the tool is absent but a PATH entry is unreadable.
      reject(e.code === 'ENOENT' || e.code === 'EACCES' ? missingToolError(cmd) : new KernelError(`cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      // nsenter exec()s the tool; when the tool is missing it says so and exits 127.
      const missing = /^nsenter: failed to execute (\S+): No such file or directory/m.exec(stderr);
      if (cmd === 'nsenter' && missing) {
        reject(missingToolError(missing[1] ?? 'tool'));
        return;
      }
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
    // EPIPE when the tool exits before reading stdin is reported by 'close' with its status.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}
