/**
 * Test harness for test/unit/ring-node*.test.ts: RingNodes plugged into
 * real mesh routers over the in-memory simulator, in virtual time, wired as
 * the daemon would wire them (channels, a timer at nextWakeup, persistence
 * to a "disk" that survives kill -9, allocations that survive restarts,
 * meshPeerOf by nickname through the router's topology).
 */
import assert from 'node:assert/strict';
import { parseCidr, type Cidr } from '../../src/core/ip/cidr.js';
import type { Interval } from '../../src/core/ip/ranges.js';
import {
  type PersistedRingState, type RingChange, RingNode, type RingNodeEvent, type RingNodeOptions, nicknameCandidates,
} from '../../src/core/ipam-ring/index.js';
import type { MeshConfigInput } from '../../src/core/mesh/config.js';
import type { GossipData, GossipReceiver, GossipSender } from '../../src/core/mesh/gossip/interfaces.js';
import { SimNetwork, simAddress, type LinkModel, type SimNode } from '../../src/core/mesh/sim/sim-network.js';
import { randomPeerId, seededRandom } from '../../src/core/mesh/sim/rng.js';
import { type IpallocInit, type PeerId, type Ring, encodeRing, ownerDetail, parseIpallocInit, ringViolations } from '../../src/core/ring/index.js';

export const FAST_MESH: MeshConfigInput = {
  heartbeatIntervalMs: 1000, deadAfterMs: 3000, gossipIntervalMs: 3000, unreachableRemoveAfterMs: 120_000, topologyFlushMs: 100, backoff: { initialMs: 300, maxMs: 2000 },
};
/** Ring timing in these tests: heartbeat 500 ms, lease 6 s (fresh and fence 3 s, clock-gap limit 1.5 s). */
export const HEARTBEAT = 500;
export const LEASE = 6000;

export interface HostApp {
  readonly node: RingNode;
  /** The senders the router handed the node's channels (a test can inject raw payloads with them). */
  readonly senders: Map<string, GossipSender<never>>;
  readonly events: RingNodeEvent[];
  readonly changes: RingChange[];
}

export interface HostSpec {
  readonly nickname: string;
  readonly init: string;
  /** Indexes of the hosts it is launched with. */
  readonly peers?: readonly number[];
  readonly ring?: Partial<RingNodeOptions>;
}

interface HostRecord {
  readonly i: number;
  readonly spec: HostSpec;
  readonly address: string;
  readonly meshPeer: string;
  /** The daemon's data dir: what `persist` wrote last (through JSON, as on disk). */
  disk: string | undefined;
  /** The allocator's records (also on disk). */
  readonly allocs: Set<bigint>;
  persists: number;
  renumbered: number;
}

export interface ClusterOptions {
  readonly seed: number;
  readonly range?: string;
  readonly link?: Partial<LinkModel>;
  readonly ring?: Partial<RingNodeOptions>;
}

export class Cluster {
  readonly sim: SimNetwork<HostApp>;
  readonly range: Cidr;
  readonly hosts: HostRecord[] = [];
  /** Addresses found allocated on two live hosts at once (across a partition); must be 0 at the end. */
  transientDuplicates = 0;
  private readonly pick: () => number;
  private readonly wakeAt = new Map<string, number>();

  constructor(private readonly o: ClusterOptions) {
    this.range = parseCidr(o.range ?? '10.77.0.0/24');
    this.pick = seededRandom(o.seed ^ 0x1234);
    this.sim = new SimNetwork<HostApp>({ seed: o.seed, ...(o.link ? { link: o.link } : {}), setup: (router, spec) => this.setup(router, spec.address) });
  }

  add(spec: HostSpec, startAt = this.sim.now): number {
    const i = this.hosts.length;
    const address = simAddress(i);
    let meshPeer = randomPeerId(this.pick);
    while (this.hosts.some((h) => h.meshPeer === meshPeer)) meshPeer = randomPeerId(this.pick);
    this.hosts.push({ i, spec, address, meshPeer, disk: undefined, allocs: new Set(), persists: 0, renumbered: 0 });
    this.sim.add({ peer: meshPeer, nickname: spec.nickname, address, peers: (spec.peers ?? []).map(simAddress), config: FAST_MESH }, startAt);
    return i;
  }

