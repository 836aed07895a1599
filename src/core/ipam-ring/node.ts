/**
 * RingNode: one peer's view of the cluster IPAM ring, plugged into the mesh
 * as two gossip channels (docs/ring.md, "The engine"). Pure: no I/O, no
 * timers; time (`now`, monotonic ms) and randomness come in as functions,
 * the daemon drives `tick()` at `nextWakeup()`, and everything it must do
 * comes out through callbacks (persist, onChange, onEvent).
 *
 *  - Start-up: a stored ring is reloaded; otherwise `seed=` computes the
 *    ring, `consensus` runs Paxos over the `ipam.consensus` channel (started
 *    on the first need for addresses, when another peer's table arrives, or
 *    at once with `consensusStart: 'eager'`), and `observer` waits. A ring
 *    received by gossip is adopted in every mode.
 *  - Gossip: local changes go out as sub-ring deltas (delta.ts) along the
 *    broadcast tree; the whole ring is the anti-entropy form.
 *  - Timer: heartbeat, lease judgement, votes, reclaims, orphan adoption and
 *    free-space reports.
 *  - Space: `askForSpace` (a block from a donor), `claimAddress` (a single
 *    address from its owner), answered by unicast; outcomes arrive as
 *    `reply` events.
 *  - Operators: `rmpeer`, `reset`, `status`, `acceptForeignRing`.
 */
import { BadRequestError, ConflictError, InvalidConfigError, NotFoundError, RingRangeMismatchError, RingTooLargeError, type WeftError } from '../errors.js';
import { type Cidr, cidrLast, formatCidr } from '../ip/cidr.js';
import { type Interval, formatInterval, intersect, intervalsContain, normalize, subtract } from '../ip/ranges.js';
import type { GossipChannelState, GossipData, GossipReceiver, GossipSender } from '../mesh/gossip/interfaces.js';
import { type PeerId as MeshPeerId, isNickname } from '../mesh/peer-id.js';
import {
  type ConsensusState, type ConsensusTable, DEFAULT_CONSENSUS_RETRY_MS, type Genesis, type IpallocInit, LeaseTracker, type PeerId, type Ring, adoptOrphans, choosePeerToAskForSpace, compareGenesis,
  consensusRing, defaultBlockSize, encodeConsensus, encodeRing, freeByPeer, grant, heartbeat, join, livePeers, merge, orphanedRanges, ownedRanges, ownedSize, ownerDetail,
  isValidPeerId, ownershipChanges, ownsAll, pickDonation, reclaimCandidates, reclaimExpired, receiveConsensus, removePeer, reportFree, resetPeer, seedRing, startConsensus,
  stepConsensus, voteExpired,
} from '../ring/index.js';
import { canApplyDelta, onlyHeartbeatsDiffer, ringDelta, sameGenesis } from './delta.js';
import {
  CONSENSUS_CHANNEL, ConsensusGossip, DEFAULT_MAX_PAYLOAD_BYTES, type DecodedRingState, type PersistedRingState, RING_CHANNEL, type RefuseReason, RingGossip, type RingMessage,
  decodeConsensusPayload, decodePersistedState, decodeRingMessage, encodeRingMessage,
} from './payload.js';
import { generationOf, nextRingId } from './ring-id.js';

export type RingNodeState =
  /** consensus mode, no ring yet (consensus deferred or running). */
  | 'waiting-for-consensus'
  /** observer mode, no ring received yet. */
  | 'observer'
  /** Holds a ring and may allocate in its own space (and ask for more). */
  | 'ready'
  /** The peers heard recently own at most half of the range: this peer may be on the side that gets reclaimed. */
  | 'at-risk'
  /** A ring of a preceding genesis arrived while this peer holds allocations it would lose; refused until an operator decides. */
  | 'conflict'
  /** This peer ran `reset` (or discarded the ring as the last peer). */
  | 'left';

export type ChangeCause = 'start' | 'gossip' | 'consensus' | 'genesis' | 'tick' | 'grant' | 'rmpeer' | 'reset';

/** Passed to onChange whenever this peer's ownership changed. */
export interface RingChange {
  readonly cause: ChangeCause;
  /** Our ring id now. */
  readonly me: PeerId;
  /** Set when we were retired and rejoined under `me`: everything `previousId` held is in `lost`. */
  readonly previousId?: PeerId;
  readonly gained: Interval[];
  readonly lost: Interval[];
  /** The part of `gained` that came from a retired peer (reclaim, rmpeer, reset, orphans): allocate there last. */
  readonly inherited: Interval[];
  /** Our previous id was retired in this change. */
  readonly retired: boolean;
  /** A ring of another genesis replaced ours. */
  readonly genesisReplaced: boolean;
  /** Our allocations inside `lost` (from the `allocatedIn` hook; empty without it): re-register them with their new owner, or renumber. */
  readonly disowned: bigint[];
}

export type RequestKind = 'space' | 'claim' | 'reset';

/** The asynchronous outcome of askForSpace / claimAddress / reset. */
export interface ReplyEvent {
  readonly type: 'reply';
  readonly kind: RequestKind;
  /** The id returned by the request. */
  readonly id: number;
  /** The ring peer asked. */
  readonly peer: PeerId;
  readonly outcome: 'granted' | 'refused' | 'timeout' | 'acked';
  /** For `granted`: the range we now own. */
  readonly range?: Interval;
  /** For `refused`: the donor's reason, or `lost-race` / `genesis-mismatch` when its grant could not be applied here. */
  readonly reason?: RefuseReason | 'lost-race';
}

export type RingNodeEvent =
  | ReplyEvent
  | { readonly type: 'rejoined'; readonly previousId: PeerId; readonly me: PeerId }
  | { readonly type: 'reclaimed'; readonly peers: readonly { readonly suspect: PeerId; readonly heir: PeerId }[] }
  | { readonly type: 'consensus-decided'; readonly genesis: string; readonly founders: readonly PeerId[] }
  | { readonly type: 'genesis-conflict'; readonly ours: Genesis; readonly theirs: Genesis; readonly from: PeerId | undefined; readonly busy: Interval[] }
  | { readonly type: 'warning'; readonly code: string; readonly message: string };

