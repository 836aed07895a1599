/**
 * The router's side of the mesh: a persistent peer identity, the TCP
 * transport around the pure mesh Router, the remembered connection targets
 * (`--resume`), and the gossip channels registered on it. Everything that
 * replicates across hosts plugs in here through `registerChannel`.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { TcpTransport } from '../adapters/mesh/tcp-transport.js';
import type { Store } from '../adapters/store/store.js';
import { InvalidConfigError } from '../core/errors.js';
import {
  clusterFingerprint, DEFAULT_MESH_PORT, type GossipChannelState, type GossipData, type GossipSender, isNickname, type MeshConfigInput, type MeshEvent,
  type MeshStatus, normalizePeerAddress, peerIdFromBytes, type PeerId, Router, tryParsePeerAddress,
} from '../core/mesh/index.js';
import type { Logger } from './logger.js';

export interface MeshOptions {
  /** TCP port for router-to-router connections. */
  readonly port: number;
  /** Address to listen on; default all IPv4 addresses. */
  readonly bindAddr?: string;
  /** The IP peers should dial (and our VXLAN endpoint); published through gossip for discovery. */
  readonly advertiseAddr?: string;
  /** PEER arguments of `weft launch`. */
  readonly peers: readonly string[];
  /** Also dial the targets remembered from the last run (`weft connect` / launch arguments). */
  readonly resume: boolean;
  readonly discovery: boolean;
  /** Timers and limits; tests shorten heartbeats here. */
  readonly config?: MeshConfigInput;
  /** `--ipalloc-init`: how the IPAM ring is first split (src/core/ring/init.ts). */
  readonly ipallocInit?: string;
  /** A peer silent this long is reclaimed from the IPAM ring. */
  readonly leaseTimeoutMs?: number;
  /** Period of the overlay's repair pass (ms; 0 = only on change). */
  readonly overlayRepairMs?: number;
  /** Start-up grace of the overlay (ms; default: twice the dead-peer time, between 5 and 15 s). */
  readonly overlayGraceMs?: number;
  /** Period of the path-MTU probe round (ms; 0 = off). */
  readonly pathMtuProbeMs?: number;
  /** Name mixed into the cluster fingerprint, so two clusters on one underlay never merge. */
  readonly clusterName?: string;
}

interface StoredIdentity {
  readonly peer: PeerId;
  readonly incarnation: number;
}

/**
 * The mesh's clock: milliseconds that look like the wall clock (statuses show
 * them as "N s ago") but advance monotonically. Heartbeats, dead timers and
 * redial schedules compare values of this clock only, so a wall-clock step
 * (NTP, `date`) neither declares every peer dead (forward) nor parks the
 * router's timers until the wall clock catches up again (backward).
 */
export function meshClock(): () => number {
  const base = Date.now() - performance.now();
  return () => base + performance.now();
}

const IDENTITY_KEY = 'mesh.identity';
const TARGETS_KEY = 'mesh.targets';

/** Loads (or creates) the peer ID and bumps the incarnation, durably, before anything is gossiped. */
export function nextIdentity(store: Store): StoredIdentity {
  return store.write((tx) => {
    const old = tx.getMeta<StoredIdentity>(IDENTITY_KEY);
    const id: StoredIdentity = old ? { peer: old.peer, incarnation: old.incarnation + 1 } : { peer: peerIdFromBytes(randomBytes(8)), incarnation: 1 };
    tx.putMeta(IDENTITY_KEY, id);
    return id;
  });
}

export class MeshService {
  readonly peer: PeerId;
  readonly incarnation: number;
  readonly nickname: string;
  private transport?: TcpTransport;
  private readonly targets = new Set<string>();
  private readonly listeners: ((e: MeshEvent) => void)[] = [];
  private readonly pending: ((r: Router) => void)[] = [];

