/**
 * An rtnetlink socket for one netns, on top of the `netlink` package (0.3.0,
 * prebuilt N-API; only its transport layer is used: socket, sequence numbers,
 * multipart replies). Messages are built and read by netlink-codec.ts.
 *
 * Cautions from the evaluation (shared research, dependencies.md §1):
 * - too many requests in flight on one socket abort the process from native
 *   code, so at most 8 are in flight here and the rest wait (64 ADDs at once
 *   on the shared host socket aborted the router in 1 of 3 runs with a limit
 *   of 64; none in 10 with 8);
 * - the ACK that trails a GET reply arrives with no request waiting for it:
 *   the 'message' handler takes it (and keeps the verdict that follows an
 *   ECHOed request, see request()); an 'invalid' handler swallows the rest;
 * - an 'error' event without a listener would throw from a native callback.
 *
 * The package is loaded lazily with createRequire and typed by the small
 * interfaces below (its own .d.ts pulls in @types/node 12).
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import { KernelError } from '../../core/errors.js';
import { NLMSG_ERROR, NLM_F_ECHO, type NlRequest, decodeErrno, failureReason } from './netlink-codec.js';
import { type Loaded, NetnsEnterError, type NetnsSwitcher } from './netns-addon.js';

interface RawMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly data: Buffer;
}

interface PackageSocket {
  request(type: number, data: Uint8Array | Uint8Array[], options: { flags: number; timeout?: number; checkError: false }): Promise<[RawMessage[], unknown]>;
  on(event: 'message' | 'invalid' | 'error' | 'truncatedMessage', listener: (...args: unknown[]) => void): unknown;
  close(): void;
}

export interface NetlinkPackage {
  createNetlink(protocol: number, options?: { localPort?: number }): PackageSocket;
}

const NETLINK_ROUTE = 0;
/** At most this many requests in flight per socket (see the file comment). */
export const MAX_IN_FLIGHT = 8;

let cached: Loaded<NetlinkPackage> | undefined;

export function loadNetlinkPackage(): Loaded<NetlinkPackage> {
  if (cached) return cached;
  try {
    const mod = createRequire(import.meta.url)('netlink/dist/netlink.js') as Partial<NetlinkPackage>;
    if (typeof mod.createNetlink !== 'function') throw new Error('netlink/dist/netlink.js does not export createNetlink');
    cached = { ok: true, value: mod as NetlinkPackage };
  } catch (e) {
    cached = { ok: false, reason: `the netlink package cannot be loaded: ${(e as Error).message.split('\n')[0]}` };
  }
  return cached;
}

/** A request the kernel refused (or one that could not be sent); `errno` is the name, e.g. EEXIST. */
export class NetlinkError extends KernelError {
  readonly errno: string;
  readonly what: string;
  readonly netns: string | undefined;
  /** The netns could not be entered (gone, or not a netns). */
  readonly netnsUnusable: boolean;

  constructor(args: { what: string; errno: string; reason: string; netns?: string; netnsUnusable?: boolean; cause?: unknown }) {
    const where = args.netns !== undefined ? ` in netns ${args.netns}` : '';
    super(`netlink: "${args.what}" failed${where}: ${args.reason}`, { ...(args.cause !== undefined ? { cause: args.cause } : {}) });
    this.errno = args.errno;
    this.what = args.what;
    this.netns = args.netns;
    this.netnsUnusable = args.netnsUnusable ?? false;
  }
}

export function isNetlinkErrno(e: unknown, errno: string): boolean {
  return e instanceof NetlinkError && !e.netnsUnusable && e.errno === errno;
}

export function isNetlinkNetnsUnusable(e: unknown): boolean {
  return e instanceof NetlinkError && e.netnsUnusable;
}

/** Linux errnos rtnetlink answers with that libuv has no name for. */
const LINUX_ONLY_ERRNOS: Readonly<Record<number, { name: string; text: string }>> = {
  54: { name: 'EXFULL', text: 'Exchange full' },
};

