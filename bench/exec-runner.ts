/**
 * A tiny exec server the benchmark starts inside a "host" netns (through
 * nsenter), so the plugins it execs run in that namespace the way a runtime
 * on that host would exec them, and the timing of each exec does not include
 * nsenter. It reads one JSON job per line on stdin and answers one JSON line
 * per job on stdout; jobs run concurrently.
 *
 * Timed: from spawn() until the child has exited and its stdout/stderr are
 * closed — fork + exec of the plugin (and anything it execs) + its work.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

export interface ExecJob {
  readonly id: number;
  readonly file: string;
  readonly args?: readonly string[];
  readonly env: Record<string, string>;
  readonly input?: string;
  readonly timeoutMs?: number;
}

export interface ExecDone {
  readonly id: number;
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time in milliseconds. */
  readonly ms: number;
  readonly error?: string;
}

function run(job: ExecJob): Promise<ExecDone> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(job.file, [...(job.args ?? [])], { env: job.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), job.timeoutMs ?? 60_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ id: job.id, code: null, signal: null, stdout: '', stderr: '', ms: performance.now() - t0, error: e.message });
    });
    child.on('close', (code, signal) => {
      const ms = performance.now() - t0;
      clearTimeout(timer);
      resolve({ id: job.id, code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(job.input ?? '');
  });
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === '') return;
  const job = JSON.parse(line) as ExecJob;
  void run(job).then((done) => process.stdout.write(`${JSON.stringify(done)}\n`));
});
rl.on('close', () => process.exit(0));
