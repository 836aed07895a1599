import { InvalidConfigError, MeshFrameTooLargeError, MeshHandshakeRejectedError, MeshProtocolError } from '../errors.js';
import { formatPeerAddress, normalizePeerAddress } from './address.js';
import { meshConfig, type MeshConfig } from './config.js';
import { admit, preferredConnection, type ConnKey } from './conn/admission.js';
import { ConnectionMaker } from './conn/connection-maker.js';
import { Connection, type ConnEvent } from './conn/connection.js';
import type { GossipData, GossipReceiver, GossipSender } from './gossip/interfaces.js';
import { neighbourSubset } from './gossip/neighbour-subset.js';
import { isNickname, isPeerId, type PeerId } from './peer-id.js';
import type {
  ConnHandle, ConnSink, MeshEvent, MeshHost, MeshStats, MeshStatus, RouterOptions,
} from './router-types.js';
import { broadcastChildren, broadcastFanout, originSpan } from './topology/broadcast-tree.js';
import { computeRoutes, type Routes } from './topology/routes.js';
import { Topology } from './topology/topology.js';
import { CHANNEL_RE, CloseCode, PROTOCOL_MAX_VERSION, PROTOCOL_MIN_VERSION, closeCodeName } from './wire/constants.js';
import { encodeTopologyFrames } from './wire/message-codec.js';
import type { BroadcastEnvelope, DigestItem, Hello, Message, TopologyEntry, TopologyItem } from './wire/messages.js';

/** A type-erased channel payload; each channel only ever sees its own type. */
interface AnyData {
  encode(): Uint8Array[];
  merge(other: AnyData): AnyData;
}

interface Channel {
  readonly name: string;
  readonly receiver: GossipReceiver<never>;
  /** Local broadcasts and relays queued while an input is being processed, merged. */
  pendingBroadcast: AnyData | undefined;
  pendingSubset: AnyData | undefined;
}

interface ConnRecord {
  readonly id: number;
  readonly handle: ConnHandle;
  readonly fsm: Connection;
  readonly outbound: boolean;
  readonly address: string | undefined;
  readonly connSeq: number;
  peer: PeerId | undefined;
  key: ConnKey | undefined;
  establishedAt: number | undefined;
  done: boolean;
}

/**
 * A weft router's control plane, without I/O: it keeps connections to
 * other routers (handshake, tie-break, heartbeats, reconnects), gossips
 * who-is-connected-to-whom, routes unicast and broadcast messages over
 * whatever paths exist, and carries gossip channels for the replicated
 * state machines.
 *
 * Everything comes in through methods (transport events, `tick` when
 * `nextWakeup` is due) and goes out through the injected `MeshHost` and
 * `ConnHandle`s, so the daemon's TCP adapter and the simulator drive the
 * same code. The router is single-threaded by construction: callers must
 * not re-enter it from inside a handle's `send`/`close` or `host.dial`.
 */
export class Router {
  readonly config: MeshConfig;
  readonly self: PeerId;
  readonly nickname: string;
  private readonly cluster: Uint8Array;
  private readonly versions: { min: number; max: number };
  private readonly topology: Topology;
  private readonly maker: ConnectionMaker;
  private readonly conns = new Set<ConnRecord>();
  private readonly byPeer = new Map<PeerId, ConnRecord>();
  private readonly channels = new Map<string, Channel>();
  private readonly forgotten = new Set<string>();
  /** When we last asked for each peer's full entry (see mergeTopology). */
  private readonly requested = new Map<PeerId, number>();
  private readonly stats: MeshStats = { framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0, dropped: 0, protocolErrors: 0, badPayloads: 0 };
  private routes: Routes;
  private routesAt: number;
  private routesDirty = false;
  private flushAt: number | undefined;
  private gossipAt: number;
  private connCheckAt: number | undefined;
  private nextConnId = 1;
  private lastConnSeq = 0;
  private depth = 0;
  /** No connection has been established since start (see Hello.fresh). */
  private fresh = true;
  /** Full state exchanges are rationed (see syncDecide). */
  private lastFullSyncAt = -Infinity;
  private readonly deferredSync = new Set<ConnRecord>();
  private deferredSyncAt: number | undefined;
  /** An anti-entropy round brought forward because membership grew. */
  private boostAt: number | undefined;
  /** Topology generation discovery last looked at. */
  private discoveredGen = -1;
  /** Formatting addresses is slow and entries keep their address objects; remember the text per object. */
  private readonly addressText = new WeakMap<object, string>();
  private stopped = false;

