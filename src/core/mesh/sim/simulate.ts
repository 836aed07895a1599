import type { MeshConfigInput } from '../config.js';
import { LwwMap } from '../gossip/lww-map.js';
import type { Router } from '../router.js';
import { randomPeerId, seededRandom } from './rng.js';
import { SimNetwork, simAddress, type LinkModel, type SimNode } from './sim-network.js';

export interface SimApp {
  readonly map: LwwMap;
}

export interface ConvergenceOptions {
  readonly peers: number;
  /** Frame loss probability after the handshake (0..1). */
  readonly loss?: number;
  readonly seed?: number;
  /** Each peer is launched with this many random earlier peers (`weft launch PEER…`); discovery finds the rest. */
  readonly launchPeers?: number;
  /** Routers start spread over this much virtual time. */
  readonly startSpreadMs?: number;
  readonly link?: Partial<LinkModel>;
  readonly config?: MeshConfigInput;
  /** Give up after this much virtual time. */
  readonly maxVirtualMs?: number;
}

export interface ConvergenceResult {
  readonly peers: number;
  readonly loss: number;
  readonly seed: number;
  readonly converged: boolean;
  /** Virtual ms from the first router starting until every router agrees (topology and the gossiped map). */
  readonly virtualMs: number;
  /** Bytes of every frame sent by every router until then (headers included, lost frames too). */
  readonly bytes: number;
  /** Frames sent until then. */
  readonly messages: number;
  /** Established connections at the end, counted once per pair. */
  readonly connections: number;
  /** Real time the simulation took. */
  readonly wallMs: number;
}

/** Builds a network of `peers` routers, each with an LWW map channel, launched as an operator would. */
export function buildNetwork(o: ConvergenceOptions): SimNetwork<SimApp> {
  const seed = o.seed ?? 1;
  const sim: SimNetwork<SimApp> = new SimNetwork<SimApp>({
    seed,
    link: { ...o.link, loss: o.loss ?? o.link?.loss ?? 0 },
    setup: (router: Router, spec, net): SimApp => {
      const map = new LwwMap(spec.peer, () => net.now);
      map.setSender(router.registerChannel('sim.map', map));
      // Every router publishes one key about itself when it starts.
      map.set(`peer/${spec.nickname}`, spec.peer);
      return { map };
    },
  });
  const pick = seededRandom(seed ^ 0x5eed);
  const ids = new Set<string>();
  const launch = o.launchPeers ?? 2;
  const spread = o.startSpreadMs ?? 1000;
  for (let i = 0; i < o.peers; i++) {
    let peer = randomPeerId(pick);
    while (ids.has(peer)) peer = randomPeerId(pick);
    ids.add(peer);
    const peers = new Set<string>();
    for (let k = 0; k < Math.min(launch, i); k++) peers.add(simAddress(Math.floor(pick() * i)));
    sim.add({ peer, nickname: `host-${i}`, address: simAddress(i), peers: [...peers], ...(o.config ? { config: o.config } : {}) }, Math.floor(pick() * spread));
  }
  return sim;
}

/**
 * Converged: `peers` routers are running (all of them if not given), they
 * have the same topology (same peers at the same versions) and it contains
 * exactly them, that topology connects them all, and every router holds the
 * same map with at least one key per router.
 */
export function converged(sim: SimNetwork<SimApp>, peers?: number): boolean {
  const live = sim.alive();
  const expected = peers ?? sim.nodes().length;
  if (live.length !== expected) return false;
  if (live.length === 0) return true;
  const first = live[0]!;
  const fp = first.router.topologyFingerprint();
  const mapFp = first.app.map.fingerprint();
  for (const n of live) {
    if (n.router.topologyFingerprint() !== fp || n.app.map.fingerprint() !== mapFp) return false;
  }
  if (first.router.knownPeers() !== expected) return false;
  if (first.app.map.entries().length < expected) return false;
  return topologyConnectsAll(first);
}

/** Does this router's view (recomputed from scratch, without touching its caches) reach every peer it knows? */
function topologyConnectsAll(n: SimNode<SimApp>): boolean {
  const r = n.router.freshRoutes();
  return r.reachable.size === n.router.knownPeers();
}

/** Established connections, counted once per pair. */
export function countConnections(sim: SimNetwork<SimApp>): number {
  let n = 0;
  for (const node of sim.alive()) n += node.router.connectedPeers().length;
  return n / 2;
}

/**
 * The benchmark's entry point: how long (virtual time) and how many bytes
 * until `peers` routers started within a second of each other agree on the
 * topology and on a gossiped map.
 */
export function simulateConvergence(o: ConvergenceOptions): ConvergenceResult {
  const started = performance.now();
  const sim = buildNetwork(o);
  const took = sim.runUntil(() => converged(sim, o.peers), { maxMs: o.maxVirtualMs ?? 600_000, checkEveryMs: 50 });
  return {
    peers: o.peers,
    loss: o.loss ?? 0,
    seed: o.seed ?? 1,
    converged: took !== undefined,
    virtualMs: Math.round(took ?? sim.now),
    bytes: sim.stats.bytesSent,
    messages: sim.stats.framesSent,
    connections: countConnections(sim),
    wallMs: Math.round(performance.now() - started),
  };
}
