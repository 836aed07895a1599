/**
 * `--ipalloc-init consensus=N`: peers that start at the same time agree on
 * who splits the range, so they all build the same ring and no split-brain
 * ring can appear. It is single-decree Paxos where the only message is the
 * gossiped table of every participant's acceptor state: each peer writes
 * only its own row, rows merge by taking the more advanced one (a row only
 * ever advances), and every role reacts to the merged table:
 *
 *  - a proposer "prepares" by promising its own ballot (round, id);
 *  - an acceptor promises the highest ballot it sees, and accepts a value
 *    visible for a ballot at least as high as its promise;
 *  - once a quorum (⌊N/2⌋+1) of rows promise its ballot, the proposer
 *    accepts the value with the highest ballot among those rows, or, if none,
 *    its own proposal: every participant it knows, sorted;
 *  - anyone (observers too) learns the value when a quorum of rows accepted
 *    the same ballot.
 * A single proposer at a time in the common case: the lowest id proposes at
 * once, others only after `rank × retryMs` without progress.
 *
 * Safety holds under loss, duplication, reordering and partitions, as long
 * as at most N peers participate (an N below the real count can yield two
 * rings, as in Weave; over-estimating only delays) and a participant keeps
 * its row across restarts until the decision (the daemon persists it; a
 * peer that lost it must rejoin under a new id, or it could reuse a ballot). A peer that already
 * holds a ring never runs this: it gossips the ring, and a participant that
 * receives a ring adopts it and stops.
 */
import type { Cidr } from '../ip/cidr.js';
import { InvalidConfigError, RingInvalidError } from '../errors.js';
import { MAX_FOUNDERS, splitRing } from './seed.js';
import { type PeerId, type Ring, comparePeerIds, isValidPeerId } from './types.js';

export interface Ballot {
  readonly round: number;
  readonly proposer: PeerId;
}

export interface Accepted {
  readonly ballot: Ballot;
  /** The founders: participant ids, sorted. */
  readonly value: readonly PeerId[];
}

export interface AcceptorRow {
  readonly promised?: Ballot;
  readonly accepted?: Accepted;
}

export type ConsensusTable = ReadonlyMap<PeerId, AcceptorRow>;

export interface Decision {
  readonly ballot: Ballot;
  readonly value: readonly PeerId[];
}

export interface ConsensusState {
  readonly me: PeerId;
  /** false for observers: they only learn. */
  readonly participant: boolean;
  /** N from consensus=N. */
  readonly size: number;
  readonly retryMs: number;
  readonly table: ConsensusTable;
  /** Local monotonic time of the last change to the table (not gossiped). */
  readonly lastChangeAt: number;
  readonly decision?: Decision;
}

export const DEFAULT_CONSENSUS_RETRY_MS = 2000;

export function quorumSize(n: number): number {
  return Math.floor(n / 2) + 1;
}

export function compareBallots(a: Ballot | undefined, b: Ballot | undefined): number {
  if (!a || !b) return (a ? 1 : 0) - (b ? 1 : 0);
  return a.round - b.round || comparePeerIds(a.proposer, b.proposer);
}

function compareValues(a: readonly PeerId[], b: readonly PeerId[]): number {
  return comparePeerIds(a.join('\n'), b.join('\n'));
}

/** Total order on rows: promise, then accepted ballot, then value (only differs for forged input). */
function compareRows(a: AcceptorRow, b: AcceptorRow): number {
  return compareBallots(a.promised, b.promised)
    || compareBallots(a.accepted?.ballot, b.accepted?.ballot)
    || (a.accepted && b.accepted ? compareValues(a.accepted.value, b.accepted.value) : 0);
}

export function mergeTables(a: ConsensusTable, b: ConsensusTable): ConsensusTable {
  let out: Map<PeerId, AcceptorRow> | undefined;
  for (const [id, rb] of b) {
    const ra = (out ?? a).get(id);
    if (ra && compareRows(ra, rb) >= 0) continue;
    (out ??= new Map(a)).set(id, rb);
  }
  return out ?? a;
}

