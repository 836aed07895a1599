/**
 * Start-up: `--ipalloc-init seed=A,B,...`, `consensus[=N]` or `observer`.
 *
 *  - seed: the ring is computed locally, the same on every peer; works even
 *    when the seeds cannot reach each other yet.
 *  - consensus: a Paxos round among the peers that start together decides
 *    the founders (consensus.ts); N defaults to this peer plus the peers
 *    given to `weft launch`.
 *  - observer: owns nothing at start; adopts the ring it receives by gossip
 *    and asks for blocks when it needs addresses.
 * In every mode a ring received by gossip before the local one exists is
 * simply adopted (merge), so a peer joining an existing cluster never
 * creates a second ring.
 */
import type { Cidr } from '../ip/cidr.js';
import { InvalidConfigError } from '../errors.js';
import { type ConsensusState, startConsensus } from './consensus.js';
import { join } from './membership.js';
import { MAX_FOUNDERS, seedRing, validateFounders } from './seed.js';
import type { PeerId, Ring } from './types.js';

export type IpallocInit =
  | { readonly mode: 'seed'; readonly seeds: readonly PeerId[] }
  | { readonly mode: 'consensus'; readonly size: number }
  | { readonly mode: 'observer' };

export type InitialClaim =
  | { readonly kind: 'ring'; readonly ring: Ring }
  | { readonly kind: 'consensus'; readonly state: ConsensusState }
  | { readonly kind: 'observer' };

/** Parses the flag. `launchPeers` is the number of peers given on the `weft launch` command line. */
export function parseIpallocInit(text: string | undefined, launchPeers = 0): IpallocInit {
  const t = (text ?? '').trim();
  if (t === '' || t === 'consensus') return { mode: 'consensus', size: Math.max(1, launchPeers + 1) };
  if (t === 'observer') return { mode: 'observer' };
  const m = /^(seed|consensus)=(.*)$/.exec(t);
  if (m?.[1] === 'consensus') {
    if (!/^[1-9][0-9]{0,4}$/.test(m[2]!) || Number(m[2]) > MAX_FOUNDERS) throw new InvalidConfigError(`--ipalloc-init consensus=${m[2]}: N must be an integer from 1 to ${MAX_FOUNDERS}`);
    return { mode: 'consensus', size: Number(m[2]) };
  }
  if (m?.[1] === 'seed') {
    const seeds = m[2]!.split(',').map((s) => s.trim());
    return { mode: 'seed', seeds: validateFounders(seeds) };
  }
  throw new InvalidConfigError(`--ipalloc-init "${t}" is not one of seed=NAME,..., consensus[=N], observer`);
}

export function claimInitial(range: Cidr, init: IpallocInit, me: PeerId, now: number, opts: { retryMs?: number } = {}): InitialClaim {
  switch (init.mode) {
    case 'seed':
      return { kind: 'ring', ring: join(seedRing(range, init.seeds), me) };
    case 'consensus':
      return { kind: 'consensus', state: startConsensus(me, init.size, now, opts.retryMs === undefined ? {} : { retryMs: opts.retryMs }) };
    case 'observer':
      return { kind: 'observer' };
  }
}