export function errnoName(errno: number): { name: string; text?: string } {
  const linux = LINUX_ONLY_ERRNOS[errno];
  if (linux) return linux;
  try {
    const name = getSystemErrorName(-errno);
    const text = getSystemErrorMap().get(-errno)?.[1];
    return text !== undefined ? { name, text } : { name };
  } catch {
    return { name: `errno ${errno}` };
  }
}

export class RtnlSocket {
  private inFlight = 0;
  /** Requests waiting for a slot, first come first served (a batch keeps its order). */
  private readonly waiting: (() => void)[] = [];
  private closed = false;
  private failed: Error | undefined;
  /**
   * ACKs (NLMSG_ERROR) that arrived after the reply of their request was
   * delivered: the trailing ACK of a GET, and the verdict that follows an
   * ECHOed NEWLINK. seq -> errno, the newest 256 kept.
   */
  private readonly lateAcks = new Map<number, number>();
  private readonly ackWaiters = new Map<number, (errno: number) => void>();
  /** Rejecters of the requests in flight: the package does not settle them when its socket fails. */
  private readonly onFail = new Set<(e: Error) => void>();

  private constructor(private readonly sock: PackageSocket, readonly netns: string | undefined, private readonly timeoutMs: number) {
    sock.on('message', (msgs) => {
      for (const m of msgs as RawMessage[]) {
        if (m.type !== NLMSG_ERROR) continue;
        const errno = decodeErrno(m.data);
        const w = this.ackWaiters.get(m.seq);
        if (w) {
          this.ackWaiters.delete(m.seq);
          w(errno);
          continue;
        }
        this.lateAcks.set(m.seq, errno);
        if (this.lateAcks.size > 256) this.lateAcks.delete(this.lateAcks.keys().next().value!);
      }
    });
    sock.on('invalid', () => undefined);
    sock.on('truncatedMessage', () => undefined);
    // A poll/receive error closes the native socket: fail what is in flight at once (instead of
    // after the timeout), and remember it so the owner opens a new one.
    sock.on('error', (e) => {
      this.failed = e as Error;
      for (const f of [...this.onFail]) f(this.failed);
      for (const w of [...this.ackWaiters.values()]) w(constants.errno.EIO);
      this.ackWaiters.clear();
      this.close();
    });
  }

  /** False once the socket was closed or failed. */
  get usable(): boolean {
    return !this.closed && this.failed === undefined;
  }

  /** Takes a slot synchronously when one is free and nobody waits, else resolves when a slot is handed over. */
  private acquire(): Promise<void> | undefined {
    if (this.inFlight < MAX_IN_FLIGHT && this.waiting.length === 0) {
      this.inFlight++;
      return undefined;
    }
    return new Promise<void>((r) => this.waiting.push(r));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next(); // the slot passes to the next request as is
    else this.inFlight--;
  }

  /**
   * A socket in `netns` (undefined: the calling thread's own). Synchronous:
   * socket(2) runs inside the switch. Throws NetlinkError with
   * netnsUnusable when the netns cannot be entered.
   */
  static open(pkg: NetlinkPackage, switcher: NetnsSwitcher, netns: string | undefined, timeoutMs: number): RtnlSocket {
    try {
      // localPort 0: the kernel picks a free port id, no guessing and retrying.
      const s = switcher.run(netns, () => pkg.createNetlink(NETLINK_ROUTE, { localPort: 0 }));
      return new RtnlSocket(s, netns, timeoutMs);
    } catch (e) {
      if (e instanceof NetnsEnterError) {
        throw new NetlinkError({ what: 'enter netns', errno: e.code, reason: e.message, netns: e.path, netnsUnusable: true, cause: e });
      }
      const err = e as Error & { code?: string };
      throw new NetlinkError({ what: 'open rtnetlink socket', errno: err.code ?? 'EIO', reason: err.message, ...(netns !== undefined ? { netns } : {}), cause: e });
    }
  }

