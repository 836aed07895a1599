import { MeshHandshakeRejectedError, MeshMalformedError, MeshProtocolError } from '../../errors.js';
import { CloseCode, MAX_HELLO_BYTES, PROTOCOL_MAX_VERSION, PROTOCOL_MIN_VERSION, closeCodeName } from '../wire/constants.js';
import { FrameDecoder } from '../wire/frame-decoder.js';
import { decodeHello, encodeHello, negotiateVersion } from '../wire/hello-codec.js';
import { decodeMessage, encodeMessage } from '../wire/message-codec.js';
import type { Hello, Message } from '../wire/messages.js';

export type ConnState = 'handshake' | 'established' | 'closed';

export interface ConnectionOptions {
  /** Did we dial? */
  readonly outbound: boolean;
  /** Our hello, minus the connection-specific parts. */
  readonly local: Omit<Hello, 'connSeq' | 'minVersion' | 'maxVersion' | 'explicit' | 'fresh'> & { readonly minVersion?: number; readonly maxVersion?: number };
  /** We have had no established connection yet (see Hello.fresh). */
  readonly fresh?: boolean;
  /** We dial because an operator named the address. */
  readonly explicit?: boolean;
  /** Our sequence number for this connection when we dial; 0 when we accept. */
  readonly connSeq: number;
  readonly maxFrameBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly deadAfterMs: number;
  readonly now: number;
}

export type ConnEvent =
  | { readonly type: 'send'; readonly frame: Buffer }
  | { readonly type: 'established'; readonly remote: Hello; readonly version: number }
  | { readonly type: 'message'; readonly message: Message }
  | {
    readonly type: 'closed';
    readonly code: number;
    readonly reason: string;
    /** True when the peer sent CLOSE or hung up; false when we decided. */
    readonly byPeer: boolean;
    readonly error: MeshProtocolError | undefined;
  };

/** Decides whether a hello that passed the protocol checks may establish; see admission.ts. */
export type Admit = (remote: Hello, version: number) => { code: number; reason: string } | undefined;

/**
 * One control connection, as a pure state machine: handshake → established →
 * closed. It owns framing, the hello exchange, version negotiation, the
 * heartbeat and dead timers, and CLOSE; it knows nothing about topology or
 * gossip. Inputs carry the time (`now`), outputs are events the caller acts
 * on (write a frame, hand a message to the router, drop the socket), so the
 * same object runs under the TCP adapter and the simulator.
 *
 * Both sides send their hello at once; each then checks the other's and
 * answers ACCEPT or CLOSE. A connection is established when we have
 * accepted and received the other side's ACCEPT, a round trip after
 * connecting, so both ends always agree whether it exists.
 */
export class Connection {
  private st: ConnState = 'handshake';
  private readonly decoder = new FrameDecoder(MAX_HELLO_BYTES);
  private readonly startedAt: number;
  private lastSent: number;
  private lastReceived: number;
  private remoteHello: Hello | undefined;
  private ver = 0;
  private deadAfter: number;
  private heartbeatMs: number;
  private closeInfo: { code: number; reason: string; byPeer: boolean } | undefined;

  constructor(private readonly o: ConnectionOptions) {
    this.startedAt = o.now;
    this.lastSent = o.now;
    this.lastReceived = o.now;
    this.deadAfter = o.deadAfterMs;
    this.heartbeatMs = o.local.heartbeatMs;
  }

  get state(): ConnState {
    return this.st;
  }

  get outbound(): boolean {
    return this.o.outbound;
  }

  /** The remote hello, once received and accepted. */
  get remote(): Hello | undefined {
    return this.remoteHello;
  }

  get version(): number {
    return this.ver;
  }

  /** How it ended (undefined while open). */
  get closed(): { code: number; reason: string; byPeer: boolean } | undefined {
    return this.closeInfo;
  }

  /** The hello to write as soon as the transport is up. */
  start(): ConnEvent[] {
    const l = this.o.local;
    const hello: Hello = {
      ...l,
      minVersion: l.minVersion ?? PROTOCOL_MIN_VERSION,
      maxVersion: l.maxVersion ?? PROTOCOL_MAX_VERSION,
      connSeq: this.o.connSeq,
      explicit: this.o.outbound && this.o.explicit === true,
      fresh: this.o.fresh === true,
    };
    return [{ type: 'send', frame: encodeHello(hello) }];
  }

  /** Bytes from the transport, in any chunking. */
  receive(chunk: Uint8Array, now: number, admit: Admit): ConnEvent[] {
    if (this.st === 'closed') return [];
    const out: ConnEvent[] = [];
    const { frames, error } = this.decoder.push(chunk);
    if (frames.length > 0) this.lastReceived = now;
    for (const f of frames) {
      if (this.state === 'closed') return out;
      try {
        if (this.remoteHello === undefined) this.onHello(f, now, admit, out);
        else this.onFrame(f, now, out);
      } catch (e) {
        if (!(e instanceof MeshProtocolError)) throw e;
        this.fail(e, now, out);
      }
    }
    if (error && this.state !== 'closed') this.fail(error, now, out);
    return out;
  }