  constructor(private readonly opts: RouterOptions, private readonly host: MeshHost) {
    if (!isPeerId(opts.peer)) throw new InvalidConfigError(`mesh peer ID ${String(opts.peer)} is not 16 hex digits (and not zero)`);
    if (!isNickname(opts.nickname)) throw new InvalidConfigError(`mesh nickname ${JSON.stringify(opts.nickname)} must be 1-63 of [A-Za-z0-9._-], starting alphanumeric`);
    this.config = meshConfig(opts.config);
    this.self = opts.peer;
    this.nickname = opts.nickname;
    this.cluster = opts.cluster;
    this.versions = opts.protocolVersions ?? { min: PROTOCOL_MIN_VERSION, max: PROTOCOL_MAX_VERSION };
    const now = host.now();
    this.topology = new Topology(this.self, this.nickname, opts.advertise, now);
    this.maker = new ConnectionMaker(this.config.backoff, () => host.random());
    this.routes = computeRoutes(this.topology, new Set());
    this.routesAt = now;
    // Spread the first anti-entropy round so routers started together do not gossip in lockstep.
    this.gossipAt = now + Math.floor(this.config.gossipIntervalMs * (0.5 + 0.5 * host.random()));
    for (const p of opts.peers ?? []) this.connect(p);
  }

  // ---------------------------------------------------------------- control

  /** `weft connect ADDR`: keep a connection to this address (dialed at once, then kept up with backoff). */
  connect(address: string): string {
    const a = normalizePeerAddress(address);
    if (!a) throw new InvalidConfigError(`"${address}" is not a peer address (IP or IP:PORT)`);
    this.forgotten.delete(a);
    this.discoveredGen = -1;
    this.maker.addExplicit(a, this.host.now());
    return a;
  }

  /** `weft forget ADDR`: stop dialing it (also as a discovered address). Open connections stay. */
  forget(address: string): boolean {
    const a = normalizePeerAddress(address);
    if (!a) return false;
    this.forgotten.add(a);
    return this.maker.remove(a);
  }

  /** Closes every connection with a reason; the router does nothing afterwards. */
  shutdown(reason = 'router shutting down'): void {
    this.enter();
    try {
      for (const rec of [...this.conns]) this.apply(rec, rec.fsm.close(CloseCode.Normal, reason, this.host.now()));
    } finally {
      this.stopped = true;
      this.leave();
    }
  }

  /**
   * Registers a gossip channel and returns its sender (two-step wiring: the
   * state exists before the router, and gets its sender here).
   */
  registerChannel<D extends GossipData<D>>(name: string, receiver: GossipReceiver<D>): GossipSender<D> {
    if (!CHANNEL_RE.test(name)) throw new InvalidConfigError(`gossip channel name ${JSON.stringify(name)} is not allowed`);
    if (this.channels.has(name)) throw new InvalidConfigError(`gossip channel ${name} is already registered`);
    const ch: Channel = { name, receiver: receiver as unknown as GossipReceiver<never>, pendingBroadcast: undefined, pendingSubset: undefined };
    this.channels.set(name, ch);
    return {
      gossipUnicast: (dst, payload) => this.unicast(ch, dst, payload),
      gossipBroadcast: (update) => this.queue(ch, 'broadcast', update as unknown as AnyData),
      gossipNeighbourSubset: (update) => this.queue(ch, 'subset', update as unknown as AnyData),
    };
  }

  // ---------------------------------------------------------------- transport inputs

  /** A transport connection is up (we dialed it, or accepted it). Returns where to report its bytes. */
  connectionOpened(handle: ConnHandle, info: { outbound: boolean; address?: string }): ConnSink {
    const now = this.host.now();
    const address = info.address === undefined ? undefined : (normalizePeerAddress(info.address) ?? info.address);
    const connSeq = info.outbound ? this.nextConnSeq(now) : 0;
    const fsm = new Connection({
      outbound: info.outbound,
      explicit: address !== undefined && this.maker.get(address)?.kind === 'explicit',
      fresh: this.fresh,
      connSeq,
      local: {
        peer: this.self, nickname: this.nickname, cluster: this.cluster, heartbeatMs: this.config.heartbeatIntervalMs,
        address: this.opts.advertise, extensions: new Map(), minVersion: this.versions.min, maxVersion: this.versions.max,
      },
      maxFrameBytes: this.config.maxFrameBytes,
      handshakeTimeoutMs: this.config.handshakeTimeoutMs,
      deadAfterMs: this.config.deadAfterMs,
      now,
    });
    const rec: ConnRecord = {
      id: this.nextConnId++, handle, fsm, outbound: info.outbound, address, connSeq, peer: undefined, key: undefined,
      establishedAt: undefined, done: false,
    };
    this.enter();
    try {
      if (this.stopped) {
        rec.done = true;
        handle.close();
      } else {
        this.conns.add(rec);
        this.apply(rec, fsm.start());
        this.noteConnDeadline(fsm.nextDeadline());
      }
    } finally {
      this.leave();
    }
    return {
      data: (chunk) => this.onData(rec, chunk),
      closed: (reason) => this.onTransportClosed(rec, reason),
    };
  }

  /** A dial started with `host.dial` failed before a connection existed. */
  dialFailed(address: string, reason: string): void {
    this.enter();
    try {
      this.maker.failed(normalizePeerAddress(address) ?? address, this.host.now(), reason);
      this.log('debug', `dial ${address} failed: ${reason}`);
    } finally {
      this.leave();
    }
  }

