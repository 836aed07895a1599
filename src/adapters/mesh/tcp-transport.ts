/**
 * The TCP transport: runs the pure mesh Router (src/core/mesh) over real
 * sockets. docs/mesh.md §6 lists what this adapter owes the router:
 *
 * - listens on HOST:PORT and reports every accepted socket with
 *   `connectionOpened(handle, {outbound: false})` (accepts are rate-limited
 *   by a token bucket, Weave's burst 20 / one per 50 ms);
 * - implements `MeshHost.dial` with `net.connect` and a connect timeout,
 *   reporting `connectionOpened(…, {outbound: true, address})` or `dialFailed`;
 * - feeds socket 'data' to the sink and 'close'/'error' to `sink.closed`;
 * - keeps one timer armed at `router.nextWakeup()`, re-armed after every input;
 * - bounds each connection's write buffer: a connection whose unsent bytes
 *   exceed `maxQueuedBytes` is destroyed with a logged reason;
 * - never calls into the router from inside `send`/`close`/`dial`: those only
 *   touch sockets, and every router input comes from a socket or timer event.
 *
 * Sizing `maxQueuedBytes`: when a connection is established the router sends
 * every channel's full state in one go, so the bound must exceed the largest
 * full-state sync, or a router with that much state overflows (and closes)
 * every new connection. There is no flow-control signal back into the router
 * yet; this bound only protects memory from a peer that stopped reading.
 */
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { ConnHandle, ConnSink, MeshHost, Router } from '../../core/mesh/index.js';

export type MeshLogLevel = 'debug' | 'info' | 'warn';

export interface TcpTransportOptions {
  /** Address to bind, e.g. "192.0.2.1" or "0.0.0.0". */
  readonly host: string;
  /** TCP port to listen on; 0 picks a free one (see `address()`). */
  readonly port: number;
  /** Builds the router around the host this transport provides. */
  readonly makeRouter: (host: MeshHost) => Router;
  /** Milliseconds; defaults to Date.now. */
  readonly clock?: () => number;
  /** Uniform in [0, 1); defaults to Math.random. */
  readonly random?: () => number;
  readonly log?: (level: MeshLogLevel, message: string) => void;
  /** A dial that has not connected after this long fails. Default 5 s. */
  readonly connectTimeoutMs?: number;
  /** Unsent bytes a connection may hold before it is closed. Default 8 MiB. */
  readonly maxQueuedBytes?: number;
  /** Accept token bucket: capacity. Default 20. */
  readonly acceptBurst?: number;
  /** Accept token bucket: one token per this many ms. Default 50. */
  readonly acceptIntervalMs?: number;
  /** After `handle.close()` (socket.end), destroy the socket if it has not closed within this. Default 2 s. */
  readonly closeGraceMs?: number;
}

interface Conn {
  readonly socket: Socket;
  sink: ConnSink | undefined;
  closed: boolean;
  graceTimer: NodeJS.Timeout | undefined;
  /** Why we destroyed it, reported to the router instead of the socket's own reason. */
  reason: string | undefined;
}

const MAX_TIMER_MS = 0x7fffffff;

export class TcpTransport {
  readonly router: Router;
  private readonly opts: Required<Omit<TcpTransportOptions, 'log' | 'makeRouter'>> & Pick<TcpTransportOptions, 'log'>;
  private readonly server: Server;
  private readonly conns = new Set<Conn>();
  private readonly dialing = new Map<string, Socket>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | undefined;
  private tokens: number;
  private tokensAt: number;
  private stopped = false;
  private started = false;
  /** Counters for status and tests. */
  readonly counters = { accepted: 0, acceptsRejected: 0, dials: 0, dialFailures: 0, overflowCloses: 0 };