/** What a request returned at once. `sent`: wait for the `reply` event with this id. */
export type RequestResult =
  | { readonly status: 'sent'; readonly id: number; readonly to: PeerId }
  | { readonly status: 'owned' | 'not-ready' | 'no-donor' | 'unreachable' | 'discarded'; readonly to?: PeerId; readonly state: RingNodeState; readonly message: string };

export interface RingNodeOptions {
  /** The router's nickname (`--name`): the first ring id, and the stem of later ones. */
  readonly nickname: string;
  /** The ring id to run as; default: the stored one, else the nickname. */
  readonly me?: PeerId;
  readonly range: Cidr;
  readonly init: IpallocInit;
  /** What `persist` last received (parsed JSON), or undefined on a first start. */
  readonly persisted?: unknown;
  /** Monotonic milliseconds (performance.now()), never the wall clock. */
  readonly now: () => number;
  /** Uniform in [0, 1). */
  readonly random: () => number;
  /** Heartbeat period (default 30 s). */
  readonly heartbeatMs?: number;
  /** Lease timeout (default 5 min). */
  readonly leaseTimeoutMs?: number;
  readonly freshMs?: number;
  readonly fenceMs?: number;
  readonly maxGapMs?: number;
  /** How long askForSpace / claimAddress / reset wait for an answer (default 10 s). */
  readonly requestTimeoutMs?: number;
  readonly consensusRetryMs?: number;
  /** `deferred` (default): consensus starts on the first need for addresses or when another peer's table arrives. */
  readonly consensusStart?: 'deferred' | 'eager';
  /** Donation block size in addresses (default 64: /26, /122). */
  readonly blockSize?: bigint;
  /** Hide our space from ownedRanges() while at risk (default true). */
  readonly fenceWhenAtRisk?: boolean;
  /** A ring of a preceding genesis that would disown allocations: `refuse` (default) or `adopt`. */
  readonly genesisPolicy?: 'refuse' | 'adopt';
  /** Payload budget (default: one default mesh frame minus 1 KiB). */
  readonly maxPayloadBytes?: number;
  /** The mesh peer that runs a ring id (the daemon maps by nickname; see nicknameCandidates). */
  readonly meshPeerOf: (ringId: PeerId) => MeshPeerId | undefined;
  /** Free (unallocated) addresses inside these intervals, from the allocator. */
  readonly freeOf: (intervals: readonly Interval[]) => bigint;
  /** True when no address in [first, last] is allocated or reserved. */
  readonly isUnused: (first: bigint, last: bigint) => boolean;
  /** Our allocations inside these intervals (optional; fills RingChange.disowned). */
  readonly allocatedIn?: (intervals: readonly Interval[]) => Iterable<bigint>;
  /** Store this (as JSON) before anything else happens; hand it back as `persisted` on the next start. */
  readonly persist: (state: PersistedRingState) => void;
  readonly onChange?: (ring: Ring | undefined, change: RingChange) => void;
  readonly onEvent?: (e: RingNodeEvent) => void;
}

interface Pending {
  readonly kind: RequestKind;
  readonly to: PeerId;
  readonly deadline: number;
  readonly addr?: bigint;
}

/** Something with the router's registerChannel (kept structural so tests can pass fakes). */
export interface ChannelRegistry {
  registerChannel<D extends GossipData<D>>(name: string, receiver: GossipReceiver<D>): GossipSender<D>;
}

const ANSWER_CACHE = 256;

export class RingNode {
  readonly nickname: string;
  readonly range: Cidr;
  readonly init: IpallocInit;
  readonly heartbeatMs: number;
  readonly requestTimeoutMs: number;
  readonly blockSize: bigint;
  /** The `ipam.ring` channel: register with `router.registerChannel(RING_CHANNEL, node.ringChannel)`. */
  readonly ringChannel: GossipChannelState<RingGossip>;
  /** The `ipam.consensus` channel. */
  readonly consensusChannel: GossipChannelState<ConsensusGossip>;

  private readonly o: RingNodeOptions;
  private readonly tracker: LeaseTracker;
  private readonly maxBytes: number;
  private readonly retryMs: number;
  private ring: Ring | undefined;
  private id: PeerId;
  private consensus: ConsensusState | undefined;
  private left = false;
  private conflict: { foreign: Ring; from: PeerId | undefined; since: number; busy: Interval[] } | undefined;
  private inherited: Interval[] = [];
  private nextBeatAt: number;
  private lastTick: number;
  private readonly pending = new Map<number, Pending>();
  private readonly answered = new Map<string, Uint8Array>();
  private readonly learned = new Map<PeerId, MeshPeerId>();
  private nextRequestId: number;
  private ringSender: GossipSender<RingGossip> | undefined;
  private consensusSender: GossipSender<ConsensusGossip> | undefined;
  private persistedRing: Ring | undefined;
  private lastError: string | undefined;