  private onData(rec: ConnRecord, chunk: Uint8Array): void {
    if (rec.done || this.stopped) return;
    this.enter();
    try {
      this.stats.bytesReceived += chunk.length;
      const now = this.host.now();
      this.apply(rec, rec.fsm.receive(chunk, now, (hello, version) => this.admit(rec, hello, version)));
    } finally {
      this.leave();
    }
  }

  private onTransportClosed(rec: ConnRecord, reason?: string): void {
    if (rec.done) return;
    this.enter();
    try {
      this.apply(rec, rec.fsm.transportClosed(reason));
    } finally {
      this.leave();
    }
  }

  // ---------------------------------------------------------------- timers

  /** When `tick` next has work (absolute ms), or undefined when idle. */
  nextWakeup(): number | undefined {
    if (this.stopped) return undefined;
    let t: number | undefined = this.gossipAt;
    const consider = (x: number | undefined): void => {
      if (x !== undefined && (t === undefined || x < t)) t = x;
    };
    consider(this.connCheckAt);
    consider(this.maker.nextDeadline());
    consider(this.flushAt);
    consider(this.deferredSyncAt);
    consider(this.boostAt);
    if (this.routesDirty) consider(this.routesAt + this.config.routeRecalcMs);
    consider(this.topology.nextGarbageAt(this.config.unreachableRemoveAfterMs));
    return t;
  }

  /** Runs whatever is due: connection timers, dials, topology publication, anti-entropy, garbage collection. */
  tick(): void {
    if (this.stopped) return;
    this.enter();
    try {
      const now = this.host.now();
      if (this.connCheckAt !== undefined && this.connCheckAt <= now) {
        this.connCheckAt = undefined;
        for (const rec of [...this.conns]) {
          if (!rec.done) this.apply(rec, rec.fsm.tick(now));
          if (!rec.done) this.noteConnDeadline(rec.fsm.nextDeadline());
        }
      }
      if (this.flushAt !== undefined && this.flushAt <= now) this.publishLocal(now);
      this.currentRoutes();
      this.runDeferredSyncs(now);
      const removed = this.topology.collectGarbage(now, this.config.unreachableRemoveAfterMs);
      if (removed.length > 0) {
        this.topologyChanged();
        this.maker.pruneDiscovered((p) => this.topology.has(p));
        for (const peer of removed) this.emit({ type: 'peer-removed', peer });
      }
      if (this.gossipAt <= now || (this.boostAt !== undefined && this.boostAt <= now)) {
        const periodic = this.gossipAt <= now;
        if (periodic) this.gossipAt = now + Math.floor(this.config.gossipIntervalMs * (0.9 + 0.2 * this.host.random()));
        this.boostAt = undefined;
        this.antiEntropy(periodic);
      }
      this.dialDue(now);
    } finally {
      this.leave();
    }
  }

  private noteConnDeadline(d: number | undefined): void {
    if (d !== undefined && (this.connCheckAt === undefined || d < this.connCheckAt)) this.connCheckAt = d;
  }

  private dialDue(now: number): void {
    const mayDial = (): boolean => this.byPeer.size + this.pendingOutbound() < this.config.connLimit;
    for (const address of this.maker.due(now, (p) => this.byPeer.has(p), mayDial)) this.host.dial(address);
  }

  private pendingOutbound(): number {
    let n = 0;
    for (const r of this.conns) if (r.outbound && r.establishedAt === undefined) n++;
    return n;
  }

  private nextConnSeq(now: number): number {
    this.lastConnSeq = Math.max(this.lastConnSeq + 1, Math.floor(now));
    return this.lastConnSeq;
  }

  // ---------------------------------------------------------------- connection events

  private admit(rec: ConnRecord, hello: Hello, _version: number): { code: number; reason: string } | undefined {
    const candidate: ConnKey = rec.outbound ? { initiator: this.self, connSeq: rec.connSeq } : { initiator: hello.peer, connSeq: hello.connSeq };
    const current = this.byPeer.get(hello.peer);
    const d = admit({
      self: { peer: this.self, nickname: this.nickname, cluster: this.cluster },
      remote: hello,
      candidate,
      existing: current?.key ? [current.key] : [],
      nicknameOwner: (n) => this.nicknameOwner(n, hello.peer),
      otherConnections: this.byPeer.size - (current ? 1 : 0),
      connLimit: this.config.connLimit,
      candidateIsOurs: rec.outbound,
    });
    if (!d.accept) return { code: d.code, reason: d.reason };
    // An older connection to the same peer that lost (d.replaces) is closed
    // in onEstablished, once this one has taken its place.
    rec.key = candidate;
    return undefined;
  }