  constructor(options: TcpTransportOptions) {
    this.opts = {
      host: options.host,
      port: options.port,
      clock: options.clock ?? Date.now,
      random: options.random ?? Math.random,
      log: options.log,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      maxQueuedBytes: options.maxQueuedBytes ?? 8 * 1024 * 1024,
      acceptBurst: options.acceptBurst ?? 20,
      acceptIntervalMs: options.acceptIntervalMs ?? 50,
      closeGraceMs: options.closeGraceMs ?? 2_000,
    };
    this.tokens = this.opts.acceptBurst;
    this.tokensAt = this.opts.clock();
    const host: MeshHost = {
      now: () => this.opts.clock(),
      random: () => this.opts.random(),
      dial: (address) => this.dial(address),
      log: (level, message) => this.log(level, message),
    };
    this.router = options.makeRouter(host);
    this.server = createServer({ noDelay: true }, (s) => this.onAccept(s));
    this.server.on('error', (e) => this.log('warn', `mesh listener error: ${e.message}`));
  }

  /** Starts listening and arms the router's timer. */
  async start(): Promise<void> {
    if (this.started) throw new Error('transport already started');
    this.started = true;
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once('error', onError);
      this.server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.log('info', `mesh listening on ${this.opts.host}:${this.address().port}`);
    this.arm();
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Shuts the router down (close frames to every peer), stops listening and closes every socket. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      this.router.shutdown();
    } catch (e) {
      this.log('warn', `router shutdown failed: ${(e as Error).message}`);
    }
    for (const s of this.dialing.values()) s.destroy();
    this.dialing.clear();
    const closing = [...this.conns].map((c) => new Promise<void>((resolve) => {
      if (c.socket.destroyed) return resolve();
      c.socket.once('close', () => resolve());
      c.socket.end();
      const t = setTimeout(() => c.socket.destroy(), Math.min(this.opts.closeGraceMs, 500));
      t.unref();
    }));
    const listening = new Promise<void>((resolve) => (this.server.listening ? this.server.close(() => resolve()) : resolve()));
    await Promise.all([...closing, listening]);
    for (const c of this.conns) if (c.graceTimer) clearTimeout(c.graceTimer);
    this.conns.clear();
  }

  // ------------------------------------------------------------ router timer

  /** Keeps exactly one timer, at the router's next wakeup. */
  private arm(): void {
    if (this.stopped || !this.started) return;
    const at = this.router.nextWakeup();
    if (at === this.timerAt && this.timer !== undefined) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === undefined) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - this.opts.clock()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = undefined;
      this.input(() => this.router.tick());
    }, delay);
  }

  /**
   * Runs an operator or state-machine call on the router (connect, forget,
   * a channel write) like any other input, so the timer is re-armed for
   * whatever it scheduled (a dial due now, a topology flush).
   */
  control<T>(f: (router: Router) => T): T {
    const r = f(this.router);
    this.arm();
    return r;
  }

  /** Every router input goes through here: guarded, then the timer is re-armed. */
  private input(f: () => void): void {
    if (this.stopped) return;
    try {
      f();
    } catch (e) {
      this.log('warn', `mesh router input failed: ${(e as Error).stack ?? String(e)}`);
    }
    this.arm();
  }

  // ------------------------------------------------------------ connections

  private takeAcceptToken(): boolean {
    const now = this.opts.clock();
    const earned = Math.floor((now - this.tokensAt) / this.opts.acceptIntervalMs);
    if (earned > 0) {
      this.tokens = Math.min(this.opts.acceptBurst, this.tokens + earned);
      this.tokensAt = this.tokens === this.opts.acceptBurst ? now : this.tokensAt + earned * this.opts.acceptIntervalMs;
    }
    if (this.tokens <= 0) return false;
    this.tokens--;
    return true;
  }

  private onAccept(socket: Socket): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    if (this.stopped) {
      socket.destroy();
      return;
    }
    if (!this.takeAcceptToken()) {
      this.counters.acceptsRejected++;
      this.log('warn', `mesh accept from ${remote} rejected: accept rate limit`);
      socket.destroy();
      return;
    }
    this.counters.accepted++;
    this.log('debug', `mesh accepted ${remote}`);
    this.open(socket, { outbound: false });
  }

  /** MeshHost.dial: only starts a socket; the outcome reaches the router from socket events. */
  private dial(address: string): void {
    if (this.stopped) return;
    const parsed = splitAddress(address);
    if (!parsed) {
      // Still asynchronous: the router must not be re-entered from dial.
      setImmediate(() => this.input(() => this.router.dialFailed(address, 'unparseable address')));
      return;
    }
    this.counters.dials++;
    this.dialing.get(address)?.destroy();
    const socket = createConnection({ host: parsed.host, port: parsed.port, noDelay: true });
    this.dialing.set(address, socket);
    let settled = false;
    const fail = (reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (this.dialing.get(address) === socket) this.dialing.delete(address);
      socket.destroy();
      this.counters.dialFailures++;
      this.input(() => this.router.dialFailed(address, reason));
    };
    const timer = setTimeout(() => fail(`connect timeout after ${this.opts.connectTimeoutMs} ms`), this.opts.connectTimeoutMs);
    socket.once('error', (e) => fail(e.message));
    socket.once('close', () => fail('closed before connecting'));
    socket.once('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (this.dialing.get(address) === socket) this.dialing.delete(address);
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      if (this.stopped) {
        socket.destroy();
        return;
      }
      this.open(socket, { outbound: true, address });
    });
  }

  private open(socket: Socket, info: { outbound: boolean; address?: string }): void {
    socket.setKeepAlive(true, 10_000);
    const conn: Conn = { socket, sink: undefined, closed: false, graceTimer: undefined, reason: undefined };
    this.conns.add(conn);
    const handle: ConnHandle = {
      send: (frame) => this.send(conn, frame),
      close: () => this.closeConn(conn),
    };
    socket.on('data', (chunk: Buffer) => {
      if (conn.sink && !conn.closed) {
        const sink = conn.sink;
        this.input(() => sink.data(chunk));
      }
    });
    let lastError: string | undefined;
    socket.on('error', (e) => {
      lastError = e.message;
    });
    socket.on('close', () => {
      if (conn.graceTimer) clearTimeout(conn.graceTimer);
      this.conns.delete(conn);
      if (conn.closed) return;
      conn.closed = true;
      const sink = conn.sink;
      const reason = conn.reason ?? lastError ?? 'connection closed';
      if (sink) this.input(() => sink.closed(reason));
    });
    // connectionOpened may send (hello) through the handle: those are plain socket writes.
    this.input(() => {
      conn.sink = this.router.connectionOpened(handle, info);
    });
  }

  /** ConnHandle.send: a socket write, with the queue bounded. Never calls the router. */
  private send(conn: Conn, frame: Uint8Array): void {
    const s = conn.socket;
    if (s.destroyed || s.writableEnded || conn.reason !== undefined) return;
    if (s.writableLength + frame.length > this.opts.maxQueuedBytes) {
      conn.reason = `send queue overflow (${s.writableLength + frame.length} bytes > ${this.opts.maxQueuedBytes})`;
      this.counters.overflowCloses++;
      this.log('warn', `mesh connection ${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'} closed: ${conn.reason}`);
      // destroy() emits 'close' on a later tick; the router hears about it from there.
      s.destroy();
      return;
    }
    s.write(frame);
  }

  /** ConnHandle.close: end after pending writes, destroy after a grace. Never calls the router. */
  private closeConn(conn: Conn): void {
    const s = conn.socket;
    if (s.destroyed) return;
    conn.reason ??= 'closed by router';
    if (!s.writableEnded) s.end();
    if (!conn.graceTimer) {
      conn.graceTimer = setTimeout(() => s.destroy(), this.opts.closeGraceMs);
      conn.graceTimer.unref();
    }
  }

  private log(level: MeshLogLevel, message: string): void {
    this.opts.log?.(level, message);
  }
}

/** "192.0.2.1:6783" or "[2001:db8::1]:6783" → host and port. */
function splitAddress(address: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}