  private setup(router: SimNode<HostApp>['router'], address: string): HostApp {
    const h = this.hosts.find((x) => x.address === address)!;
    const sim = this.sim;
    const simNode = sim.node(address);
    const inc = simNode.incarnation;
    const events: RingNodeEvent[] = [];
    const changes: RingChange[] = [];
    const init: IpallocInit = parseIpallocInit(h.spec.init, h.spec.peers?.length ?? 0);
    const count = (ivs: readonly Interval[]): bigint => {
      let n = 0n;
      for (const x of h.allocs) if (ivs.some((i) => x >= i.first && x <= i.last)) n++;
      return n;
    };
    const node = new RingNode({
      nickname: h.spec.nickname,
      range: this.range,
      init,
      persisted: h.disk === undefined ? undefined : JSON.parse(h.disk) as unknown,
      now: () => sim.now,
      random: sim.random,
      heartbeatMs: HEARTBEAT,
      leaseTimeoutMs: LEASE,
      requestTimeoutMs: 3000,
      consensusRetryMs: 400,
      blockSize: 16n,
      meshPeerOf: (ringId: PeerId) => {
        // As the daemon does: by nickname through the mesh topology.
        const peers = router.status().peers;
        for (const nick of nicknameCandidates(ringId)) {
          const p = peers.find((x) => x.nickname === nick && x.reachable);
          if (p) return p.peer;
        }
        return undefined;
      },
      freeOf: (ivs) => {
        let size = 0n;
        for (const i of ivs) size += i.last - i.first + 1n;
        return size - count(ivs);
      },
      isUnused: (first, last) => count([{ first, last }]) === 0n,
      allocatedIn: (ivs) => [...h.allocs].filter((x) => ivs.some((i) => x >= i.first && x <= i.last)),
      persist: (state: PersistedRingState) => { h.disk = JSON.stringify(state); h.persists++; },
      onChange: (_ring, change) => {
        changes.push(change);
        // The daemon re-registers or renumbers what it no longer owns; here: renumber (drop).
        for (const x of change.disowned) { h.allocs.delete(x); h.renumbered++; }
      },
      onEvent: (e) => events.push(e),
      ...this.o.ring,
      ...h.spec.ring,
    });
    const senders = new Map<string, GossipSender<never>>();
    node.register({
      registerChannel: <D extends GossipData<D>>(name: string, r: GossipReceiver<D>): GossipSender<D> => {
        const s = router.registerChannel(name, r);
        senders.set(name, s as unknown as GossipSender<never>);
        return s;
      },
    });
    const loop = (t: number): void => {
      if (!simNode.alive || simNode.incarnation !== inc || this.wakeAt.get(address) !== t) return;
      this.wakeAt.delete(address);
      node.tick(sim.now);
      sim.poke(address);
      this.arm(address, node, inc);
    };
    this.loops.set(address, loop);
    this.arm(address, node, inc);
    return { node, senders, events, changes };
  }

  private readonly loops = new Map<string, (t: number) => void>();

  /** Keeps one timer per host at min(nextWakeup, now + 200 ms): the daemon re-arms after every input; polling does the same here. */
  private arm(address: string, node: RingNode, inc: number): void {
    const simNode = this.sim.node(address);
    if (!simNode.alive || simNode.incarnation !== inc) return;
    const t = Math.max(this.sim.now, Math.min(node.nextWakeup() ?? Infinity, this.sim.now + 200));
    const cur = this.wakeAt.get(address);
    if (cur !== undefined && cur <= t && cur >= this.sim.now) return;
    this.wakeAt.set(address, t);
    const loop = this.loops.get(address)!;
    this.sim.queue.at(t, () => loop(t));
  }

  /** Call after driving a node from outside (a request, an operator action). */
  poke(i: number): void {
    const h = this.hosts[i]!;
    const simNode = this.sim.node(h.address);
    if (!simNode.alive) return;
    this.sim.poke(h.address);
    this.arm(h.address, simNode.app.node, simNode.incarnation);
  }

  app(i: number): HostApp {
    const n = this.sim.node(this.hosts[i]!.address);
    assert.ok(n.alive, `host ${i} is not running`);
    return n.app;
  }

  node(i: number): RingNode {
    return this.app(i).node;
  }

  alive(): number[] {
    return this.hosts.filter((h) => this.sim.node(h.address).alive).map((h) => h.i);
  }

  kill(i: number, opts: { silent?: boolean; wipe?: boolean } = {}): void {
    this.sim.kill(this.hosts[i]!.address, opts.silent ? { silent: true } : {});
    if (opts.wipe) { this.hosts[i]!.disk = undefined; this.hosts[i]!.allocs.clear(); }
  }

  restart(i: number): void {
    this.sim.restart(this.hosts[i]!.address);
  }

