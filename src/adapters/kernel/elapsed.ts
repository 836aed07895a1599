import { performance } from 'node:perf_hooks';

/** Milliseconds since `t0` (a performance.now() reading), to two decimals: the timings in the adapters' logs. */
export function elapsedMs(t0: number): number {
  return Math.round((performance.now() - t0) * 100) / 100;
}