  /** A reachable peer other than `except` that uses `nickname`. */
  private nicknameOwner(nickname: string, except: PeerId): PeerId | undefined {
    for (const r of this.byPeer.values()) if (r.peer !== except && r.fsm.remote?.nickname === nickname) return r.peer;
    for (const p of this.topology.peersWithNickname(nickname)) {
      if (p !== except && p !== this.self && this.routes.reachable.has(p)) return p;
    }
    return undefined;
  }

  /** Carries out what a connection's state machine asked for. */
  private apply(rec: ConnRecord, events: readonly ConnEvent[]): void {
    this.applyEvents(rec, events);
    // Its timers may have moved earlier (established: heartbeats start).
    if (!rec.done) this.noteConnDeadline(rec.fsm.nextDeadline());
  }

  private applyEvents(rec: ConnRecord, events: readonly ConnEvent[]): void {
    for (const ev of events) {
      switch (ev.type) {
        case 'send':
          this.write(rec, ev.frame);
          break;
        case 'established':
          this.onEstablished(rec, ev.remote);
          break;
        case 'message':
          this.stats.framesReceived++;
          if (rec.peer !== undefined && this.byPeer.get(rec.peer) === rec) this.onMessage(rec, ev.message);
          break;
        case 'closed':
          this.onClosed(rec, ev.code, ev.reason, ev.byPeer, ev.error);
          break;
      }
    }
  }

  private write(rec: ConnRecord, frame: Uint8Array): void {
    this.stats.framesSent++;
    this.stats.bytesSent += frame.length;
    rec.handle.send(frame);
  }

  private onEstablished(rec: ConnRecord, remote: Hello): void {
    const now = this.host.now();
    const peer = remote.peer;
    rec.peer = peer;
    rec.establishedAt = now;
    const old = this.byPeer.get(peer);
    if (old && old !== rec && old.key && rec.key && preferredConnection(old.key, rec.key) === old.key) {
      // Two handshakes to the same peer ran at once and the other one won;
      // the peer reaches the same verdict with the same rule.
      this.apply(rec, rec.fsm.close(CloseCode.Duplicate, 'duplicate connection; keeping the other one', now));
      return;
    }
    const wasFresh = this.fresh;
    this.byPeer.set(peer, rec);
    if (old && old !== rec) this.apply(old, old.fsm.close(CloseCode.Duplicate, 'replaced by a preferred connection', now));
    this.topology.forgiveTombstone(peer);
    if (rec.outbound && rec.address) this.maker.connected(rec.address, peer, now);
    this.directChanged();
    this.log('info', `connected to ${remote.nickname} (${peer}) ${rec.outbound ? 'outbound to' : 'inbound from'} ${rec.address ?? (remote.address ? formatPeerAddress(remote.address) : '?')}`);
    // A replacement (duplicate tie-break) is not news: the peer was connected all along.
    if (!old) this.emit({ type: 'connection-up', peer, nickname: remote.nickname, outbound: rec.outbound, address: rec.address });
    this.fresh = false;
    if (old !== undefined) this.syncLight(rec);
    else if (wasFresh || remote.fresh) this.syncFull(rec, now);
    else this.syncDecide(rec, now);
  }

  /**
   * What a new neighbour gets. Weave sends every channel's full state on
   * every new connection: while a mesh of n forms that is a full state per
   * connection, O(n³) bytes in all. Our rules:
   * - either side fresh (just started, holds nothing): full exchange;
   * - peer already reachable in our view (in our component, kept in step
   *   by broadcasts): one topology digest, from the lower ID;
   * - otherwise (new, restarted, across a healed partition, another
   *   cluster): a full exchange, but at most one per `syncWindow`; other
   *   such connections wait for the window to end and decide again, by
   *   which time most have become reachable through the first one. Every
   *   router with a link into a component it could not reach exchanges on
   *   at least one such link, and what it learns it passes on to its own
   *   side (onGossip's news goes to random neighbours), so state crosses
   *   in both directions. A round of anti-entropy is brought forward when
   *   new members appear (currentRoutes) to mop up what that misses.
   */
  private syncDecide(rec: ConnRecord, now: number): void {
    const peer = rec.peer!;
    if (this.routes.reachable.has(peer)) {
      this.syncLight(rec);
    } else if (now - this.lastFullSyncAt >= this.syncWindow()) {
      this.syncFull(rec, now);
    } else {
      this.deferredSync.add(rec);
      this.deferredSyncAt = this.lastFullSyncAt + this.syncWindow();
    }
  }

  private syncWindow(): number {
    return 2 * this.config.topologyFlushMs;
  }

  private syncFull(rec: ConnRecord, now: number): void {
    this.lastFullSyncAt = now;
    this.sendTo(rec, { kind: 'topology-request', wantReverse: false, partial: false, digest: this.topology.digest() });
    for (const ch of this.channels.values()) this.sendChannelState(rec, ch);
  }

  private syncLight(rec: ConnRecord): void {
    // Both ends should agree already: one digest, from the lower ID; the
    // other end asks back only if it has something newer.
    if (this.self < rec.peer!) this.sendTo(rec, { kind: 'topology-request', wantReverse: true, partial: false, digest: this.topology.digest() });
  }