  partition(a: readonly number[], b: readonly number[]): void {
    this.sim.partition(a.map((i) => this.hosts[i]!.address), b.map((i) => this.hosts[i]!.address));
  }

  /** Allocates up to n addresses where the node may allocate now, lowest first; returns them. */
  allocate(i: number, n: number): bigint[] {
    const h = this.hosts[i]!;
    const out: bigint[] = [];
    for (const r of this.node(i).ownedRanges()) {
      for (let x = r.first; x <= r.last && out.length < n; x++) if (!h.allocs.has(x)) { h.allocs.add(x); out.push(x); }
      if (out.length >= n) break;
    }
    return out;
  }

  /** Runs in steps of `stepMs`, checking the invariants after each. */
  run(ms: number, stepMs = 50): void {
    const end = this.sim.now + ms;
    while (this.sim.now < end) {
      this.sim.run(Math.min(stepMs, end - this.sim.now));
      this.check();
    }
  }

  runUntil(done: () => boolean, maxMs: number, what: string, stepMs = 50): number {
    const start = this.sim.now;
    while (this.sim.now - start < maxMs) {
      this.sim.run(stepMs);
      this.check();
      if (done()) return this.sim.now - start;
    }
    assert.fail(`${what}: not within ${maxMs} ms (virtual)`);
  }

  ring(i: number): Ring | undefined {
    return this.node(i).currentRing();
  }

  canon(i: number): string | undefined {
    const r = this.ring(i);
    return r ? JSON.stringify(encodeRing(r)) : undefined;
  }

  /** Every live host (of `among`) holds the same ring. */
  sameRing(among = this.alive()): boolean {
    const c = among.map((i) => this.canon(i));
    return c[0] !== undefined && c.every((x) => x === c[0]);
  }

  /** Every live router reaches every other live one (routes computed), and all hold the same ring, in state `ready`. */
  settled(among = this.alive()): boolean {
    if (!this.sameRing(among)) return false;
    for (const i of among) {
      const router = this.sim.node(this.hosts[i]!.address).router;
      const reach = new Set(router.status().peers.filter((p) => p.reachable).map((p) => p.peer));
      if (!among.every((j) => j === i || reach.has(this.hosts[j]!.meshPeer))) return false;
      if (this.node(i).state() !== 'ready') return false;
    }
    return true;
  }

  /**
   * After every step: every ring is sound (one owner per address, the range
   * covered once); every host's allocations lie in its own space; hosts
   * that hold the same ring never hold the same address; across different
   * rings (a partition) duplicates are counted.
   */
  check(): void {
    const byRing = new Map<string, number[]>();
    const holder = new Map<bigint, number>();
    for (const i of this.alive()) {
      const node = this.node(i);
      const ring = node.currentRing();
      if (!ring) continue;
      const v = ringViolations(ring);
      assert.deepEqual(v, [], `t=${this.sim.now} host ${i}: ${v.join('; ')}`);
      const h = this.hosts[i]!;
      if (node.state() !== 'left' && node.state() !== 'conflict') {
        for (const x of h.allocs) {
          const d = ownerDetail(ring, x);
          assert.ok(d.owner === node.me && !d.orphaned, `t=${this.sim.now} host ${i} (${node.me}) holds ${x - ring.first} owned by ${d.owner}`);
        }
      }
      const key = JSON.stringify(encodeRing(ring));
      const list = byRing.get(key) ?? [];
      list.push(i);
      byRing.set(key, list);
      for (const x of h.allocs) {
        const other = holder.get(x);
        if (other !== undefined) this.transientDuplicates++;
        holder.set(x, i);
      }
    }
    for (const members of byRing.values()) {
      const seen = new Map<bigint, number>();
      for (const i of members) {
        for (const x of this.hosts[i]!.allocs) {
          assert.equal(seen.get(x), undefined, `t=${this.sim.now}: ${x} allocated by hosts ${seen.get(x)} and ${i}, which hold the same ring`);
          seen.set(x, i);
        }
      }
    }
  }

  /** The reply event for request `id` on host i, if it arrived. */
  reply(i: number, id: number): Extract<RingNodeEvent, { type: 'reply' }> | undefined {
    return this.app(i).events.find((e): e is Extract<RingNodeEvent, { type: 'reply' }> => e.type === 'reply' && e.id === id);
  }
}

export function size(ivs: readonly Interval[]): bigint {
  let n = 0n;
  for (const i of ivs) n += i.last - i.first + 1n;
  return n;
}