  private onHello(frame: Buffer, now: number, admit: Admit, out: ConnEvent[]): void {
    const hello = decodeHello(frame);
    const l = this.o.local;
    let version: number;
    try {
      version = negotiateVersion(
        { min: l.minVersion ?? PROTOCOL_MIN_VERSION, max: l.maxVersion ?? PROTOCOL_MAX_VERSION },
        { min: hello.minVersion, max: hello.maxVersion },
      );
    } catch (e) {
      if (!(e instanceof MeshProtocolError)) throw e;
      this.closeWith(CloseCode.VersionMismatch, e.message, false, e, now, out);
      return;
    }
    const refusal = admit(hello, version);
    if (refusal) {
      this.closeWith(refusal.code, refusal.reason, false, undefined, now, out);
      return;
    }
    this.remoteHello = hello;
    this.ver = version;
    // Never declare a peer dead before it has had two chances to speak.
    this.deadAfter = Math.max(this.o.deadAfterMs, 2 * hello.heartbeatMs);
    this.decoder.setMaxFrameBytes(this.o.maxFrameBytes);
    // Our half of the agreement. Each side decides alone (connection limit,
    // duplicates), so neither may use the connection until the other side's
    // ACCEPT shows it decided the same way; a refusal arrives as CLOSE.
    out.push({ type: 'send', frame: this.encode({ kind: 'accept' }, now) });
  }

  private onFrame(frame: Buffer, now: number, out: ConnEvent[]): void {
    const m = decodeMessage(frame, this.ver);
    if (m.kind === 'close') {
      // A CLOSE instead of ACCEPT is the peer refusing us; say so in a way a caller can report.
      const refused = this.st === 'handshake' ? new MeshHandshakeRejectedError(`refused by the peer: ${closeCodeName(m.code)}: ${m.reason}`) : undefined;
      this.st = 'closed';
      this.closeInfo = { code: m.code, reason: m.reason, byPeer: true };
      out.push({ type: 'closed', code: m.code, reason: m.reason, byPeer: true, error: refused });
      return;
    }
    if (this.st === 'handshake') {
      if (m.kind !== 'accept') throw new MeshMalformedError(`expected ACCEPT or CLOSE after the hello, got ${m.kind}`);
      this.st = 'established';
      out.push({ type: 'established', remote: this.remoteHello!, version: this.ver });
      return;
    }
    if (m.kind === 'accept') throw new MeshMalformedError('second ACCEPT');
    if (m.kind === 'heartbeat') return;
    out.push({ type: 'message', message: m });
  }

  private fail(e: MeshProtocolError, now: number, out: ConnEvent[]): void {
    this.closeWith(CloseCode.ProtocolError, `${e.code}: ${e.message}`, false, e, now, out);
  }

  private closeWith(code: number, reason: string, byPeer: boolean, error: MeshProtocolError | undefined, now: number, out: ConnEvent[]): void {
    if (this.st === 'closed') return;
    // Tell the peer why (best effort; the transport closes right after).
    out.push({ type: 'send', frame: encodeMessage({ kind: 'close', code, reason }, Math.max(this.o.maxFrameBytes, MAX_HELLO_BYTES)) });
    this.lastSent = now;
    this.st = 'closed';
    this.closeInfo = { code, reason, byPeer };
    out.push({ type: 'closed', code, reason, byPeer, error });
  }

  /** Encodes a message for this connection; the caller writes the frame. */
  encode(m: Message, now: number): Buffer {
    this.lastSent = now;
    return encodeMessage(m, this.o.maxFrameBytes);
  }

  /** Records that the caller wrote `frame`s it encoded itself (e.g. split topology). */
  noteSent(now: number): void {
    this.lastSent = now;
  }

  close(code: number, reason: string, now: number): ConnEvent[] {
    const out: ConnEvent[] = [];
    this.closeWith(code, reason, false, undefined, now, out);
    return out;
  }

  /** The transport reported end of stream or an error. */
  transportClosed(reason = 'connection lost'): ConnEvent[] {
    if (this.st === 'closed') return [];
    const truncated = this.decoder.end();
    this.st = 'closed';
    const why = truncated ? `${reason}; ${truncated.message}` : reason;
    this.closeInfo = { code: CloseCode.Normal, reason: why, byPeer: true };
    return [{ type: 'closed', code: CloseCode.Normal, reason: why, byPeer: true, error: truncated }];
  }

  /** Timers: handshake timeout, heartbeat to send, silence to punish. */
  tick(now: number): ConnEvent[] {
    const out: ConnEvent[] = [];
    if (this.st === 'handshake') {
      if (now - this.startedAt >= this.o.handshakeTimeoutMs) {
        this.closeWith(CloseCode.HandshakeTimeout, `no hello within ${this.o.handshakeTimeoutMs} ms`, false, undefined, now, out);
      }
    } else if (this.st === 'established') {
      if (now - this.lastReceived >= this.deadAfter) {
        this.closeWith(CloseCode.HeartbeatTimeout, `nothing received for ${now - this.lastReceived} ms (limit ${this.deadAfter} ms)`, false, undefined, now, out);
      } else if (now - this.lastSent >= this.heartbeatMs) {
        out.push({ type: 'send', frame: this.encode({ kind: 'heartbeat' }, now) });
      }
    }
    return out;
  }

  /** When `tick` next has something to do. */
  nextDeadline(): number | undefined {
    if (this.st === 'handshake') return this.startedAt + this.o.handshakeTimeoutMs;
    if (this.st === 'established') return Math.min(this.lastReceived + this.deadAfter, this.lastSent + this.heartbeatMs);
    return undefined;
  }

  describe(): string {
    const r = this.remoteHello;
    return `${this.o.outbound ? 'outbound' : 'inbound'} ${this.st}${r ? ` ${r.nickname}(${r.peer})` : ''}${this.closeInfo ? ` closed ${closeCodeName(this.closeInfo.code)}: ${this.closeInfo.reason}` : ''}`;
  }
}
