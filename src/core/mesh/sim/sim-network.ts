import { tryParsePeerAddress } from '../address.js';
import { clusterFingerprint } from '../cluster-id.js';
import type { MeshConfigInput } from '../config.js';
import type { PeerId } from '../peer-id.js';
import { Router } from '../router.js';
import type { ConnHandle, ConnSink, MeshEvent, MeshHost } from '../router-types.js';
import { EventQueue } from './event-queue.js';
import { seededRandom } from './rng.js';

/** How the simulated network treats frames. Times are virtual milliseconds. */
export interface LinkModel {
  /** Probability that a frame after the handshake is lost (what a reset or an overflowing queue costs gossip). */
  readonly loss: number;
  /** One-way delay, uniform in [delayMinMs, delayMaxMs]. */
  readonly delayMinMs: number;
  readonly delayMaxMs: number;
  /**
   * Probability that a frame is held back up to 4 × `delayMaxMs` more. Frames
   * behind it on the same connection wait (TCP is in order); messages on
   * other connections overtake it.
   */
  readonly reorder: number;
  /** Deliver frames in random pieces, to exercise the streaming decoder. */
  readonly chunking: boolean;
  /** How long a dial across a partition takes to give up. */
  readonly connectTimeoutMs: number;
}

export const DEFAULT_LINK: LinkModel = { loss: 0, delayMinMs: 1, delayMaxMs: 5, reorder: 0, chunking: false, connectTimeoutMs: 3_000 };

export interface SimNodeSpec {
  readonly peer: PeerId;
  readonly nickname: string;
  /** Canonical `ip:port`. */
  readonly address: string;
  /** Addresses it is launched with. */
  readonly peers: readonly string[];
  readonly config?: MeshConfigInput;
  readonly cluster?: Uint8Array;
}

export interface SimNode<A> {
  readonly spec: SimNodeSpec;
  router: Router;
  /** Whatever `setup` attached to the router (its gossip channels). */
  app: A;
  alive: boolean;
  /** Bumped on every kill, so events for an earlier life are ignored. */
  incarnation: number;
  readonly events: MeshEvent[];
  wakeAt: number | undefined;
  readonly endpoints: Set<Endpoint>;
  /** Its clock minus the simulation's. */
  clockOffset: number;
}

interface Endpoint {
  readonly node: SimNode<unknown>;
  readonly incarnation: number;
  sink: ConnSink | undefined;
  other: Endpoint | undefined;
  open: boolean;
  framesSent: number;
  /** Latest scheduled arrival on this direction, to keep frames in order unless reordered. */
  lastArrival: number;
  /** When this end's connect completes; nothing can arrive before (TCP data follows the SYN-ACK). */
  readyAt: number;
}

export interface SimStats {
  framesSent: number;
  bytesSent: number;
  framesDelivered: number;
  framesLost: number;
  dials: number;
  /** Bytes sent per message kind byte (see wire/constants.ts Kind), for finding out what the traffic is. */
  bytesByKind: Record<number, number>;
}

export interface SimOptions<A> {
  readonly seed: number;
  readonly link?: Partial<LinkModel>;
  /** Attaches channels to a freshly built router (at start and at every restart). */
  readonly setup: (router: Router, spec: SimNodeSpec, sim: SimNetwork<A>) => A;
  readonly log?: (level: string, msg: string) => void;
  /** Shared by default: every simulated router is in the same cluster. */
  readonly cluster?: Uint8Array;
}

const DEFAULT_CLUSTER = clusterFingerprint('10.32.0.0/12');

/**
 * Many routers in one process over an in-memory transport with virtual
 * time: configurable delay, loss, reordering and chunking, partitions and
 * blocked links, kills (with or without the kernel's FIN) and restarts.
 * Nothing sleeps; `run`/`runUntil` advance the virtual clock from event to
 * event, so a minute of mesh life takes milliseconds and replays exactly
 * from the seed.
 */
