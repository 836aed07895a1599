/**
 * How fast this machine is right now, printed next to absolute timings: on
 * a shared VM the same code measures 2x apart an hour later, and these two
 * probes say whether it was the machine. `cpuMs`: a fixed CPU loop (20,000
 * SHA-256 digests). `fsyncMs`: the p50 of 50 synchronous 4 KiB writes
 * (O_DSYNC) in a temp dir, the cost under every durable commit.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export interface Calibration {
  readonly cpuMs: number;
  readonly fsyncMs: number;
}

export function calibrate(): Calibration {
  let t0 = performance.now();
  let x = 0;
  for (let i = 0; i < 20_000; i++) x += createHash('sha256').update(`weft${i}`).digest()[0]!;
  const cpuMs = performance.now() - t0 + (x < 0 ? 1 : 0);
  const dir = mkdtempSync(join(tmpdir(), 'weft-cal-'));
  const fd = openSync(join(dir, 'probe'), constants.O_WRONLY | constants.O_CREAT | constants.O_DSYNC);
  const page = Buffer.alloc(4096, 1);
  const samples: number[] = [];
  try {
    for (let i = 0; i < 50; i++) {
      t0 = performance.now();
      writeSync(fd, page, 0, page.length, (i % 8) * 4096);
      samples.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  samples.sort((a, b) => a - b);
  return { cpuMs: Math.round(cpuMs * 10) / 10, fsyncMs: Math.round(samples[25]! * 1000) / 1000 };
}

export function describeCalibration(c: Calibration): string {
  return `machine: ${c.cpuMs} ms CPU probe, ${c.fsyncMs} ms per synchronous 4 KiB write`;
}