export function startConsensus(me: PeerId, size: number, now: number, opts: { participant?: boolean; retryMs?: number } = {}): ConsensusState {
  if (!isValidPeerId(me)) throw new InvalidConfigError(`"${String(me)}" is not a valid peer id`);
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_FOUNDERS) throw new InvalidConfigError(`consensus=${size}: the peer count must be an integer from 1 to ${MAX_FOUNDERS}`);
  const participant = opts.participant ?? true;
  const table = new Map<PeerId, AcceptorRow>();
  if (participant) table.set(me, {});
  return { me, participant, size, retryMs: opts.retryMs ?? DEFAULT_CONSENSUS_RETRY_MS, table, lastChangeAt: now };
}

/** Takes in a peer's table (from gossip), then runs the state machine. */
export function receiveConsensus(s: ConsensusState, table: ConsensusTable, now: number): ConsensusState {
  const merged = mergeTables(s.table, table);
  const t = merged === s.table ? s : { ...s, table: merged, lastChangeAt: now };
  return stepConsensus(t, now);
}

function learn(table: ConsensusTable, q: number): Decision | undefined {
  const counts = new Map<string, { n: number; acc: Accepted }>();
  for (const row of table.values()) {
    const a = row.accepted;
    if (!a) continue;
    const k = `${a.ballot.round}\n${a.ballot.proposer}\n${a.value.join(',')}`;
    const c = counts.get(k);
    if (c) c.n++;
    else counts.set(k, { n: 1, acc: a });
  }
  let best: Accepted | undefined;
  for (const { n, acc } of counts.values()) if (n >= q && (!best || compareBallots(acc.ballot, best.ballot) > 0)) best = acc;
  return best ? { ballot: best.ballot, value: best.value } : undefined;
}

function sameBallot(a: Ballot | undefined, b: Ballot | undefined): boolean {
  return compareBallots(a, b) === 0 && a !== undefined;
}

/** One pass of every role; repeated until nothing changes. Call it on every tick too (retries). */
export function stepConsensus(s: ConsensusState, now: number): ConsensusState {
  if (s.decision) return s;
  const q = quorumSize(s.size);
  let cur = s;
  for (let iter = 0; iter < 8; iter++) {
    const decision = learn(cur.table, q);
    if (decision) return { ...cur, decision };
    if (!cur.participant) return cur;
    const next = participantPass(cur, q, now);
    if (next === cur.table) return cur;
    cur = { ...cur, table: next, lastChangeAt: now };
  }
  return cur;
}

function participantPass(s: ConsensusState, q: number, now: number): ConsensusTable {
  const table = s.table;
  const before = table.get(s.me) ?? {};
  let my: AcceptorRow = before;
  let bestAcc: Accepted | undefined;
  let topPromise: Ballot | undefined;
  let maxRound = 0;
  let anyBallot = false;
  for (const row of table.values()) {
    if (row.accepted && (!bestAcc || compareBallots(row.accepted.ballot, bestAcc.ballot) > 0)) bestAcc = row.accepted;
    if (row.promised) {
      anyBallot = true;
      if (compareBallots(row.promised, topPromise) > 0) topPromise = row.promised;
      if (row.promised.round > maxRound) maxRound = row.promised.round;
    }
  }
  // Acceptor: accept the highest visible accepted value allowed by my promise.
  if (bestAcc && compareBallots(bestAcc.ballot, my.promised) >= 0 && compareBallots(bestAcc.ballot, my.accepted?.ballot) > 0) {
    my = { promised: bestAcc.ballot, accepted: bestAcc };
  }
  // Acceptor: promise the highest ballot seen.
  if (topPromise && compareBallots(topPromise, my.promised) > 0) my = { ...my, promised: topPromise };
  // Proposer, phase 2: a quorum promised my ballot.
  const mine = my.promised;
  if (mine && mine.proposer === s.me && !sameBallot(my.accepted?.ballot, mine)) {
    const promisers: AcceptorRow[] = [];
    for (const [id, row] of table) {
      const r = id === s.me ? my : row;
      if (sameBallot(r.promised, mine)) promisers.push(r);
    }
    if (promisers.length >= q) {
      let prior: Accepted | undefined;
      for (const r of promisers) if (r.accepted && (!prior || compareBallots(r.accepted.ballot, prior.ballot) > 0)) prior = r.accepted;
      const value = prior ? prior.value : [...table.keys()].sort();
      my = { promised: mine, accepted: { ballot: mine, value } };
    }
  }
  // Proposer, phase 1: start (or restart) a ballot when nobody made progress for a while.
  if (my === before && table.size >= q) {
    const rank = [...table.keys()].sort().indexOf(s.me);
    const wait = anyBallot ? (rank + 1) * s.retryMs : rank * s.retryMs;
    if (now - s.lastChangeAt >= wait) my = { ...my, promised: { round: maxRound + 1, proposer: s.me } };
  }
  if (my === before) return table;
  return new Map(table).set(s.me, my);
}