export class SimNetwork<A> {
  readonly queue = new EventQueue();
  readonly random: () => number;
  readonly link: LinkModel;
  readonly stats: SimStats = { framesSent: 0, bytesSent: 0, framesDelivered: 0, framesLost: 0, dials: 0, bytesByKind: {} };
  private readonly byAddress = new Map<string, SimNode<A>>();
  private readonly groups = new Map<string, number>();
  private readonly blockedLinks = new Set<string>();
  /** Per-node clock skew, applied from the node's next boot (a host whose clock jumped). */
  private readonly clockOffsets = new Map<string, number>();
  private inFlightFrames = 0;

  constructor(private readonly opts: SimOptions<A>) {
    this.random = seededRandom(opts.seed);
    this.link = { ...DEFAULT_LINK, ...opts.link };
  }

  get now(): number {
    return this.queue.now;
  }

  /** Frames sent but not yet delivered or lost. */
  get inFlight(): number {
    return this.inFlightFrames;
  }

  nodes(): SimNode<A>[] {
    return [...this.byAddress.values()];
  }

  alive(): SimNode<A>[] {
    return this.nodes().filter((n) => n.alive);
  }

  node(address: string): SimNode<A> {
    const n = this.byAddress.get(address);
    if (!n) throw new RangeError(`no simulated node at ${address}`);
    return n;
  }

  /** Adds a node and starts its router at `startAt` (default now). */
  add(spec: SimNodeSpec, startAt = this.now): SimNode<A> {
    if (this.byAddress.has(spec.address)) throw new RangeError(`address ${spec.address} taken`);
    const node = { spec, alive: false, incarnation: 0, events: [], wakeAt: undefined, endpoints: new Set(), clockOffset: 0 } as unknown as SimNode<A>;
    this.byAddress.set(spec.address, node);
    this.queue.at(startAt, () => this.boot(node));
    return node;
  }

  private boot(node: SimNode<A>): void {
    const offset = this.clockOffsets.get(node.spec.address) ?? 0;
    node.clockOffset = offset;
    const host: MeshHost = {
      now: () => this.queue.now + offset,
      random: this.random,
      dial: (address) => this.dial(node, node.incarnation, address),
      ...(this.opts.log ? { log: (level: string, msg: string) => this.opts.log!(level, `[${this.now.toFixed(0)}] ${msg}`) } : {}),
    };
    node.router = new Router({
      peer: node.spec.peer,
      nickname: node.spec.nickname,
      cluster: node.spec.cluster ?? this.opts.cluster ?? DEFAULT_CLUSTER,
      advertise: tryParsePeerAddress(node.spec.address)!,
      peers: node.spec.peers,
      ...(node.spec.config ? { config: node.spec.config } : {}),
      onEvent: (e) => node.events.push(e),
    }, host);
    node.alive = true;
    node.app = this.opts.setup(node.router, node.spec, this);
    this.wake(node);
  }

  /**
   * Stops a node like `kill -9`: its sockets close, and unless `silent` (a
   * host that vanished, cable pulled) the peers get the kernel's FIN.
   */
  kill(address: string, opts: { silent?: boolean } = {}): void {
    const node = this.node(address);
    if (!node.alive) return;
    node.alive = false;
    node.incarnation++;
    node.wakeAt = undefined;
    for (const ep of node.endpoints) {
      ep.open = false;
      const other = ep.other;
      if (other && !opts.silent) this.sendFin(ep, other);
    }
    node.endpoints.clear();
  }

  /** Starts a killed node again with the same identity and launch peers (as after a reboot with `--resume`). */
  restart(address: string, at = this.now): void {
    const node = this.node(address);
    if (node.alive) throw new RangeError(`${address} is running`);
    this.queue.at(at, () => {
      if (!node.alive) this.boot(node);
    });
  }

  /** From its next (re)start, the node's clock reads `offsetMs` off the simulation's. */
  setClockOffset(address: string, offsetMs: number): void {
    this.clockOffsets.set(address, offsetMs);
  }

  /** Cuts every link between the two sides (existing connections go silent; new dials time out). */
  partition(sideA: readonly string[], sideB: readonly string[]): void {
    for (const a of sideA) this.groups.set(a, 1);
    for (const b of sideB) this.groups.set(b, 2);
  }