  constructor(opts: RingNodeOptions) {
    this.o = opts;
    this.nickname = opts.nickname;
    this.range = opts.range;
    this.init = opts.init;
    const pos = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0;
    const leaseTimeoutMs = opts.leaseTimeoutMs ?? 300_000;
    this.heartbeatMs = opts.heartbeatMs ?? 30_000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.retryMs = opts.consensusRetryMs ?? DEFAULT_CONSENSUS_RETRY_MS;
    this.maxBytes = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.blockSize = opts.blockSize ?? defaultBlockSize(opts.range.family);
    for (const [k, v] of [['heartbeatMs', this.heartbeatMs], ['requestTimeoutMs', this.requestTimeoutMs], ['consensusRetryMs', this.retryMs], ['maxPayloadBytes', this.maxBytes]] as const) {
      if (!pos(v)) throw new InvalidConfigError(`ipam ring ${k} must be a positive number`);
    }
    if (typeof this.blockSize !== 'bigint' || this.blockSize < 1n) throw new InvalidConfigError('ipam ring blockSize must be a positive bigint');
    const now = opts.now();
    this.tracker = new LeaseTracker({
      leaseTimeoutMs,
      ...(opts.freshMs !== undefined ? { freshMs: opts.freshMs } : {}),
      ...(opts.fenceMs !== undefined ? { fenceMs: opts.fenceMs } : {}),
      ...(opts.maxGapMs !== undefined ? { maxGapMs: opts.maxGapMs } : {}),
    }, now);
    if (this.heartbeatMs >= this.tracker.maxGapMs) {
      throw new InvalidConfigError(`ipam ring heartbeat (${this.heartbeatMs} ms) must be shorter than the clock-gap limit (${this.tracker.maxGapMs} ms, lease/4 by default)`, {
        hint: 'the timer ticks at least once per heartbeat; a longer pause looks like a suspended host and restarts lease judgement',
      });
    }
    this.lastTick = now;
    this.nextBeatAt = now;
    this.nextRequestId = Math.floor(opts.random() * 0x7fffffff);

    const stored: DecodedRingState | undefined = opts.persisted === undefined ? undefined : decodePersistedState(opts.persisted);
    if (opts.me !== undefined && stored && opts.me !== stored.me) {
      throw new InvalidConfigError(`ring id ${opts.me} differs from the stored one (${stored.me})`, { hint: 'leave `me` out to resume under the stored id' });
    }
    if (!isNickname(opts.nickname)) throw new InvalidConfigError(`${JSON.stringify(opts.nickname)} is not a valid nickname`);
    if (opts.me !== undefined && !isValidPeerId(opts.me)) throw new InvalidConfigError(`${JSON.stringify(opts.me)} is not a valid ring peer id`);
    this.id = opts.me ?? stored?.me ?? opts.nickname;
    if (stored?.ring && !coversRange(stored.ring, opts.range)) {
      throw new RingRangeMismatchError(`the stored ring covers ${formatCidr(stored.ring.range)}, this peer runs --ipalloc-range ${formatCidr(opts.range)}`, {
        hint: 'every peer must use the same range; to change it, reset the cluster IPAM state on every peer',
      });
    }

    this.ringChannel = {
      setSender: (s) => { this.ringSender = s; },
      gossip: () => (this.ring ? this.data(this.ring, false) : undefined),
      onGossip: (p) => this.onRingPayload(undefined, p),
      onGossipBroadcast: (src, p) => { this.onRingPayload(src, p); },
      onGossipUnicast: (src, p) => { this.onRingPayload(src, p); },
    };
    this.consensusChannel = {
      setSender: (s) => { this.consensusSender = s; },
      gossip: () => (this.consensus && !this.ring ? new ConsensusGossip(this.consensus.size, this.consensus.table) : undefined),
      onGossip: (p) => this.onConsensusPayload(p),
      onGossipBroadcast: (_src, p) => { this.onConsensusPayload(p); },
      onGossipUnicast: (_src, p) => { this.onConsensusPayload(p); },
    };

    let start: Ring | undefined = stored?.ring;
    if (!start && this.init.mode === 'seed') start = seedRing(opts.range, this.init.seeds);
    if (!start && this.init.mode === 'consensus') {
      if (stored?.consensus && stored.me === this.id) {
        if (stored.consensus.size !== this.init.size) {
          throw new InvalidConfigError(`the stored consensus ran with consensus=${stored.consensus.size}, this peer was launched with consensus=${this.init.size}`, {
            hint: 'launch with the same N until the ring is decided',
          });
        }
        // We were participating: our acceptor row must survive the restart (Paxos safety).
        this.consensus = receiveConsensus(this.startConsensusState(now), stored.consensus.table, now);
      } else if (opts.consensusStart === 'eager') {
        this.consensus = this.startConsensusState(now);
      }
    }
    if (start) this.commit(start, 'start', undefined);
    else this.persistNow();
  }

  // ------------------------------------------------------------------ wiring

  /** Registers both channels with a router (two-step wiring done in one call). */
  register(router: ChannelRegistry): void {
    this.ringChannel.setSender(router.registerChannel(RING_CHANNEL, this.ringChannel));
    this.consensusChannel.setSender(router.registerChannel(CONSENSUS_CHANNEL, this.consensusChannel));
  }

  /** Our ring id (changes when we are retired and rejoin). */
  get me(): PeerId {
    return this.id;
  }

  /** The current ring (immutable value), if any. */
  currentRing(): Ring | undefined {
    return this.ring;
  }

  // ------------------------------------------------------------------ queries

  state(now = this.o.now()): RingNodeState {
    if (this.left) return 'left';
    if (this.conflict) return 'conflict';
    if (!this.ring) return this.init.mode === 'observer' ? 'observer' : 'waiting-for-consensus';
    return this.tracker.reachability(this.ring, this.id, now).atRisk ? 'at-risk' : 'ready';
  }

  /**
   * Where the allocator may put new addresses now: our space, space we
   * inherited from retired peers last. Empty without a ring, after reset,
   * in a genesis conflict, and while at risk (unless fenceWhenAtRisk is off).
   */
  ownedRanges(now = this.o.now()): Interval[] {
    const { owned, inherited } = this.allocatableSpace(now);
    return [...subtract(owned, inherited), ...inherited];
  }

  /**
   * The same space for the allocator in one pass: all of it, and the part
   * inherited from retired or reclaimed peers (its last resort: if such a
   * peer was only cut off, its containers may still hold those addresses).
   */
  allocatableSpace(now = this.o.now()): { owned: Interval[]; inherited: Interval[] } {
    const s = this.state(now);
    if (!this.ring || s === 'left' || s === 'conflict') return { owned: [], inherited: [] };
    if (s === 'at-risk' && this.o.fenceWhenAtRisk !== false) return { owned: [], inherited: [] };
    const owned = ownedRanges(this.ring, this.id);
    return { owned, inherited: intersect(normalize(this.inherited), owned) };
  }

  /** Does the ring say we own `addr` (regardless of fencing)? */
  isOwner(addr: bigint): boolean {
    const r = this.ring;
    if (!r || this.left || addr < r.first || addr > r.last) return false;
    const d = ownerDetail(r, addr);
    return d.owner === this.id && !d.orphaned;
  }

