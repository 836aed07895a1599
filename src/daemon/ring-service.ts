/**
 * The cluster IPAM ring in the router: a RingNode (src/core/ipam-ring)
 * plugged into the mesh, persisted in the store, driven by a timer, and
 * consulted by the allocator for the default subnet (the --ipalloc-range).
 * ADD paths that run out of this host's share, or that want a fixed address
 * in another host's share, wait here for a grant and then retry.
 */
import { performance } from 'node:perf_hooks';
import type { Store } from '../adapters/store/store.js';
import { AddressElsewhereError, ConflictError, NotAvailableError, ShareExhaustedError } from '../core/errors.js';
import { formatIp, parseIp } from '../core/ip/addr.js';
import { type Cidr, cidrSize, formatCidr } from '../core/ip/cidr.js';
import { type Interval, formatInterval, intervalsContain } from '../core/ip/ranges.js';
import { CONSENSUS_CHANNEL, nicknameCandidates, RING_CHANNEL, RingNode, type RingNodeEvent, type RingNodeStatus, type RequestResult } from '../core/ipam-ring/index.js';
import { parseIpallocInit } from '../core/ring/init.js';
import { defaultBlockSize } from '../core/ring/space.js';
import type { Logger } from './logger.js';
import type { MeshService } from './mesh-service.js';

const RING_KEY = 'ipam.ring';
const WAIT_MS = 15_000;

/**
 * The donation block for a range: the default (64 addresses) or, in a range
 * too small for it, the largest power of two ≤ 1/16 of the range. A donor
 * keeps at least one block free for itself, so with 64-address blocks a
 * small range (a /24 split between founders) could never donate at all and
 * a router that owns nothing (a late consensus participant, a joiner) could
 * never allocate.
 */
export function blockSizeFor(range: Cidr): bigint {
  const def = defaultBlockSize(range.family);
  let b = 1n;
  while (b * 2n <= cidrSize(range) / 16n && b * 2n <= def) b *= 2n;
  return b;
}

export interface RingServiceOptions {
  readonly range: Cidr;
  /** The subnet the ring manages (the default subnet). */
  readonly subnet: string;
  readonly init?: string;
  readonly launchPeers: number;
  readonly heartbeatMs?: number;
  readonly leaseTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** Ring ids of peers this router retired (lease reclaim): the cluster forgets their hosts. */
  readonly onReclaimed?: (ringIds: readonly string[]) => void;
}

/** Allocation facts the ring needs, for the managed subnet only. */
export interface RingAllocations {
  /** Addresses (values) of the managed subnet allocated on this host (bound or held). */
  used(): bigint[];
}

export class RingService {
  readonly node: RingNode;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly waiters = new Map<number, (e: RingNodeEvent & { type: 'reply' }) => void>();
  private readonly changeWaiters = new Set<() => void>();

  constructor(private readonly store: Store, private readonly mesh: MeshService, private readonly allocations: RingAllocations, private readonly opts: RingServiceOptions, private readonly log: Logger) {
    const persisted = store.read((tx) => tx.getMeta<unknown>(RING_KEY));
    // The donor's block search calls isUnused many times in one synchronous call: scan the store
    // once for it. The cache lives only until the event loop turns, so no allocation can slip in
    // between the scan and its use (a donated block must never hold an address in use).
    let cache: bigint[] | undefined;
    const used = (): bigint[] => {
      if (!cache) {
        cache = allocations.used();
        setImmediate(() => { cache = undefined; });
      }
      return cache;
    };
    this.node = new RingNode({
      nickname: mesh.nickname,
      range: opts.range,
      init: parseIpallocInit(opts.init, opts.launchPeers),
      ...(persisted !== undefined ? { persisted } : {}),
      now: () => performance.now(),
      random: Math.random,
      ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
      ...(opts.leaseTimeoutMs !== undefined ? { leaseTimeoutMs: opts.leaseTimeoutMs } : {}),
      ...(opts.requestTimeoutMs !== undefined ? { requestTimeoutMs: opts.requestTimeoutMs } : {}),
      blockSize: blockSizeFor(opts.range),
      meshPeerOf: (ringId) => {
        for (const nick of nicknameCandidates(ringId)) {
          const p = mesh.peerByNickname(nick);
          if (p !== undefined) return p;
        }
        return undefined;
      },
      freeOf: (intervals) => {
        let free = 0n;
        for (const i of intervals) free += i.last - i.first + 1n;
        for (const v of used()) if (intervalsContain(intervals, v)) free -= 1n;
        return free < 0n ? 0n : free;
      },
      isUnused: (first, last) => !used().some((v) => v >= first && v <= last),
      allocatedIn: (intervals) => used().filter((v) => intervalsContain(intervals, v)),
      persist: (state) => store.write((tx) => tx.putMeta(RING_KEY, state)),
      onChange: (_ring, change) => {
        const fam = opts.range.family;
        if (change.gained.length || change.lost.length) {
          log.info('IPAM ring ownership changed', { cause: change.cause, me: change.me, gained: change.gained.map((i) => formatInterval(fam, i)), lost: change.lost.map((i) => formatInterval(fam, i)) });
        }
        if (change.disowned.length) log.warn('addresses in use here now belong to another peer', { count: change.disowned.length, cause: change.cause });
        for (const w of [...this.changeWaiters]) w();
      },
      onEvent: (e) => {
        if (e.type === 'reply') this.waiters.get(e.id)?.(e);
        else if (e.type === 'warning' || e.type === 'genesis-conflict') log.warn(`IPAM ring: ${e.type === 'warning' ? e.message : 'a ring of another genesis was refused'}`, { ...e });
        else log.info(`IPAM ring: ${e.type}`, { ...e });
        if (e.type === 'reclaimed') opts.onReclaimed?.(e.peers.map((p) => p.suspect));
        for (const w of [...this.changeWaiters]) w();
      },
    });
    mesh.registerChannel(RING_CHANNEL, this.node.ringChannel);
    mesh.registerChannel(CONSENSUS_CHANNEL, this.node.consensusChannel);
  }