  heal(): void {
    this.groups.clear();
    this.blockedLinks.clear();
  }

  blockLink(a: string, b: string): void {
    this.blockedLinks.add(linkKey(a, b));
  }

  unblockLink(a: string, b: string): void {
    this.blockedLinks.delete(linkKey(a, b));
  }

  blocked(a: string, b: string): boolean {
    const ga = this.groups.get(a);
    const gb = this.groups.get(b);
    if (ga !== undefined && gb !== undefined && ga !== gb) return true;
    return this.blockedLinks.has(linkKey(a, b));
  }

  /** Runs events for `ms` of virtual time. */
  run(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const t = this.queue.peekTime();
      if (t === undefined || t > end) break;
      this.queue.step();
    }
    this.queue.advanceTo(end);
  }

  /**
   * Runs until `done()` holds at a check point (every `checkEveryMs`), or
   * until `maxMs` passed; with `quiet`, only at a check point where no frame
   * is in flight either. Returns the virtual time it took, or undefined.
   */
  runUntil(done: () => boolean, opts: { maxMs: number; checkEveryMs?: number; quiet?: boolean }): number | undefined {
    const start = this.now;
    const every = opts.checkEveryMs ?? 10;
    while (this.now - start < opts.maxMs) {
      this.run(every);
      if ((!opts.quiet || this.inFlightFrames === 0) && done()) return this.now - start;
    }
    return undefined;
  }

  // ------------------------------------------------------------- transport

  private delay(): number {
    const l = this.link;
    return l.delayMinMs + (l.delayMaxMs - l.delayMinMs) * this.random();
  }

  /** Call after driving a router from outside (a test writing to a channel) so its timers are scheduled. */
  poke(address: string): void {
    this.wake(this.node(address));
  }

  private wake(node: SimNode<A>): void {
    if (!node.alive) return;
    const wake = node.router.nextWakeup();
    if (wake === undefined) return;
    // The router speaks its own clock; the queue runs on the simulation's.
    const t = wake - node.clockOffset;
    if (node.wakeAt !== undefined && node.wakeAt <= t) return;
    node.wakeAt = t;
    const inc = node.incarnation;
    this.queue.at(t, () => {
      if (!node.alive || node.incarnation !== inc || node.wakeAt !== t) return;
      node.wakeAt = undefined;
      node.router.tick();
      this.wake(node);
    });
  }

  private dial(from: SimNode<A>, inc: number, address: string): void {
    this.stats.dials++;
    const target = this.byAddress.get(address);
    const fromAddr = from.spec.address;
    if (target && this.blocked(fromAddr, address)) {
      this.queue.at(this.now + this.link.connectTimeoutMs, () => this.failDial(from, inc, address, 'connect timeout'));
      return;
    }
    this.queue.at(this.now + this.delay(), () => {
      if (!from.alive || from.incarnation !== inc) return;
      if (!target || !target.alive || this.blocked(fromAddr, address)) {
        this.queue.at(this.now + this.delay(), () => this.failDial(from, inc, address, 'connection refused'));
        return;
      }
      // The SYN arrived: the target accepts, and the dialer learns after one more delay.
      const connectedAt = this.now + this.delay();
      const a: Endpoint = {
        node: from as SimNode<unknown>, incarnation: from.incarnation, sink: undefined, other: undefined, open: true, framesSent: 0, lastArrival: 0, readyAt: connectedAt,
      };
      const b: Endpoint = {
        node: target as SimNode<unknown>, incarnation: target.incarnation, sink: undefined, other: a, open: true, framesSent: 0, lastArrival: 0, readyAt: this.now,
      };
      a.other = b;
      target.endpoints.add(b);
      // Scheduled before the target writes its hello, so that at equal times
      // the dialer's end exists before the first byte reaches it.
      this.queue.at(connectedAt, () => {
        if (!from.alive || from.incarnation !== inc) {
          if (b.open) this.sendFin(a, b);
          return;
        }
        if (!b.open) {
          this.failDial(from, inc, address, 'connection reset');
          return;
        }
        from.endpoints.add(a);
        a.sink = from.router.connectionOpened(this.handle(a), { outbound: true, address });
        this.wake(from);
      });
      b.sink = target.router.connectionOpened(this.handle(b), { outbound: false });
      this.wake(target);
    });
  }

  private failDial(from: SimNode<A>, inc: number, address: string, reason: string): void {
    if (!from.alive || from.incarnation !== inc) return;
    from.router.dialFailed(address, reason);
    this.wake(from);
  }

  private handle(ep: Endpoint): ConnHandle {
    return {
      send: (frame) => this.send(ep, frame),
      close: () => {
        if (!ep.open) return;
        ep.open = false;
        ep.node.endpoints.delete(ep);
        if (ep.other) this.sendFin(ep, ep.other);
      },
    };
  }

  private send(ep: Endpoint, frame: Uint8Array): void {
    if (!ep.open || !ep.other) return;
    const to = ep.other;
    this.stats.framesSent++;
    this.stats.bytesSent += frame.length;
    const kind = frame[4] ?? 0;
    this.stats.bytesByKind[kind] = (this.stats.bytesByKind[kind] ?? 0) + frame.length;
    ep.framesSent++;
    const fromAddr = (ep.node as SimNode<A>).spec.address;
    const toAddr = (to.node as SimNode<A>).spec.address;
    // The handshake (hello, ACCEPT) is never lost: TCP would deliver it or
    // the connection would fail, which the blocked-link model covers.
    if (this.blocked(fromAddr, toAddr) || (ep.framesSent > 2 && this.random() < this.link.loss)) {
      this.stats.framesLost++;
      return;
    }
    // No copy: the router never touches a frame after handing it over.
    const bytes = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.length);
    // TCP never reorders within a connection, so neither do we: a delayed
    // frame holds back the ones behind it, and reordering shows up between
    // connections (a relayed copy overtaking a direct one), as it does for real.
    let at = this.now + this.delay();
    if (ep.framesSent > 1 && this.random() < this.link.reorder) at += 4 * this.link.delayMaxMs * this.random();
    at = Math.max(at, ep.lastArrival, to.readyAt);
    ep.lastArrival = Math.max(ep.lastArrival, at);
    this.inFlightFrames++;
    this.queue.at(at, () => {
      this.inFlightFrames--;
      const node = to.node as SimNode<A>;
      if (!to.open || !node.alive || node.incarnation !== to.incarnation || !to.sink || this.blocked(fromAddr, toAddr)) {
        this.stats.framesLost++;
        return;
      }
      this.stats.framesDelivered++;
      if (this.link.chunking && bytes.length > 1) {
        let off = 0;
        while (off < bytes.length && to.open) {
          const n = 1 + Math.floor(this.random() * Math.min(bytes.length - off, 64));
          to.sink.data(bytes.subarray(off, off + n));
          off += n;
        }
      } else {
        to.sink.data(bytes);
      }
      this.wake(node);
    });
  }

  /** The other end learns the connection is gone (after a delay, unless the path is cut). */
  private sendFin(from: Endpoint, to: Endpoint): void {
    const fromAddr = (from.node as SimNode<A>).spec.address;
    const toAddr = (to.node as SimNode<A>).spec.address;
    const at = Math.max(this.now + this.delay(), from.lastArrival);
    this.queue.at(at, () => {
      const node = to.node as SimNode<A>;
      if (!to.open || !node.alive || node.incarnation !== to.incarnation || this.blocked(fromAddr, toAddr)) return;
      to.open = false;
      node.endpoints.delete(to);
      to.sink?.closed('connection closed by peer');
      this.wake(node);
    });
  }
}

function linkKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** Simulated addresses are real `ip:port` strings, so discovery and normalisation run unchanged. */
export function simAddress(i: number): string {
  // 192.0.2.0/24 (TEST-NET-1) and many ports: enough distinct addresses for thousands of nodes.
  return `192.0.2.${1 + (i % 250)}:${6783 + Math.floor(i / 250)}`;
}

