import type { BackoffConfig } from '../config.js';

/**
 * Delay before retry number `failures` (1 = after the first failure):
 * initial × factor^(failures−1), capped, then spread by ±jitter with the
 * injected random source so tests are reproducible. The cap also bounds the
 * jittered value: an operator who says "at most 6 minutes" means it.
 */
export function backoffDelay(failures: number, cfg: BackoffConfig, random: () => number): number {
  const n = Math.max(1, failures);
  const base = Math.min(cfg.maxMs, cfg.initialMs * Math.pow(cfg.factor, n - 1));
  const spread = 1 - cfg.jitter + 2 * cfg.jitter * random();
  return Math.max(1, Math.min(cfg.maxMs, Math.round(base * spread)));
}
