/**
 * The deterministic initial split: the range divided among a known list of
 * peers, identical on every peer that computes it (the list is sorted first,
 * so the order on the command line does not matter). Used by
 * `--ipalloc-init seed=...` and, with the agreed member list, by consensus.
 */
import { type Cidr, cidrSize } from '../ip/cidr.js';
import { InvalidConfigError } from '../errors.js';
import { NO_VOTES, makeRing } from './model.js';
import { type Entry, type Genesis, type PeerId, type PeerRecord, type Ring, isValidPeerId } from './types.js';

export const MAX_FOUNDERS = 4096;

/**
 * Share boundaries (offsets from the range start) for `k` founders. Each
 * share is about size/k, rounded down to a multiple of the largest power of
 * two not above size/(16k): aligned enough that blocks carved later stay
 * CIDR-shaped, fine enough that shares differ by at most ~1/16.
 * Shares can be empty when the range has fewer addresses than founders.
 */
export function shareOffsets(size: bigint, k: number): bigint[] {
  const K = BigInt(k);
  let align = 1n;
  const target = size / (16n * K);
  while (align * 2n <= target) align *= 2n;
  const out: bigint[] = [];
  for (let i = 0n; i < K; i++) {
    const raw = (i * size) / K;
    out.push(raw - (raw % align));
  }
  return out;
}

export function validateFounders(peers: readonly PeerId[]): PeerId[] {
  if (!Array.isArray(peers) || peers.length === 0) throw new InvalidConfigError('the initial split needs at least one peer');
  if (peers.length > MAX_FOUNDERS) throw new InvalidConfigError(`at most ${MAX_FOUNDERS} peers can share the initial split`);
  for (const p of peers) if (!isValidPeerId(p)) throw new InvalidConfigError(`"${String(p)}" is not a valid peer id (1-128 printable ASCII characters, no spaces)`);
  const sorted = [...peers].sort();
  for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) throw new InvalidConfigError(`peer "${sorted[i]}" is listed twice`);
  return sorted;
}

/** A fresh ring whose range is split among `founders`. */
export function splitRing(range: Cidr, founders: readonly PeerId[], genesis: Genesis): Ring {
  const sorted = validateFounders(founders);
  const size = cidrSize(range);
  const offs = shareOffsets(size, sorted.length);
  const entries: Entry[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = offs[i]!;
    const end = i + 1 < sorted.length ? offs[i + 1]! : size;
    if (end <= start) continue;
    entries.push({ start: range.base + start, owner: sorted[i]!, version: 0, free: end - start });
  }
  const peers = new Map<PeerId, PeerRecord>();
  for (const p of sorted) peers.set(p, { heartbeat: 0 });
  return makeRing(range, genesis, entries, peers, NO_VOTES);
}

/** `--ipalloc-init seed=a,b,c`: every peer computes the same ring, no messages needed. */
export function seedRing(range: Cidr, seeds: readonly PeerId[]): Ring {
  const sorted = validateFounders(seeds);
  return splitRing(range, sorted, { id: `seed:${sorted.join(',')}`, founders: sorted.length });
}