  private runDeferredSyncs(now: number): void {
    if (this.deferredSyncAt === undefined || now < this.deferredSyncAt) return;
    this.deferredSyncAt = undefined;
    this.currentRoutes();
    const waiting = [...this.deferredSync];
    this.deferredSync.clear();
    for (const rec of waiting) if (!rec.done && rec.peer !== undefined && this.byPeer.get(rec.peer) === rec) this.syncDecide(rec, now);
  }

  private onClosed(rec: ConnRecord, code: number, reason: string, byPeer: boolean, error: MeshProtocolError | undefined): void {
    if (rec.done) return;
    rec.done = true;
    this.conns.delete(rec);
    rec.handle.close();
    const now = this.host.now();
    // A refusal is the peer's policy; anything else carrying an error is bad input.
    const badInput = error !== undefined && !(error instanceof MeshHandshakeRejectedError);
    if (badInput) this.stats.protocolErrors++;
    const who = rec.fsm.remote ? `${rec.fsm.remote.nickname} (${rec.fsm.remote.peer})` : (rec.address ?? `connection #${rec.id}`);
    const level = badInput || code === CloseCode.ClusterMismatch || code === CloseCode.NameCollision || code === CloseCode.VersionMismatch ? 'warn' : 'info';
    this.log(level, `connection to ${who} closed ${byPeer ? 'by peer' : 'by us'}: ${closeCodeName(code)}: ${reason}${error ? ` [${error.code}]` : ''}`);
    if (rec.peer !== undefined && this.byPeer.get(rec.peer) === rec) {
      this.byPeer.delete(rec.peer);
      this.maker.peerDisconnected(rec.peer, now);
      this.directChanged();
      this.emit({ type: 'connection-down', peer: rec.peer, code, reason });
    }
    if (rec.outbound && rec.address) {
      if (rec.establishedAt !== undefined) this.maker.disconnected(rec.address, now, reason);
      else this.maker.failed(rec.address, now, `${closeCodeName(code)}: ${reason}`, code);
    }
  }

  // ---------------------------------------------------------------- messages

  private onMessage(rec: ConnRecord, m: Message): void {
    switch (m.kind) {
      case 'topology':
        if (m.broadcast && m.broadcast.dst !== this.self) this.relay(m.broadcast.dst, m.broadcast.ttl, (ttl) => ({ ...m, broadcast: { ...m.broadcast!, ttl } }));
        else {
          this.mergeTopology(rec, m.entries);
          if (m.broadcast) this.forwardBroadcast(m.broadcast, (env) => ({ kind: 'topology', broadcast: env, entries: m.entries }));
        }
        break;
      case 'topology-request':
        this.answerTopologyRequest(rec, m.digest, m.wantReverse, m.partial);
        break;
      case 'gossip': {
        const ch = this.channels.get(m.channel);
        if (!ch) return this.unknownChannel(m.channel);
        const delta = this.deliver(ch, () => ch.receiver.onGossip(m.payload) as AnyData | undefined);
        if (delta) this.queue(ch, 'subset', delta);
        break;
      }
      case 'gossip-broadcast': {
        const env = m.envelope;
        if (env.dst !== this.self) {
          this.relay(env.dst, env.ttl, (ttl) => ({ ...m, envelope: { ...env, ttl } }));
          break;
        }
        const ch = this.channels.get(m.channel);
        if (ch) this.deliver(ch, () => ch.receiver.onGossipBroadcast(env.origin, m.payload));
        else this.unknownChannel(m.channel);
        // Forward even if we did not understand it: peers below us may.
        this.forwardBroadcast(env, (e) => ({ ...m, envelope: e }));
        break;
      }
      case 'gossip-unicast': {
        if (m.dst !== this.self) {
          this.relay(m.dst, m.ttl, (ttl) => ({ ...m, ttl }));
          break;
        }
        const ch = this.channels.get(m.channel);
        if (ch) this.deliver(ch, () => ch.receiver.onGossipUnicast(m.src, m.payload));
        else this.unknownChannel(m.channel);
        break;
      }
      case 'accept':
      case 'heartbeat':
      case 'close':
        break; // handled by the connection state machine
    }
  }

