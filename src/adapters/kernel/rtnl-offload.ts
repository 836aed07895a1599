/**
 * rtnetlink requests run on libuv's thread pool (native/netns/rtnl.c), for
 * the requests whose kernel work is long: creating a veth pair and bringing
 * its ends up (~1.5 ms inside sendmsg), deleting one (~20 ms of RCU wait).
 * On the main thread that time stalls every request of the router; here it
 * overlaps with the main thread's own work. Sockets are created on the main
 * thread (a socket keeps the netns of the thread that made it) and used by
 * one sequence at a time.
 */
import { NLMSG_DONE, NLMSG_ERROR, type NlRequest, decodeErrno, encodeMessage, failureReason, splitMessages } from './netlink-codec.js';
import { NetlinkError, errnoName } from './netlink-socket.js';

export interface RtnlOffloadAddon {
  rtnlOpen(): number;
  rtnlClose(fd: number): void;
  rtnlTransact(requests: [number, Buffer][], callback: (err: (Error & { errno?: number }) | null, replies: Buffer[]) => void): void;
}

export function hasRtnlOffload(addon: object): addon is RtnlOffloadAddon {
  const a = addon as Partial<RtnlOffloadAddon>;
  return typeof a.rtnlOpen === 'function' && typeof a.rtnlClose === 'function' && typeof a.rtnlTransact === 'function';
}

export interface OffloadStep {
  readonly fd: number;
  readonly req: NlRequest;
  /** For the error message: the netns the socket is in (undefined: the router's). */
  readonly netns?: string;
}

/** The payloads of each request that succeeded, in order, and the failure that ended the sequence early, if one did. */
export interface SequenceOutcome {
  readonly replies: Buffer[][];
  readonly failed?: { readonly index: number; readonly error: NetlinkError };
}

export class RtnlOffload {
  private seq = Math.floor(Math.random() * 0x7fffffff);

  constructor(private readonly addon: RtnlOffloadAddon) {}

  /** A socket in the calling thread's netns (wrap in NetnsSwitcher.run for another one). */
  open(): number {
    try {
      return this.addon.rtnlOpen();
    } catch (e) {
      const err = e as Error & { code?: string };
      throw new NetlinkError({ what: 'open rtnetlink socket', errno: err.code ?? 'EIO', reason: err.message, cause: e });
    }
  }

  close(fd: number): void {
    this.addon.rtnlClose(fd);
  }

  /** Runs the requests in order on a pool thread; the first one the kernel refuses ends the sequence. Never rejects. */
  async sequence(steps: readonly OffloadStep[]): Promise<SequenceOutcome> {
    const seqs = steps.map(() => (this.seq = (this.seq + 1) >>> 0));
    const { err, raw } = await new Promise<{ err: (Error & { errno?: number }) | null; raw: Buffer[] }>((resolve) => {
      this.addon.rtnlTransact(steps.map((s, i) => [s.fd, encodeMessage(s.req, seqs[i]!)]), (e, replies) => resolve({ err: e, raw: replies }));
    });
    const replies: Buffer[][] = [];
    for (const [i, buf] of raw.entries()) {
      const step = steps[i]!;
      const where = step.netns !== undefined ? { netns: step.netns } : {};
      const out: Buffer[] = [];
      for (const m of splitMessages(buf)) {
        if (m.seq !== seqs[i]) continue;
        if (m.type === NLMSG_ERROR) {
          const errno = decodeErrno(m.data);
          if (errno !== 0) {
            const { name, text } = errnoName(errno);
            return { replies, failed: { index: i, error: new NetlinkError({ what: step.req.what, errno: name, reason: failureReason(step.req, name, text), ...where }) } };
          }
          continue;
        }
        if (m.type !== NLMSG_DONE) out.push(m.data);
      }
      replies.push(out);
    }
    if (err) {
      const i = raw.length;
      const step = steps[i] ?? steps[steps.length - 1]!;
      const name = err.errno !== undefined ? errnoName(err.errno).name : 'EIO';
      return { replies, failed: { index: i, error: new NetlinkError({ what: step.req.what, errno: name, reason: err.message, ...(step.netns !== undefined ? { netns: step.netns } : {}), cause: err }) } };
    }
    return { replies };
  }

  /** One request on its own socket in the router's netns. */
  async request(req: NlRequest): Promise<Buffer[]> {
    const fd = this.open();
    try {
      const r = await this.sequence([{ fd, req }]);
      if (r.failed) throw r.failed.error;
      return r.replies[0] ?? [];
    } finally {
      this.close(fd);
    }
  }
}
