/**
 * Running commands from tests, optionally inside one of the test's network
 * namespaces (by name under /run/netns). Always `nsenter --net=`, never
 * `ip netns exec`: nsenter does not set up a mount namespace, so paths and
 * /sys look the same as for the daemon under test.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /** Netns name under /run/netns to run in. */
  readonly netns?: string;
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Replaces the child's environment when given. */
  readonly env?: NodeJS.ProcessEnv;
}

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

/** [cmd, args] that run `cmd args` inside netns `name` (or unchanged when undefined). */
export function wrapNetns(netns: string | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  return netns === undefined ? [cmd, [...args]] : ['nsenter', [`--net=${netnsPath(netns)}`, '--', cmd, ...args]];
}

/** Runs to completion; never rejects on a non-zero exit (see execOk). */
export function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [c, a] = wrapNetns(opts.netns, cmd, args);
  return new Promise((resolve, reject) => {
    const child = spawn(c, a, { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}) });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Like exec, but rejects (with the command and its stderr) on a non-zero exit. */
export async function execOk(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<string> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0) {
    const where = opts.netns !== undefined ? ` (netns ${opts.netns})` : '';
    throw new Error(`${[cmd, ...args].join(' ')}${where} exited ${String(r.code)}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Starts a long-running process inside netns `name`; the caller (usually World) must kill it. */
export function spawnIn(netns: string, cmd: string, args: readonly string[]): ChildProcess {
  const [c, a] = wrapNetns(netns, cmd, args);
  // nsenter exec()s the command (no --fork), so the child's PID is the command's PID.
  return spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `ping -c1 -W1` from inside a netns; true when a reply came back. */
export async function ping(netns: string, address: string, opts: { count?: number; waitS?: number } = {}): Promise<boolean> {
  const args = [address.includes(':') ? '-6' : '-4', '-c', String(opts.count ?? 1), '-W', String(opts.waitS ?? 1), address];
  const r = await exec('ping', args, { netns });
  return r.code === 0;
}