  /**
   * Runs a channel callback. A payload it cannot decode is dropped and
   * logged, never fatal; so is anything else it throws, because bytes from
   * a peer must not be able to stop the router through a state machine's
   * bug (that is logged as such, to be fixed).
   */
  private deliver<T>(ch: Channel, f: () => T): T | undefined {
    try {
      return f();
    } catch (e) {
      this.stats.badPayloads++;
      if (e instanceof MeshProtocolError) this.log('warn', `gossip channel ${ch.name}: dropped undecodable payload: ${e.message}`);
      else this.log('warn', `gossip channel ${ch.name}: handler failed (a bug in the channel): ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      return undefined;
    }
  }

  private unknownChannel(name: string): void {
    // A newer peer may run state machines we do not have; not an error.
    this.log('debug', `gossip for unknown channel ${name} ignored`);
  }

  private mergeTopology(from: ConnRecord, entries: readonly TopologyItem[]): void {
    const { changed, unknown } = this.topology.merge(entries);
    if (changed.length > 0) this.topologyChanged();
    if (this.topology.localDirty) this.scheduleFlush();
    if (unknown.length === 0) return;
    // Peers we have never heard of, or deltas we cannot apply: ask the
    // neighbour that told us for just those entries, once per flush period
    // per peer so a burst of broadcasts does not become a burst of requests.
    const now = this.host.now();
    const ask: { peer: PeerId; version: number }[] = [];
    for (const p of unknown) {
      const last = this.requested.get(p);
      if (last !== undefined && now - last < this.config.topologyFlushMs) continue;
      this.requested.set(p, now);
      ask.push({ peer: p, version: this.topology.get(p)?.version ?? 0 });
    }
    if (this.requested.size > 4 * Math.max(64, this.topology.size)) {
      for (const [p, t] of this.requested) if (now - t >= this.config.topologyFlushMs) this.requested.delete(p);
    }
    if (ask.length > 0) this.sendTo(from, { kind: 'topology-request', wantReverse: false, partial: true, digest: ask });
  }

  private answerTopologyRequest(rec: ConnRecord, digest: readonly DigestItem[], wantReverse: boolean, partial: boolean): void {
    for (const d of digest) {
      if (d.peer === this.self && this.topology.noteOwnVersionSeen(d.version)) this.scheduleFlush();
    }
    const { entries, theyHaveNewer } = this.topology.answer(digest, partial);
    if (entries.length > 0) this.sendTopology(rec, undefined, entries);
    if (wantReverse && theyHaveNewer) this.sendTo(rec, { kind: 'topology-request', wantReverse: false, partial: false, digest: this.topology.digest() });
  }

  // ---------------------------------------------------------------- topology publication and routes

  private scheduleFlush(): void {
    if (this.flushAt === undefined) this.flushAt = this.host.now() + this.config.topologyFlushMs;
  }

  /**
   * Our connections changed: topology at the next flush, routes at the next
   * recomputation (sends to a direct neighbour never wait for routes).
   */
  private directChanged(): void {
    this.scheduleFlush();
    this.routesDirty = true;
  }

  private topologyChanged(): void {
    this.routesDirty = true;
  }

  private publishLocal(now: number): void {
    this.flushAt = undefined;
    this.topology.setLocalConnections(this.byPeer.keys());
    const committed = this.topology.commitLocal(now);
    if (!committed) return;
    // Most receivers hold the previous version (they got its broadcast), so
    // the delta usually applies; the rest ask for the full entry.
    const item: TopologyItem = committed.delta ?? committed.entry;
    this.topologyChanged();
    const routes = this.currentRoutes();
    const span = originSpan(this.self);
    const env = { origin: this.self, spanFirst: span.first, spanLast: span.last, ttl: this.config.ttl };
    for (const c of broadcastChildren(routes.members, this.self, span.first, span.last, broadcastFanout(routes.members.length))) {
      this.sendRouted(c.head, { kind: 'topology', broadcast: { ...env, dst: c.head, spanFirst: c.spanFirst, spanLast: c.spanLast }, entries: [item] });
    }
  }

  /**
   * Routes, recomputed when the topology changed but at most once per
   * `routeRecalcMs` while it churns (changes of our own connections apply
   * at once). Reachability marks and discovery follow each recomputation.
   */
  private currentRoutes(): Routes {
    if (!this.routesDirty) return this.routes;
    const now = this.host.now();
    if (now < this.routesAt + this.config.routeRecalcMs) return this.routes;
    const before = this.routes.reachable;
    this.routes = computeRoutes(this.topology, new Set(this.byPeer.keys()));
    this.routesAt = now;
    this.routesDirty = false;
    this.topology.markReachable(this.routes.reachable, now);
    let grew = false;
    for (const p of this.routes.reachable) {
      if (!before.has(p) && p !== this.self) {
        grew = true;
        this.emit({ type: 'peer-reachable', peer: p });
      }
    }
    // New members missed the broadcasts sent before we could see them, and
    // connections to them skip the full exchange once they are reachable
    // (syncDecide): bring the next anti-entropy round forward.
    if (grew && this.boostAt === undefined) this.boostAt = now + this.syncWindow();
    for (const p of before) if (!this.routes.reachable.has(p) && this.topology.has(p)) this.emit({ type: 'peer-unreachable', peer: p });
    this.discover(now);
    return this.routes;
  }

  /** Adds every known peer's advertised address as a discovered target (unless forgotten or turned off). */
  private discover(now: number): void {
    if (!this.config.discovery || this.discoveredGen === this.topology.generation) return;
    this.discoveredGen = this.topology.generation;
    for (const e of this.topology.all()) {
      if (e.peer === this.self || !e.address) continue;
      let a = this.addressText.get(e.address);
      if (a === undefined) {
        a = formatPeerAddress(e.address);
        this.addressText.set(e.address, a);
      }
      if (!this.forgotten.has(a)) this.maker.addDiscovered(a, e.peer, now);
    }
    this.maker.pruneDiscovered((p) => this.topology.has(p));
  }

  // ---------------------------------------------------------------- sending

  private sendTo(rec: ConnRecord, m: Message): void {
    if (rec.done || rec.fsm.state !== 'established') return;
    let frame: Buffer;
    try {
      frame = rec.fsm.encode(m, this.host.now());
    } catch (e) {
      // A channel payload (or a digest of a huge cluster) over the frame
      // limit is that sender's bug; drop it rather than take the router down.
      if (!(e instanceof MeshFrameTooLargeError)) throw e;
      this.stats.dropped++;
      this.log('warn', `dropped a ${m.kind} message: ${e.message}`);
      return;
    }
    this.write(rec, frame);
  }

  private sendTopology(rec: ConnRecord, env: BroadcastEnvelope | undefined, entries: readonly TopologyItem[]): void {
    if (rec.done || rec.fsm.state !== 'established') return;
    for (const f of encodeTopologyFrames(env, entries, this.config.maxFrameBytes)) this.write(rec, f);
    rec.fsm.noteSent(this.host.now());
  }

  /** Sends towards `dst`: directly if it is a neighbour, else via the next hop. */
  private sendRouted(dst: PeerId, m: Message): void {
    const direct = this.byPeer.get(dst);
    const hop = direct ?? this.byPeer.get(this.currentRoutes().nextHop.get(dst) ?? '');
    if (!hop) {
      this.stats.dropped++;
      return;
    }
    if (m.kind === 'topology') this.sendTopology(hop, m.broadcast, m.entries);
    else this.sendTo(hop, m);
  }

  /** Passes on a copy addressed to someone else, one hop closer, if it has hops left. */
  private relay(dst: PeerId, ttl: number, withTtl: (ttl: number) => Message): void {
    if (ttl <= 1) {
      this.stats.dropped++;
      return;
    }
    this.sendRouted(dst, withTtl(ttl - 1));
  }

  /** We are the head of a broadcast copy: hand sub-spans to our children. */
  private forwardBroadcast(env: BroadcastEnvelope, make: (env: BroadcastEnvelope) => Message): void {
    if (env.ttl <= 1) return;
    const members = this.currentRoutes().members;
    for (const c of broadcastChildren(members, this.self, env.spanFirst, env.spanLast, broadcastFanout(members.length))) {
      this.sendRouted(c.head, make({ origin: env.origin, dst: c.head, spanFirst: c.spanFirst, spanLast: c.spanLast, ttl: env.ttl - 1 }));
    }
  }

  private unicast(ch: Channel, dst: PeerId, payload: Uint8Array): boolean {
    if (this.stopped) return false;
    if (dst === this.self) {
      this.deliver(ch, () => ch.receiver.onGossipUnicast(this.self, payload));
      return true;
    }
    if (!this.byPeer.has(dst) && !this.currentRoutes().nextHop.has(dst)) return false;
    this.sendRouted(dst, { kind: 'gossip-unicast', src: this.self, dst, ttl: this.config.ttl, channel: ch.name, payload });
    return true;
  }

  private broadcastNow(ch: Channel, data: AnyData): void {
    const members = this.currentRoutes().members;
    const span = originSpan(this.self);
    const children = broadcastChildren(members, this.self, span.first, span.last, broadcastFanout(members.length));
    // Alone (or no one reachable): do not even encode; a channel's state can be large.
    if (children.length === 0) return;
    for (const payload of data.encode()) {
      for (const c of children) {
        this.sendRouted(c.head, {
          kind: 'gossip-broadcast',
          envelope: { origin: this.self, dst: c.head, spanFirst: c.spanFirst, spanLast: c.spanLast, ttl: this.config.ttl },
          channel: ch.name,
          payload,
        });
      }
    }
  }

  private subsetNow(ch: Channel, data: AnyData): void {
    const targets = neighbourSubset([...this.byPeer.keys()], this.currentRoutes().members.length, () => this.host.random());
    if (targets.length === 0) return;
    const payloads = data.encode();
    for (const p of targets) {
      const rec = this.byPeer.get(p)!;
      for (const payload of payloads) this.sendTo(rec, { kind: 'gossip', channel: ch.name, payload });
    }
  }

  private sendChannelState(rec: ConnRecord, ch: Channel): void {
    const data = this.deliver(ch, () => ch.receiver.gossip() as AnyData | undefined);
    if (!data) return;
    for (const payload of data.encode()) this.sendTo(rec, { kind: 'gossip', channel: ch.name, payload });
  }

  /** Anti-entropy with a few random neighbours: every channel's full state, and topology digests. */
  private antiEntropy(withTopology: boolean): void {
    const targets = neighbourSubset([...this.byPeer.keys()], this.currentRoutes().members.length, () => this.host.random());
    if (targets.length === 0) return;
    // Topology: a digest (push-pull) to every target on the periodic round,
    // to one of them on a round brought forward.
    const digest = this.topology.digest();
    for (const p of withTopology ? targets : targets.slice(0, 1)) {
      this.sendTo(this.byPeer.get(p)!, { kind: 'topology-request', wantReverse: true, partial: false, digest });
    }
    for (const ch of this.channels.values()) {
      const data = this.deliver(ch, () => ch.receiver.gossip() as AnyData | undefined);
      if (!data) continue;
      const payloads = data.encode();
      for (const p of targets) for (const payload of payloads) this.sendTo(this.byPeer.get(p)!, { kind: 'gossip', channel: ch.name, payload });
    }
  }

  /**
   * Outgoing gossip is coalesced while the router is handling one input
   * (a chunk can hold many frames), then sent once with GossipData.merge;
   * outside an input it goes at once.
   */
  private queue(ch: Channel, how: 'broadcast' | 'subset', data: AnyData): void {
    if (this.stopped) return;
    if (this.depth === 0) {
      this.enter();
      try {
        this.queue(ch, how, data);
      } finally {
        this.leave();
      }
      return;
    }
    if (how === 'broadcast') ch.pendingBroadcast = ch.pendingBroadcast ? ch.pendingBroadcast.merge(data) : data;
    else ch.pendingSubset = ch.pendingSubset ? ch.pendingSubset.merge(data) : data;
  }

  private enter(): void {
    this.depth++;
  }

  private leave(): void {
    if (this.depth === 1) {
      for (const ch of this.channels.values()) {
        const b = ch.pendingBroadcast;
        const s = ch.pendingSubset;
        ch.pendingBroadcast = undefined;
        ch.pendingSubset = undefined;
        if (this.stopped) continue;
        if (b) this.broadcastNow(ch, b);
        if (s) this.subsetNow(ch, s);
      }
    }
    this.depth--;
  }

  private emit(e: MeshEvent): void {
    this.opts.onEvent?.(e);
  }

  private log(level: 'debug' | 'info' | 'warn', msg: string): void {
    this.host.log?.(level, `mesh ${this.nickname}: ${msg}`);
  }

  // ---------------------------------------------------------------- status

  /** A digest of our topology view: equal on two routers that know the same (peer, version) pairs. */
  topologyFingerprint(): string {
    return this.topology.fingerprint();
  }

  /** Peers we can reach (including us), ascending. */
  reachablePeers(): readonly PeerId[] {
    return this.currentRoutes().members;
  }

  /**
   * Routes computed from scratch from the current topology, leaving the
   * router's own (rate-limited) cache alone: for checks that must not
   * change what the router does next.
   */
  freshRoutes(): Routes {
    return computeRoutes(this.topology, new Set(this.byPeer.keys()));
  }

  /** Peers in our topology, including us. */
  knownPeers(): number {
    return this.topology.size;
  }

  connectedPeers(): PeerId[] {
    return [...this.byPeer.keys()].sort();
  }

  /** The neighbour a unicast to `peer` leaves through, if any. */
  nextHop(peer: PeerId): PeerId | undefined {
    if (this.byPeer.has(peer)) return peer;
    return this.currentRoutes().nextHop.get(peer);
  }

  topologyEntry(peer: PeerId): TopologyEntry | undefined {
    return this.topology.get(peer);
  }

  getStats(): Readonly<MeshStats> {
    return { ...this.stats };
  }

  status(): MeshStatus {
    const routes = this.currentRoutes();
    const peers = [...this.topology.all()].filter((e) => e.peer !== this.self).map((e) => ({
      peer: e.peer,
      nickname: e.nickname,
      address: e.address ? formatPeerAddress(e.address) : undefined,
      version: e.version,
      connections: e.connections,
      reachable: routes.reachable.has(e.peer),
      direct: this.byPeer.has(e.peer),
      nextHop: this.nextHop(e.peer),
      unreachableSince: this.topology.unreachableSince(e.peer),
    })).sort((a, b) => (a.nickname < b.nickname ? -1 : a.nickname > b.nickname ? 1 : 0));
    return {
      peer: this.self,
      nickname: this.nickname,
      protocol: { ...this.versions },
      topologyVersion: this.topology.localEntry().version,
      connections: [...this.conns].map((r) => ({
        peer: r.fsm.remote?.peer,
        nickname: r.fsm.remote?.nickname,
        address: r.address ?? (r.fsm.remote?.address ? formatPeerAddress(r.fsm.remote.address) : undefined),
        outbound: r.outbound,
        state: r.fsm.state,
        protocolVersion: r.fsm.version || undefined,
        establishedAt: r.establishedAt,
      })),
      peers,
      targets: this.maker.list().map((t) => ({ ...t })),
      stats: this.getStats(),
    };
  }
}