  constructor(private readonly store: Store, nickname: string, private readonly ipallocRange: string, private readonly opts: MeshOptions, private readonly log: Logger) {
    if (!isNickname(nickname)) throw new InvalidConfigError(`router name "${nickname}" must be 1-63 characters of [A-Za-z0-9._-] starting with a letter or digit`, { hint: 'pass --name' });
    if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) throw new InvalidConfigError(`--port ${opts.port} is not a TCP port`);
    if (opts.advertiseAddr !== undefined && !tryParsePeerAddress(opts.advertiseAddr)) throw new InvalidConfigError(`--advertise-addr "${opts.advertiseAddr}" is not an IP address`);
    for (const p of opts.peers) if (!normalizePeerAddress(p)) throw new InvalidConfigError(`peer "${p}" is not an address (IP or IP:PORT)`);
    this.nickname = nickname;
    const id = nextIdentity(store);
    this.peer = id.peer;
    this.incarnation = id.incarnation;
  }

  /** Registers a channel; must be called before start(). */
  registerChannel<D extends GossipData<D>>(name: string, state: GossipChannelState<D>): void {
    this.pending.push((r) => state.setSender(r.registerChannel(name, state) as GossipSender<D>));
  }

  onEvent(fn: (e: MeshEvent) => void): void {
    this.listeners.push(fn);
  }

  async start(): Promise<void> {
    const remembered = this.opts.resume ? this.store.read((tx) => tx.getMeta<string[]>(TARGETS_KEY) ?? []) : [];
    for (const p of [...this.opts.peers, ...remembered]) this.targets.add(normalizePeerAddress(p)!);
    const advertise = this.opts.advertiseAddr !== undefined ? tryParsePeerAddress(`${this.opts.advertiseAddr.includes(':') ? `[${this.opts.advertiseAddr}]` : this.opts.advertiseAddr}:${this.opts.port}`) : undefined;
    const mlog = this.log.child({ component: 'mesh' });
    const transport = new TcpTransport({
      host: this.opts.bindAddr ?? '0.0.0.0',
      port: this.opts.port,
      clock: meshClock(),
      log: (level, m) => mlog[level](m),
      makeRouter: (host) => {
        const r = new Router({
          peer: this.peer, nickname: this.nickname, cluster: clusterFingerprint(this.ipallocRange, this.opts.clusterName ?? ''),
          ...(advertise ? { advertise } : {}), peers: [...this.targets],
          config: { ...this.opts.config, discovery: this.opts.discovery },
          onEvent: (e) => { for (const fn of this.listeners) fn(e); },
        }, host);
        for (const reg of this.pending) reg(r);
        return r;
      },
    });
    try {
      await transport.start();
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new InvalidConfigError(`cannot listen for peers on ${this.opts.bindAddr ?? '0.0.0.0'}:${this.opts.port}: ${err.code ?? err.message}`, { hint: 'another weft router (or Weave) may be running in this network namespace; pass --port' });
    }
    this.transport = transport;
    this.saveTargets();
  }

  get started(): boolean {
    return this.transport !== undefined;
  }

  get router(): Router {
    if (!this.transport) throw new Error('mesh not started');
    return this.transport.router;
  }

  /** Runs f on the router as an input (re-arms its timer). */
  control<T>(f: (r: Router) => T): T {
    if (!this.transport) throw new Error('mesh not started');
    return this.transport.control(f);
  }

  connect(address: string): string {
    const a = normalizePeerAddress(address);
    if (!a) throw new InvalidConfigError(`"${address}" is not a peer address (IP or IP:PORT)`);
    this.control((r) => r.connect(a));
    this.targets.add(a);
    this.saveTargets();
    return a;
  }

  forget(address: string): { address: string; wasTarget: boolean } {
    const a = normalizePeerAddress(address);
    if (!a) throw new InvalidConfigError(`"${address}" is not a peer address (IP or IP:PORT)`);
    const wasTarget = this.control((r) => r.forget(a));
    this.targets.delete(a);
    this.saveTargets();
    return { address: a, wasTarget };
  }

  status(): MeshStatus {
    return this.router.status();
  }

  /** Mesh peer ID of the live peer with this nickname (nicknames are unique among connected peers). */
  peerByNickname(nickname: string): PeerId | undefined {
    if (nickname === this.nickname) return this.peer;
    return this.router.status().peers.find((p) => p.nickname === nickname)?.peer;
  }

  counters(): TcpTransport['counters'] | undefined {
    return this.transport?.counters;
  }

  private saveTargets(): void {
    const list = [...this.targets].sort();
    this.store.write((tx) => tx.putMeta(TARGETS_KEY, list));
  }

  async stop(): Promise<void> {
    await this.transport?.close();
  }
}

export { DEFAULT_MESH_PORT };