/** The ring every peer builds from a decision: the agreed founders split the range. */
export function consensusRing(range: Cidr, d: Decision): Ring {
  return splitRing(range, d.value, { id: `consensus:${d.ballot.round}.${d.ballot.proposer}`, founders: d.value.length });
}

// ---- wire form ----

type WireBallot = [number, string];
type WireRow = [string] | [string, WireBallot] | [string, WireBallot, WireBallot, string[]];
export interface ConsensusWire {
  v: 1;
  n: number;
  rows: WireRow[];
}

export function encodeConsensus(s: Pick<ConsensusState, 'size' | 'table'>): ConsensusWire {
  const rows: WireRow[] = [...s.table.keys()].sort().map((id) => {
    const r = s.table.get(id)!;
    const b = (x: Ballot): WireBallot => [x.round, x.proposer];
    if (!r.promised) return [id];
    if (!r.accepted) return [id, b(r.promised)];
    return [id, b(r.promised), b(r.accepted.ballot), [...r.accepted.value]];
  });
  return { v: 1, n: s.size, rows };
}

function bad(m: string): never {
  throw new RingInvalidError(`invalid consensus state: ${m}`);
}

function ballot(x: unknown, what: string): Ballot {
  if (!Array.isArray(x) || x.length !== 2 || !Number.isSafeInteger(x[0]) || (x[0] as number) < 1 || !isValidPeerId(x[1])) bad(`${what} is malformed`);
  return { round: x[0] as number, proposer: x[1] };
}

export function decodeConsensus(input: unknown): { size: number; table: ConsensusTable } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) bad('not an object');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['v', 'n', 'rows'].includes(k)) bad(`unknown key "${k}"`);
  if (o.v !== 1) bad('unsupported version');
  if (!Number.isSafeInteger(o.n) || (o.n as number) < 1 || (o.n as number) > MAX_FOUNDERS) bad('n is out of range');
  if (!Array.isArray(o.rows) || o.rows.length > MAX_FOUNDERS) bad('rows is not a bounded array');
  const table = new Map<PeerId, AcceptorRow>();
  let prev: string | undefined;
  for (const [i, r] of (o.rows as unknown[]).entries()) {
    if (!Array.isArray(r) || ![1, 2, 4].includes(r.length) || !isValidPeerId(r[0])) bad(`row ${i} is malformed`);
    if (prev !== undefined && !(prev < r[0])) bad(`rows are not strictly sorted at ${i}`);
    prev = r[0];
    if (r.length === 1) { table.set(r[0], {}); continue; }
    const promised = ballot(r[1], `row ${i} promise`);
    if (r.length === 2) { table.set(r[0], { promised }); continue; }
    const acc = ballot(r[2], `row ${i} accepted ballot`);
    if (compareBallots(acc, promised) > 0) bad(`row ${i} accepted a ballot above its promise`);
    const v = r[3];
    if (!Array.isArray(v) || v.length === 0 || v.length > MAX_FOUNDERS) bad(`row ${i} value is malformed`);
    for (const [j, id] of v.entries()) {
      if (!isValidPeerId(id)) bad(`row ${i} value has an invalid id`);
      if (j > 0 && !((v[j - 1] as string) < id)) bad(`row ${i} value is not strictly sorted`);
    }
    table.set(r[0], { promised, accepted: { ballot: acc, value: v as string[] } });
  }
  return { size: o.n as number, table };
}

/** Takes in a decoded wire form; refuses a table computed for another N (a configuration mismatch). */
export function receiveConsensusWire(s: ConsensusState, input: unknown, now: number): ConsensusState {
  const d = decodeConsensus(input);
  if (d.size !== s.size) {
    throw new InvalidConfigError(`peer runs --ipalloc-init consensus=${d.size}, this peer consensus=${s.size}`, { hint: 'every peer must be launched with the same consensus=N' });
  }
  return receiveConsensus(s, d.table, now);
}
