/**
 * Client side of bench/exec-runner.ts: one runner process per "host" netns,
 * many jobs in flight.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ExecDone, ExecJob } from '../exec-runner.js';
import type { Netns } from '../../test/helpers/world.js';

/** Every runner started, so the driver can kill them on any exit path (World's spawnIn gives no stdin). */
const live = new Set<ChildProcess>();

export function killRunners(): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  live.clear();
}

const RUNNER = join(fileURLToPath(import.meta.url), '../../exec-runner.js');

export type ExecRequest = Omit<ExecJob, 'id'>;
export type ExecResult = ExecDone;

export class ExecRunner {
  private nextId = 1;
  private readonly pending = new Map<number, (d: ExecDone) => void>();
  private readonly child: ChildProcess;
  private exited = false;

  constructor(readonly ns: Netns) {
    // nsenter exec()s node (no --fork), so the child's PID is the runner's.
    this.child = spawn('nsenter', [`--net=${ns.path}`, '--', process.execPath, RUNNER], { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(this.child);
    this.child.stdin!.on('error', () => undefined);
    this.child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[runner ${ns.name}] ${d.toString()}`));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const d = JSON.parse(line) as ExecDone;
      const cb = this.pending.get(d.id);
      this.pending.delete(d.id);
      cb?.(d);
    });
    this.child.on('exit', () => {
      this.exited = true;
      live.delete(this.child);
      for (const [id, cb] of this.pending) cb({ id, code: null, signal: null, stdout: '', stderr: '', ms: 0, error: 'exec runner exited' });
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  exec(req: ExecRequest): Promise<ExecResult> {
    if (this.exited) return Promise.reject(new Error(`exec runner in ${this.ns.name} has exited`));
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.stdin!.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  /** Like exec, but throws with the plugin's output when it did not exit 0. */
  async execOk(req: ExecRequest, what: string): Promise<ExecResult> {
    const r = await this.exec(req);
    if (r.code !== 0) throw new Error(`${what}: exit ${r.code ?? r.signal ?? r.error}\nstdout: ${r.stdout.trim()}\nstderr: ${r.stderr.trim()}`);
    return r;
  }

  close(): void {
    this.child.stdin!.end();
  }
}