  /** May the allocator hand out `addr` now (it is inside ownedRanges())? */
  mayAllocate(addr: bigint, now = this.o.now()): boolean {
    return intervalsContain(this.ownedRanges(now), addr);
  }

  /** When tick() wants to run next (monotonic ms), or undefined when nothing is scheduled. */
  nextWakeup(): number | undefined {
    let t: number | undefined;
    const at = (x: number): void => { if (t === undefined || x < t) t = x; };
    if (this.ring && !this.left) at(this.nextBeatAt);
    if (this.consensus && !this.ring) at(this.lastTick + this.retryMs / 4);
    for (const p of this.pending.values()) at(p.deadline);
    return t;
  }

  // ------------------------------------------------------------------ timer

  /** Heartbeat, lease judgement, votes, reclaims, orphans, free-space reports, request timeouts, consensus retries. */
  tick(now = this.o.now()): void {
    this.lastTick = now;
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(id);
      this.emit({ type: 'reply', kind: p.kind, id, peer: p.to, outcome: 'timeout' });
    }
    if (this.left) return;
    if (!this.ring) {
      if (this.consensus) this.stepConsensusNow(now);
      return;
    }
    this.tracker.observe(this.ring, now);
    if (this.conflict) this.recheckConflict();
    if (now < this.nextBeatAt) return;
    this.nextBeatAt = now + this.heartbeatMs;
    const me = this.id;
    let r = heartbeat(this.ring, me);
    r = voteExpired(r, me, this.tracker.expired(r, me, now));
    const rc = reclaimExpired(r, me, { fresh: this.tracker.freshness(me, now) });
    r = rc.ring;
    if (orphanedRanges(r).length > 0 && this.lowestFreshLive(r, now) === me) r = adoptOrphans(r, me);
    const q = this.blockSize;
    r = reportFree(r, me, (first, last) => {
      const f = this.o.freeOf([{ first, last }]);
      return f < 2n * q ? f : f - (f % q); // coarse above two blocks: fewer rewrites to gossip
    });
    this.commit(r, 'tick', this.ring);
    if (rc.reclaimed.length > 0) this.emit({ type: 'reclaimed', peers: rc.reclaimed.map((c) => ({ suspect: c.suspect, heir: c.heir! })) });
  }

  private lowestFreshLive(r: Ring, now: number): PeerId | undefined {
    return livePeers(r).find((id) => this.tracker.isFresh(id, this.id, now));
  }

  // ------------------------------------------------------------------ space

  /**
   * Asks a peer with free space for one block. `sent`: the outcome arrives
   * as a `reply` event (granted with the range, refused, or timeout). In
   * consensus mode without a ring this is the "first need" that starts the
   * deferred consensus, and it returns `not-ready`.
   */
  askForSpace(opts: { exclude?: Iterable<PeerId> } = {}): RequestResult {
    const now = this.o.now();
    const ring = this.ring;
    const state = this.state(now);
    if (!ring || state !== 'ready') {
      this.needRing(now);
      return { status: 'not-ready', state: this.state(now), message: `the IPAM ring is ${this.state(now)}` };
    }
    const exclude = new Set<PeerId>(opts.exclude ?? []);
    for (const id of livePeers(ring)) if (!this.tracker.isFresh(id, this.id, now)) exclude.add(id);
    for (;;) {
      const to = choosePeerToAskForSpace(ring, this.id, this.o.random, { exclude, minFree: 2n * this.blockSize })
        ?? choosePeerToAskForSpace(ring, this.id, this.o.random, { exclude });
      if (to === undefined) return { status: 'no-donor', state, message: 'no reachable peer reports free space' };
      const sent = this.request('space', to, (id) => ({ t: 'ask', from: this.id, to, id, genesis: ring.genesis.id }));
      if (sent) return sent;
      exclude.add(to);
    }
  }

  /**
   * A fixed address in another peer's space: asks its owner to grant us
   * exactly that address (a one-address block), which it does only if its
   * allocator has not handed it out. `owned` when it is already ours.
   */
  claimAddress(addr: bigint): RequestResult {
    const now = this.o.now();
    const ring = this.ring;
    const state = this.state(now);
    if (ring && (typeof addr !== 'bigint' || addr < ring.first || addr > ring.last)) throw new BadRequestError(`address ${String(addr)} is outside the cluster range ${formatCidr(ring.range)}`);
    if (!ring || state !== 'ready') {
      this.needRing(now);
      return { status: 'not-ready', state: this.state(now), message: `the IPAM ring is ${this.state(now)}` };
    }
    const d = ownerDetail(ring, addr);
    if (d.owner === this.id && !d.orphaned) return { status: 'owned', state, message: 'the address is in our space' };
    if (d.orphaned) return { status: 'no-donor', to: d.owner, state, message: 'the address is in an orphaned span; it will be adopted shortly' };
    const to = d.owner;
    return this.request('claim', to, (id) => ({ t: 'claim', from: this.id, to, id, genesis: ring.genesis.id, addr: addr - ring.first }), addr)
      ?? { status: 'unreachable', to, state, message: `no route to ${to}, the owner of the address` };
  }

  private request(kind: RequestKind, to: PeerId, make: (id: number) => RingMessage, addr?: bigint): RequestResult | undefined {
    const mesh = this.meshOf(to);
    if (mesh === undefined || !this.ringSender) return undefined;
    const id = this.nextRequestId;
    this.nextRequestId = (this.nextRequestId + 1) % 0x100000000;
    if (!this.ringSender.gossipUnicast(mesh, encodeRingMessage(make(id), this.maxBytes))) return undefined;
    this.pending.set(id, { kind, to, deadline: this.o.now() + this.requestTimeoutMs, ...(addr !== undefined ? { addr } : {}) });
    return { status: 'sent', id, to };
  }

  private meshOf(ringId: PeerId): MeshPeerId | undefined {
    return this.learned.get(ringId) ?? this.o.meshPeerOf(ringId);
  }

  /** In consensus mode, the first need for addresses starts the deferred consensus. */
  private needRing(now: number): void {
    if (this.ring || this.left || this.consensus || this.init.mode !== 'consensus') return;
    this.consensus = this.startConsensusState(now);
    this.stepConsensusNow(now, true);
  }

  // ------------------------------------------------------------------ operators

  /**
   * `weft rmpeer NAME`: we inherit everything NAME holds, at once. NAME is
   * a ring id or a nickname. Refused for a peer whose heartbeat we saw
   * advance recently, unless `force`.
   */
  rmpeer(name: string, opts: { force?: boolean } = {}): { removed: PeerId; gained: Interval[] } {
    const now = this.o.now();
    const ring = this.ring;
    if (!ring || this.left) throw new ConflictError(`the IPAM ring is ${this.state(now)}`);
    const target = this.resolveName(ring, name);
    if (target === this.id) throw new BadRequestError('a peer cannot remove itself; use reset');
    if (!opts.force && !ring.peers.get(target)?.retired && this.tracker.isFresh(target, this.id, now)) {
      throw new ConflictError(`peer ${target} is alive: its heartbeat advanced ${Math.round(this.tracker.silentFor(target, now) ?? 0)} ms ago`, {
        hint: 'stop it first (its addresses would be handed out twice), or force the removal',
      });
    }
    const before = ring;
    this.commit(removePeer(ring, this.id, target), 'rmpeer', ring);
    return { removed: target, gained: ownershipChanges(before, this.ring!, this.id).gained };
  }

  /** A live ring id as given; else the live incarnation of that nickname; else the (retired) id as given, a no-op. */
  private resolveName(ring: Ring, name: string): PeerId {
    const rec = ring.peers.get(name);
    if (rec && !rec.retired) return name;
    const live = isNickname(name) ? livePeers(ring).filter((id) => generationOf(name, id) !== undefined) : [];
    if (live.length === 1) return live[0]!;
    if (live.length > 1) throw new ConflictError(`"${name}" matches several live ring peers: ${live.join(', ')}`, { hint: 'give the ring id' });
    if (rec) return name;
    throw new NotFoundError(`no ring peer "${name}"`);
  }

  /**
   * `weft reset`: hand everything to a live heir (the one with the least
   * space among the peers we hear), retire, broadcast, and tell the heir.
   * `sent`: a `reply` event follows (acked or timeout). `discarded`: we
   * were the last live peer and simply dropped the ring. Afterwards the
   * node is `left`: it neither heartbeats nor rejoins (a restart with the
   * stored state rejoins under the next id).
   */
  reset(): RequestResult {
    const now = this.o.now();
    const ring = this.ring;
    if (!ring || this.left) return { status: 'not-ready', state: this.state(now), message: `the IPAM ring is ${this.state(now)}` };
    const others = livePeers(ring).filter((id) => id !== this.id);
    if (others.length === 0) {
      const before = ring;
      this.left = true;
      this.ring = undefined;
      this.consensus = undefined;
      this.persistNow();
      this.report(before, undefined, 'reset', this.id, undefined);
      return { status: 'discarded', state: 'left', message: 'we were the last live peer: the ring was discarded' };
    }
    const alive = others.filter((id) => this.tracker.isFresh(id, this.id, now) && this.meshOf(id) !== undefined);
    const next = resetPeer(ring, this.id, undefined, alive.length > 0 ? alive : undefined);
    const heir = next.peers.get(this.id)!.retired!.heir;
    this.left = true;
    this.commit(next, 'reset', ring);
    const delta = ringDelta(ring, next)!;
    return this.request('reset', heir, (id) => ({ t: 'reset', from: this.id, to: heir, id, ring: delta }))
      ?? { status: 'unreachable', to: heir, state: 'left', message: `retired in favour of ${heir} (broadcast), but there is no route to tell it directly` };
  }

  /** Adopts the ring of the preceding genesis we refused (state `conflict`); our allocations in lost space are reported as disowned. */
  acceptForeignRing(): boolean {
    const c = this.conflict;
    if (!c) return false;
    this.conflict = undefined;
    this.adoptForeign(c.foreign);
    return true;
  }

  // ------------------------------------------------------------------ gossip in

  private data(ring: Ring, partial: boolean): RingGossip {
    return new RingGossip(ring, partial, this.id, this.maxBytes, (e) => this.error(e));
  }

  private error(e: WeftError): void {
    if (this.lastError === e.message) return;
    this.lastError = e.message;
    this.emit({ type: 'warning', code: e.code, message: e.message });
  }

  private onRingPayload(src: MeshPeerId | undefined, payload: Uint8Array): RingGossip | undefined {
    const m = decodeRingMessage(payload);
    if (src !== undefined) this.learned.set(m.from, src);
    switch (m.t) {
      case 'ring':
        return this.receiveRing(m.ring, m.from);
      case 'delta':
        return this.receiveDelta(m.ring);
      case 'ask':
      case 'claim':
        if (src !== undefined) this.answer(src, m);
        return undefined;
      case 'reset':
        if (src !== undefined) this.receiveReset(src, m);
        return undefined;
      default:
        this.receiveAnswer(m);
        return undefined;
    }
  }

  private receiveDelta(delta: Ring): RingGossip | undefined {
    const before = this.ring;
    if (!canApplyDelta(before, delta)) return undefined; // a full ring follows with anti-entropy
    const merged = merge(before, delta);
    if (merged === before) return undefined;
    this.commit(merged, 'gossip', merged);
    return this.data(ringDelta(before, merged)!, true);
  }

  private receiveRing(incoming: Ring, from: PeerId | undefined): RingGossip | undefined {
    const before = this.ring;
    if (!before) {
      if (this.left) return undefined;
      if (!coversRange(incoming, this.range)) {
        this.error(new RingRangeMismatchError(`a peer gossips a ring over ${formatCidr(incoming.range)}, this peer runs ${formatCidr(this.range)}`));
        return undefined;
      }
      this.consensus = undefined;
      this.commit(incoming, 'gossip', incoming);
      return this.data(incoming, false);
    }
    if (!coversRange(incoming, this.range)) {
      this.error(new RingRangeMismatchError(`a peer gossips a ring over ${formatCidr(incoming.range)}, this peer runs ${formatCidr(before.range)}`));
      return undefined;
    }
    const g = compareGenesis(before.genesis, incoming.genesis);
    if (g < 0) return undefined; // ours precedes: they adopt ours when it reaches them
    if (g > 0) return this.foreignRing(incoming, from);
    const merged = merge(before, incoming);
    if (merged === before) return undefined;
    this.commit(merged, 'gossip', merged);
    return this.data(ringDelta(before, merged)!, true);
  }

  /**
   * A ring of a preceding genesis (docs/ring.md, "Genesis policy"): adopted
   * when that costs none of our allocations; otherwise, by default,
   * refused with an alert (state `conflict`, no new allocations) until the
   * allocations are gone or an operator accepts it.
   */
  private foreignRing(incoming: Ring, from: PeerId | undefined): RingGossip | undefined {
    const c = this.conflict;
    const foreign = c && sameGenesis(c.foreign, incoming) ? merge(c.foreign, incoming) : c && compareGenesis(c.foreign.genesis, incoming.genesis) < 0 ? c.foreign : incoming;
    const busy = this.busyIfAdopted(foreign);
    if (busy.length > 0 && this.o.genesisPolicy !== 'adopt') {
      const now = this.o.now();
      const first = !c || !sameGenesis(c.foreign, foreign);
      this.conflict = { foreign, from: from ?? c?.from, since: c && !first ? c.since : now, busy };
      if (first) this.emit({ type: 'genesis-conflict', ours: this.ring!.genesis, theirs: foreign.genesis, from, busy });
      return undefined;
    }
    this.conflict = undefined;
    this.adoptForeign(foreign);
    return this.data(foreign, false);
  }

  /** The parts of our space holding allocations that adopting `foreign` would take from us. */
  private busyIfAdopted(foreign: Ring): Interval[] {
    const ours = normalize(ownedRanges(this.ring!, this.id));
    const theirs = foreign.peers.get(this.id)?.retired ? [] : normalize(ownedRanges(foreign, this.id));
    return subtract(ours, theirs).filter((i) => !this.o.isUnused(i.first, i.last));
  }

  private recheckConflict(): void {
    const c = this.conflict!;
    if (this.busyIfAdopted(c.foreign).length > 0) return;
    this.conflict = undefined;
    this.adoptForeign(c.foreign);
  }

  private adoptForeign(foreign: Ring): void {
    this.commit(foreign, 'genesis', foreign);
  }

  private receiveReset(src: MeshPeerId, m: Extract<RingMessage, { t: 'reset' }>): void {
    if (canApplyDelta(this.ring, m.ring)) {
      const merged = merge(this.ring, m.ring);
      if (merged !== this.ring) this.commit(merged, 'gossip', merged);
    }
    if (m.to !== this.id || this.ring?.peers.get(m.from)?.retired?.heir !== this.id) return;
    this.ringSender?.gossipUnicast(src, encodeRingMessage({ t: 'reset-ack', from: this.id, to: m.from, id: m.id }, this.maxBytes));
  }

  // ------------------------------------------------------------------ requests in (donor / owner side)

  private answer(src: MeshPeerId, m: Extract<RingMessage, { t: 'ask' | 'claim' }>): void {
    const key = `${m.from}\n${m.id}\n${m.t}`;
    let bytes = this.answered.get(key);
    if (!bytes) {
      const refuse = (reason: RefuseReason): RingMessage => ({ t: 'refuse', from: this.id, to: m.from, id: m.id, reason });
      const r = this.decide(m);
      const reply = typeof r === 'string' ? refuse(r) : r;
      try {
        bytes = encodeRingMessage(reply, this.maxBytes);
      } catch (e) {
        if (!(e instanceof RingTooLargeError)) throw e;
        this.error(e);
        bytes = encodeRingMessage(refuse('no-space'), this.maxBytes);
      }
      this.answered.set(key, bytes);
      if (this.answered.size > ANSWER_CACHE) this.answered.delete(this.answered.keys().next().value!);
    }
    this.ringSender?.gossipUnicast(src, bytes);
  }

  private decide(m: Extract<RingMessage, { t: 'ask' | 'claim' }>): RefuseReason | RingMessage {
    const now = this.o.now();
    const ring = this.ring;
    if (m.to !== this.id) return 'not-me';
    if (!ring || this.left || this.conflict) return 'not-ready';
    if (ring.genesis.id !== m.genesis) return 'genesis-mismatch';
    if (ring.peers.get(m.from)?.retired) return 'retired';
    if (m.from === this.id) return 'not-me';
    if (this.tracker.reachability(ring, this.id, now).atRisk) return 'at-risk';
    let block: Interval;
    if (m.t === 'ask') {
      const d = pickDonation(ring, this.id, this.blockSize, this.o.isUnused);
      if (!d) return 'no-space';
      const size = d.last - d.first + 1n;
      // Keep at least as much free space as we give, so space does not ping-pong between two full peers.
      if (this.o.freeOf(ownedRanges(ring, this.id)) - size < size) return 'no-space';
      block = d;
    } else {
      const addr = ring.first + m.addr;
      if (addr > ring.last) return 'not-owner';
      const d = ownerDetail(ring, addr);
      if (d.owner !== this.id || d.orphaned) return 'not-owner';
      if (!this.o.isUnused(addr, addr)) return 'in-use';
      block = { first: addr, last: addr };
    }
    const next = grant(ring, this.id, m.from, block.first, block.last);
    this.commit(next, 'grant', ring);
    return { t: 'grant', from: this.id, to: m.from, id: m.id, first: block.first - ring.first, last: block.last - ring.first, ring: ringDelta(ring, next)! };
  }

  // ------------------------------------------------------------------ answers in (requester side)

  private receiveAnswer(m: Extract<RingMessage, { t: 'grant' | 'refuse' | 'reset-ack' }>): void {
    const p = this.pending.get(m.id);
    if (!p || m.to !== this.id || m.from !== p.to) return;
    const done = (e: Omit<ReplyEvent, 'type' | 'kind' | 'id' | 'peer'>): void => {
      this.pending.delete(m.id);
      this.emit({ type: 'reply', kind: p.kind, id: m.id, peer: p.to, ...e });
    };
    if (m.t === 'reset-ack') {
      if (p.kind === 'reset') done({ outcome: 'acked' });
      return;
    }
    if (p.kind === 'reset') return;
    if (m.t === 'refuse') return done({ outcome: 'refused', reason: m.reason });
    const ring = this.ring;
    if (!canApplyDelta(ring, m.ring)) return done({ outcome: 'refused', reason: 'genesis-mismatch' });
    const merged = merge(ring, m.ring);
    if (merged !== ring) this.commit(merged, 'grant', merged);
    const range = { first: ring.first + m.first, last: ring.first + m.last };
    const fits = p.kind === 'space' || (range.first === p.addr && range.last === p.addr);
    if (fits && this.ring && ownsAll(this.ring, this.id, range.first, range.last)) done({ outcome: 'granted', range });
    else done({ outcome: 'refused', reason: 'lost-race' });
  }

  // ------------------------------------------------------------------ consensus

  private startConsensusState(now: number): ConsensusState {
    if (this.init.mode !== 'consensus') throw new InvalidConfigError('not in consensus mode');
    return startConsensus(this.id, this.init.size, now, { retryMs: this.retryMs });
  }

  private onConsensusPayload(payload: Uint8Array): ConsensusGossip | undefined {
    const d = decodeConsensusPayload(payload);
    if (this.ring || this.left || this.init.mode !== 'consensus') return undefined;
    if (d.size !== this.init.size) {
      this.error(new InvalidConfigError(`a peer runs --ipalloc-init consensus=${d.size}, this peer consensus=${this.init.size}`, { hint: 'every peer must be launched with the same N' }));
      return undefined;
    }
    const now = this.o.now();
    const joining = this.consensus === undefined;
    this.consensus ??= this.startConsensusState(now);
    const before = this.consensus.table;
    this.consensus = receiveConsensus(this.consensus, d.table, now);
    const table = this.consensus.table;
    // A peer that joins because another's table arrived announces its row at once.
    this.afterConsensus(before, joining);
    return table !== before ? new ConsensusGossip(d.size, table) : undefined;
  }

  private stepConsensusNow(now: number, force = false): void {
    const before = this.consensus!.table;
    this.consensus = stepConsensus(this.consensus!, now);
    this.afterConsensus(before, force);
  }

  /** Persist our row before it leaves (Paxos), publish it, and build the ring once decided. */
  private afterConsensus(before: ConsensusTable, force: boolean): void {
    const c = this.consensus!;
    const mineChanged = before.get(this.id) !== c.table.get(this.id);
    if (c.table !== before || force) this.persistNow();
    if (mineChanged || force) this.consensusSender?.gossipBroadcast(new ConsensusGossip(c.size, c.table));
    if (!c.decision) return;
    const d = c.decision;
    const ring = consensusRing(this.range, d);
    this.consensus = undefined;
    this.emit({ type: 'consensus-decided', genesis: ring.genesis.id, founders: d.value });
    this.commit(ring, 'consensus', undefined);
  }

  // ------------------------------------------------------------------ applying changes

  /**
   * Installs `next` as our ring: joins (or rejoins under the next id when
   * retired), persists unless only heartbeats changed, broadcasts what
   * changed relative to `announceFrom` (the whole ring when undefined or of
   * another genesis), and reports ownership changes.
   */
  private commit(next: Ring, cause: ChangeCause, announceFrom: Ring | undefined): void {
    const prev = this.ring;
    const oldId = this.id;
    let ring = next;
    let previousId: PeerId | undefined;
    if (!this.left) {
      const rec = ring.peers.get(this.id);
      if (rec?.retired) {
        previousId = this.id;
        this.id = nextRingId(this.nickname, this.id, ring);
        ring = join(ring, this.id);
        this.inherited = [];
        this.nextBeatAt = this.o.now();
        for (const [rid, p] of this.pending) {
          if (p.kind === 'reset') continue;
          this.pending.delete(rid);
          this.emit({ type: 'reply', kind: p.kind, id: rid, peer: p.to, outcome: 'refused', reason: 'retired' });
        }
      } else if (!rec) {
        ring = join(ring, this.id);
      }
    }
    if (ring === prev) return;
    this.ring = ring;
    this.tracker.observe(ring, this.o.now());
    if (!this.persistedRing || previousId !== undefined || !onlyHeartbeatsDiffer(this.persistedRing, ring)) this.persistNow();
    if (this.ringSender) {
      const base = announceFrom && sameGenesis(announceFrom, ring) ? announceFrom : undefined;
      if (!base) this.ringSender.gossipBroadcast(this.data(ring, false));
      else {
        const delta = ringDelta(base, ring);
        if (delta) this.ringSender.gossipBroadcast(this.data(delta, true));
      }
    }
    if (previousId !== undefined) this.emit({ type: 'rejoined', previousId, me: this.id });
    this.report(prev, ring, cause, oldId, previousId);
  }

  private report(prev: Ring | undefined, ring: Ring | undefined, cause: ChangeCause, oldId: PeerId, previousId: PeerId | undefined): void {
    let gained: Interval[];
    let lost: Interval[];
    let retired = false;
    let genesisReplaced = false;
    if (ring) {
      const ch = ownershipChanges(prev, ring, oldId);
      ({ gained, lost, retired, genesisReplaced } = ch);
    } else {
      gained = [];
      lost = prev ? normalize(ownedRanges(prev, oldId)) : [];
    }
    let inherited: Interval[] = [];
    if (prev && ring && gained.length > 0) {
      inherited = gained.filter((g) => {
        const was = ownerDetail(prev, g.first).owner;
        return was !== oldId && ring.peers.get(was)?.retired !== undefined;
      });
    }
    if (previousId === undefined) {
      this.inherited = normalize(subtract(normalize([...this.inherited, ...inherited]), lost));
    }
    if (gained.length === 0 && lost.length === 0 && !retired && !genesisReplaced && previousId === undefined) return;
    const disowned = lost.length > 0 && this.o.allocatedIn ? [...this.o.allocatedIn(lost)] : [];
    this.o.onChange?.(ring, {
      cause, me: this.id, ...(previousId !== undefined ? { previousId } : {}), gained, lost, inherited, retired, genesisReplaced, disowned,
    });
  }

  private persistNow(): void {
    const c = this.consensus;
    this.persistedRing = this.ring;
    this.o.persist({
      v: 1,
      me: this.id,
      ...(this.ring ? { ring: encodeRing(this.ring) } : {}),
      ...(c && !this.ring ? { consensus: encodeConsensus(c) } : {}),
    });
  }

  private emit(e: RingNodeEvent): void {
    this.o.onEvent?.(e);
  }

  // ------------------------------------------------------------------ status

  /** Everything `weft status ipam` shows, as plain JSON (bigints as decimal strings, ranges formatted). */
  status(now = this.o.now()): RingNodeStatus {
    const ring = this.ring;
    const fam = this.range.family;
    const fmt = (i: Interval): string => formatInterval(fam, i);
    const state = this.state(now);
    const base: RingNodeStatus = {
      me: this.id,
      nickname: this.nickname,
      state,
      init: this.init.mode,
      range: formatCidr(this.range),
      genesis: ring ? { id: ring.genesis.id, founders: ring.genesis.founders } : null,
      owned: [],
      ownedSize: '0',
      free: '0',
      reachability: null,
      peers: [],
      votes: [],
      orphans: [],
      tombstones: 0,
      consensus: this.consensus ? { n: this.consensus.size, rows: this.consensus.table.size, decided: this.consensus.decision !== undefined } : null,
      pending: [...this.pending].map(([id, p]) => ({ id, kind: p.kind, peer: p.to, dueInMs: Math.max(0, Math.round(p.deadline - now)) })),
      conflict: this.conflict ? { theirs: { ...this.conflict.foreign.genesis }, from: this.conflict.from ?? null, forMs: Math.round(now - this.conflict.since), busy: this.conflict.busy.map(fmt) } : null,
      lastError: this.lastError ?? null,
    };
    if (!ring) return base;
    const inh = normalize(this.inherited);
    const owned = ownedRanges(ring, this.id).map((i) => ({ range: fmt(i), size: (i.last - i.first + 1n).toString(), free: this.o.freeOf([i]).toString(), inherited: intersect(inh, [i]).length > 0 }));
    const reach = this.tracker.reachability(ring, this.id, now);
    const advisory = freeByPeer(ring, true);
    const peers: RingNodeStatus['peers'][number][] = [];
    let tombstones = 0;
    for (const [id, rec] of [...ring.peers].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      if (rec.retired) tombstones++;
      const silent = this.tracker.silentFor(id, now);
      peers.push({
        id,
        heartbeat: rec.heartbeat,
        live: !rec.retired,
        self: id === this.id,
        fresh: !rec.retired && this.tracker.isFresh(id, this.id, now),
        silentForMs: id === this.id || rec.retired || silent === undefined ? null : Math.round(silent),
        owned: ownedSize(ring, id).toString(),
        free: (advisory.get(id) ?? 0n).toString(),
        ...(rec.retired ? { retired: { heir: rec.retired.heir, by: rec.retired.by, reason: rec.retired.reason, atHeartbeat: rec.retired.atHeartbeat } } : {}),
      });
    }
    return {
      ...base,
      owned,
      ownedSize: ownedSize(ring, this.id).toString(),
      free: this.o.freeOf(ownedRanges(ring, this.id)).toString(),
      reachability: { reachable: reach.reachable.toString(), total: reach.total.toString(), atRisk: reach.atRisk },
      peers,
      votes: reclaimCandidates(ring, { fresh: this.tracker.freshness(this.id, now) }).map((c) => ({
        suspect: c.suspect, atHeartbeat: c.atHeartbeat, voters: [...c.voters], weight: c.weight.toString(), quorum: c.quorum, heir: c.heir ?? null,
      })),
      orphans: orphanedRanges(ring).map(fmt),
      tombstones,
    };
  }
}

