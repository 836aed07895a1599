/**
 * Mesh convergence at scale, in virtual time: `simulateConvergence`
 * (src/core/mesh/sim/simulate.ts) starts N real Router instances over the
 * in-memory transport within one virtual second, each launched with two
 * random earlier peers, discovery finding the rest, each publishing one key
 * in a gossiped map, with the default mesh configuration; it measures until
 * every router holds the same topology (containing and connecting all of
 * them) and the same map. Bytes count every frame sent by every router,
 * headers included. Runs synchronously in this process; 500 peers take
 * about 6 minutes of real time.
 */
import { simulateConvergence, type ConvergenceResult } from '../src/core/mesh/sim/simulate.js';
import { progress } from './lib/util.js';

export interface ConvergenceResults {
  readonly seed: number;
  readonly loss: number;
  readonly results: ConvergenceResult[];
}

export function runConvergence(cfg: { peers: readonly number[]; seed?: number; loss?: number }): ConvergenceResults {
  const seed = cfg.seed ?? 1;
  const loss = cfg.loss ?? 0;
  const results: ConvergenceResult[] = [];
  for (const peers of cfg.peers) {
    progress(`convergence: ${peers} simulated routers (seed ${seed}, loss ${loss}); ${peers >= 500 ? 'about 6 minutes' : 'a few seconds'} of real time`);
    const r = simulateConvergence({ peers, loss, seed });
    progress(`  ${peers} peers: ${r.converged ? `converged after ${(r.virtualMs / 1000).toFixed(1)} s virtual` : `NOT converged within ${(r.virtualMs / 1000).toFixed(1)} s virtual`}, ${(r.bytes / 1e6).toFixed(1)} MB, ${r.messages} messages, ${r.connections} connections (${(r.wallMs / 1000).toFixed(1)} s real)`);
    results.push(r);
  }
  return { seed, loss, results };
}