  /** Starts the timer; call once the mesh is up. */
  start(): void {
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of [...this.changeWaiters]) w();
  }

  private arm(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const at = this.node.nextWakeup();
    const delay = at === undefined ? 1000 : Math.min(1000, Math.max(0, at - performance.now()));
    this.timer = setTimeout(() => {
      try { this.mesh.control(() => this.node.tick()); } catch (e) { this.log.warn('IPAM ring tick failed', { err: (e as Error).message }); }
      this.arm();
    }, delay);
    this.timer.unref();
  }

  /** For the allocator: the part of `subnet` this host may allocate from, or undefined when the ring does not manage it. */
  ownedSpace(subnet: { name: string; cidr: string }): { owned: Interval[]; lastResort: Interval[] } | undefined {
    if (subnet.name !== this.opts.subnet || subnet.cidr !== formatCidr(this.opts.range)) return undefined;
    const { owned, inherited } = this.node.allocatableSpace();
    return { owned, lastResort: inherited };
  }

  status(): RingNodeStatus {
    return this.node.status();
  }

  /** Why ADD cannot allocate now (CNI STATUS), or undefined. */
  problem(): string | undefined {
    const s = this.node.state();
    if (s === 'conflict') return 'the IPAM ring is in conflict with a ring of another genesis; see `weft status ipam`';
    if (s === 'left') return 'this router left the IPAM ring (weft reset); restart it to rejoin';
    if (s === 'at-risk') return 'this router hears peers that own at most half of the address range (a partition?): allocation is paused so the other side can safely reclaim; see `weft status ipam`';
    return undefined;
  }

  private waitChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(t); this.changeWaiters.delete(done); resolve(); };
      const t = setTimeout(done, ms);
      this.changeWaiters.add(done);
    });
  }

  private async request(make: () => RequestResult, satisfied?: () => boolean): Promise<{ ok: boolean; why: string; refusedBy?: string }> {
    const deadline = performance.now() + WAIT_MS;
    while (!this.stopped && performance.now() < deadline) {
      // A ring that formed while we waited (consensus) may already have given us what we need.
      if (satisfied?.()) return { ok: true, why: 'ring formed' };
      const r = this.mesh.control(make);
      this.arm();
      if (r.status === 'owned') return { ok: true, why: 'owned' };
      if (r.status === 'not-ready') { await this.waitChange(250); continue; }
      if (r.status !== 'sent') return { ok: false, why: r.message };
      const reply = await new Promise<(RingNodeEvent & { type: 'reply' }) | undefined>((resolve) => {
        const t = setTimeout(() => { this.waiters.delete(r.id); resolve(undefined); }, WAIT_MS);
        this.waiters.set(r.id, (e) => { clearTimeout(t); this.waiters.delete(r.id); resolve(e); });
      });
      if (reply?.outcome === 'granted' || reply?.outcome === 'acked') return { ok: true, why: reply.outcome };
      return { ok: false, why: reply ? `${reply.peer} ${reply.outcome}${reply.reason ? ` (${reply.reason})` : ''}` : 'no answer', ...(reply?.outcome === 'refused' ? { refusedBy: reply.peer } : {}) };
    }
    return { ok: false, why: this.stopped ? 'router stopping' : `the IPAM ring is ${this.node.state()}` };
  }

  /**
   * Called when an ADD failed for want of space or because its address is
   * another host's: gets the space (waiting for consensus, asking a donor,
   * or claiming the address from its owner). True when a retry may succeed.
   */
  async resolve(e: unknown): Promise<boolean> {
    const state = this.node.state();
    if ((state === 'left' || state === 'conflict') && (e instanceof ShareExhaustedError || e instanceof AddressElsewhereError)) {
      // Waiting cannot help: only an operator (restart, or accepting the other ring) can.
      throw new NotAvailableError(this.problem()!);
    }
    if (e instanceof ShareExhaustedError) {
      const had = this.node.ownedRanges().length;
      if (had === 0) {
        // No share yet: the ring may still be forming (consensus, or an observer's first ask).
        const r = await this.askSpace(() => this.node.ownedRanges().length > 0);
        if (this.node.ownedRanges().length > 0) return true;
        this.log.warn('no address space could be obtained', { why: r.why });
        return false;
      }
      const r = await this.askSpace();
      if (!r.ok) this.log.warn('asking peers for address space failed', { why: r.why });
      return r.ok;
    }
    if (e instanceof AddressElsewhereError) {
      const r = await this.request(() => this.node.claimAddress(parseIp(e.address).value));
      if (!r.ok) this.log.warn('claiming an address from its owner failed', { address: e.address, why: r.why });
      return r.ok;
    }
    return false;
  }

  /** Asks donors for a block, one after the other while they refuse (each is asked once). */
  private async askSpace(satisfied?: () => boolean): Promise<{ ok: boolean; why: string }> {
    const refused = new Set<string>();
    const why: string[] = [];
    for (;;) {
      const r = await this.request(() => this.node.askForSpace({ exclude: refused }), satisfied);
      why.push(r.why);
      if (r.ok || r.refusedBy === undefined || refused.has(r.refusedBy)) return { ok: r.ok, why: why.join('; ') };
      refused.add(r.refusedBy);
    }
  }

  rmpeer(name: string, force: boolean): { removed: string; gained: string[] } {
    const r = this.mesh.control(() => this.node.rmpeer(name, { force }));
    this.opts.onReclaimed?.([r.removed]);
    return { removed: r.removed, gained: r.gained.map((i) => formatInterval(this.opts.range.family, i)) };
  }

  /** Addresses in use here that another host also uses (found when a foreign ring was accepted). */
  private duplicates: { address: string; why: string }[] = [];

  /**
   * The operator's way out of a genesis conflict (`weft accept-ring`): this
   * host drops its own ring for the one it refused, then claims every address
   * in use here that now lies in another host's share from that host. An
   * address the owner refuses is in use there too: a duplicate, reported
   * until the container holding it here is gone (it must be restarted to get
   * a new address; weft never renumbers a running container).
   */
  async acceptForeign(): Promise<{ accepted: boolean; claimed: string[]; duplicates: { address: string; why: string }[] }> {
    if (this.node.state() !== 'conflict') throw new ConflictError(`the IPAM ring is ${this.node.state()}, not in conflict: there is no refused ring to accept`, { hint: 'see `weft status ipam`' });
    const accepted = this.mesh.control(() => this.node.acceptForeignRing());
    this.arm();
    const fam = this.opts.range.family;
    const claimed: string[] = [];
    const duplicates: { address: string; why: string }[] = [];
    for (const v of this.allocations.used().filter((x) => !this.node.isOwner(x))) {
      const address = formatIp({ family: fam, value: v });
      const r = await this.request(() => this.node.claimAddress(v));
      if (r.ok) claimed.push(address); else duplicates.push({ address, why: r.why });
    }
    this.duplicates = duplicates;
    this.log.warn('IPAM ring: accepted the ring of another genesis', { claimed: claimed.length, duplicates });
    return { accepted, claimed, duplicates };
  }

  /** Duplicates from acceptForeign whose address is still in use here. */
  duplicateAddresses(): { address: string; why: string }[] {
    if (this.duplicates.length === 0) return [];
    const fam = this.opts.range.family;
    const used = new Set(this.allocations.used().map((v) => formatIp({ family: fam, value: v })));
    this.duplicates = this.duplicates.filter((d) => used.has(d.address));
    return this.duplicates;
  }

  async reset(): Promise<{ status: string; message: string }> {
    const r = this.mesh.control(() => this.node.reset());
    if (r.status !== 'sent') {
      if (r.status === 'not-ready') throw new ConflictError(r.message);
      return { status: r.status, message: r.message };
    }
    const reply = await new Promise<(RingNodeEvent & { type: 'reply' }) | undefined>((resolve) => {
      const t = setTimeout(() => { this.waiters.delete(r.id); resolve(undefined); }, WAIT_MS);
      this.waiters.set(r.id, (e) => { clearTimeout(t); this.waiters.delete(r.id); resolve(e); });
    });
    return { status: reply?.outcome ?? 'timeout', message: reply?.outcome === 'acked' ? `space handed to ${r.to}` : `space handed to ${r.to} by broadcast; it did not acknowledge in time` };
  }
}