export interface RingNodeStatus {
  readonly me: PeerId;
  readonly nickname: string;
  readonly state: RingNodeState;
  readonly init: IpallocInit['mode'];
  readonly range: string;
  readonly genesis: { readonly id: string; readonly founders: number } | null;
  readonly owned: readonly { readonly range: string; readonly size: string; readonly free: string; readonly inherited: boolean }[];
  readonly ownedSize: string;
  readonly free: string;
  readonly reachability: { readonly reachable: string; readonly total: string; readonly atRisk: boolean } | null;
  readonly peers: readonly {
    readonly id: PeerId; readonly heartbeat: number; readonly live: boolean; readonly self: boolean; readonly fresh: boolean; readonly silentForMs: number | null;
    readonly owned: string; readonly free: string;
    readonly retired?: { readonly heir: PeerId; readonly by: PeerId; readonly reason: string; readonly atHeartbeat: number };
  }[];
  /** Pending reclaim votes (counted voters are those we heard recently). */
  readonly votes: readonly { readonly suspect: PeerId; readonly atHeartbeat: number; readonly voters: readonly PeerId[]; readonly weight: string; readonly quorum: boolean; readonly heir: PeerId | null }[];
  readonly orphans: readonly string[];
  readonly tombstones: number;
  readonly consensus: { readonly n: number; readonly rows: number; readonly decided: boolean } | null;
  readonly pending: readonly { readonly id: number; readonly kind: RequestKind; readonly peer: PeerId; readonly dueInMs: number }[];
  readonly conflict: { readonly theirs: { readonly id: string; readonly founders: number }; readonly from: PeerId | null; readonly forMs: number; readonly busy: readonly string[] } | null;
  readonly lastError: string | null;
}

/** Is `ring` over exactly this CIDR? */
function coversRange(ring: Ring, range: Cidr): boolean {
  return ring.family === range.family && ring.first === range.base && ring.last === cidrLast(range);
}