  /**
   * Sends one request (with NLM_F_REQUEST|NLM_F_ACK) and returns the payloads
   * of its reply messages (none for an ACK; one per object for a dump).
   */
  async request(req: NlRequest): Promise<Buffer[]> {
    if (this.closed) throw new NetlinkError({ what: req.what, errno: 'EBADF', reason: 'the socket is closed', ...(this.netns !== undefined ? { netns: this.netns } : {}) });
    const wait = this.acquire();
    if (wait) await wait;
    let msgs: RawMessage[];
    try {
      [msgs] = await this.untilFailed(this.sock.request(req.type, req.body, { flags: req.flags, timeout: this.timeoutMs, checkError: false }));
    } catch (e) {
      const err = e as Error & { code?: string };
      const timedOut = /Timeout/.test(err.message);
      throw new NetlinkError({
        what: req.what,
        errno: err.code ?? (timedOut ? 'ETIMEDOUT' : 'EIO'),
        reason: timedOut ? `no answer within ${this.timeoutMs} ms` : err.message,
        ...(this.netns !== undefined ? { netns: this.netns } : {}),
        cause: e,
      });
    } finally {
      this.release();
    }
    const out: Buffer[] = [];
    for (const m of msgs) {
      if (m.type === NLMSG_ERROR) {
        const errno = decodeErrno(m.data);
        if (errno !== 0) throw this.refused(req, errno);
        continue;
      }
      out.push(m.data);
    }
    // An ECHOed request is answered with the object first and the verdict after it: a
    // NEWLINK can be echoed and then undone (its master could not be set). Wait for the verdict.
    const first = msgs[0];
    if ((req.flags & NLM_F_ECHO) !== 0 && first !== undefined && first.type !== NLMSG_ERROR) {
      const errno = await this.lateAck(first.seq, req);
      if (errno !== 0) throw this.refused(req, errno);
    }
    return out;
  }

  /** `p`, or its rejection with the socket's error as soon as the socket fails. */
  private untilFailed<T>(p: Promise<T>): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<T>((resolve, reject) => {
      const fail = (e: Error): void => reject(e);
      this.onFail.add(fail);
      p.then((v) => { this.onFail.delete(fail); resolve(v); }, (e: unknown) => { this.onFail.delete(fail); reject(e); });
    });
  }

  private refused(req: NlRequest, errno: number): NetlinkError {
    const { name, text } = errnoName(errno);
    return new NetlinkError({ what: req.what, errno: name, reason: failureReason(req, name, text), ...(this.netns !== undefined ? { netns: this.netns } : {}) });
  }

  private lateAck(seq: number, req: NlRequest): Promise<number> {
    const known = this.lateAcks.get(seq);
    if (known !== undefined) {
      this.lateAcks.delete(seq);
      return Promise.resolve(known);
    }
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.ackWaiters.delete(seq);
        reject(new NetlinkError({ what: req.what, errno: 'ETIMEDOUT', reason: `no acknowledgement within ${this.timeoutMs} ms`, ...(this.netns !== undefined ? { netns: this.netns } : {}) }));
      }, this.timeoutMs);
      this.ackWaiters.set(seq, (errno) => {
        clearTimeout(timer);
        resolve(errno);
      });
    });
  }

  /**
   * Sends the requests back to back (the kernel runs them in this order) and
   * waits for all; throws the first failure in request order, like `ip -batch`
   * names its first failing line. Requests after a failed one still ran.
   */
  async batch(reqs: readonly NlRequest[]): Promise<Buffer[][]> {
    const settled = await Promise.allSettled(reqs.map((r) => this.request(r)));
    const out: Buffer[][] = [];
    for (const r of settled) {
      if (r.status === 'rejected') throw r.reason;
      out.push(r.value);
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try { this.sock.close(); } catch { /* already closed by its own failure */ }
  }
}
