/**
 * The veth work of KernelDataPlane over in-process rtnetlink: no process is
 * spawned. Host side on a socket in the daemon's netns (or the hostNetns the
 * tests give), container side on a socket created with the main thread
 * switched into the container's netns (netns-addon.ts).
 *
 * Container sockets live for one operation: they are cheap (~30 µs with the
 * two switches) and a socket keeps its netns alive. The host socket is kept
 * when the host is the router's own netns (it cannot go away); a hostNetns
 * given by a test gets one socket per operation, like a container.
 *
 * Round trips are what an attach costs (each is one turn of the event loop),
 * so requests that do not depend on a reply are sent back to back and the
 * kernel runs them in order: host side = create, then configure + read back;
 * container side = read the index, then addresses, alias, up, lo up, routes.
 * Like `ip -batch`, the first failure (in request order) is reported and
 * KernelDataPlane rolls back by deleting the pair, which takes the
 * addresses and routes on it along.
 *
 * Deleting a veth is not done here: the kernel's RCU wait (17-27 ms) would
 * run inside sendmsg() on the main thread and stall every other request of
 * the router, so deletes stay in an ip(8) child (KernelDataPlane).
 */
import { closeSync, openSync } from 'node:fs';
import type { PreparedVeth, VethPrepareSpec } from '../../core/dataplane/types.js';
import { containerAddresses, containerAliasFor, resolveRoutes } from '../../core/dataplane/attach-plan.js';
import { portAlias } from '../../core/dataplane/names.js';
import { canonicalMac } from '../../core/dataplane/spec-checks.js';
import type { ContainerIfaceState, HostLinkState, VethAttachSpec } from '../../core/dataplane/types.js';
import { NotFoundError } from '../../core/errors.js';
import { tryParseIp } from '../../core/ip/addr.js';
import { tryParseCidr } from '../../core/ip/cidr.js';
import {
  type NlLink,
  type NlRequest,
  appendRoute,
  configureLink,
  decodeAddress,
  deleteLinkByName,
  decodeLink,
  decodeRoute,
  dumpAddresses,
  dumpRoutes,
  getLinkByIndex,
  getLinkByName,
  globalAddresses,
  ifaceRoutes,
  newAddress,
  newVeth,
} from './netlink-codec.js';
import { type NetlinkPackage, NetlinkError, RtnlSocket, isNetlinkErrno, isNetlinkNetnsUnusable } from './netlink-socket.js';
import { elapsedMs } from './elapsed.js';
import type { OffloadStep, RtnlOffload } from './rtnl-offload.js';
import type { NetnsSwitcher } from './netns-addon.js';

/** What KernelDataPlane needs from a way of programming veths (netlink here, ip(8) in kernel-dataplane.ts). */
export interface VethOps {
  readonly mode: 'netlink' | 'ip';
  /**
   * Creates the pair (the container end directly inside spec.netns) and
   * configures both ends: host end on the bridge with alias, hairpin and up;
   * container end with addresses, alias, up, lo up and routes. Sets
   * `state.created` once the pair exists, so the caller knows whether a
   * failure left something to roll back.
   */
  attach(spec: VethAttachSpec, state: { created: boolean }, prepared?: PreparedVeth): Promise<VethAttached>;
  /** A link by name, in `netns` (undefined: the host); undefined when it or the netns is gone. */
  readLink(netns: string | undefined, name: string): Promise<HostLinkState | undefined>;
  inspect(netns: string, ifname: string): Promise<ContainerIfaceState | undefined>;
}

export interface VethAttached {
  readonly hostMac: string;
  /** Absent when the bridge was not read (the caller knows it). */
  readonly bridgeMac?: string;
  readonly containerMac: string;
  /** Where the time went, for the log (ms). */
  readonly timings: Readonly<Record<string, number>>;
}


function bridgeMissing(bridge: string, cause?: unknown): NotFoundError {
  return new NotFoundError(`bridge "${bridge}" does not exist`, { hint: 'the network bridge must be ensured before attaching containers', ...(cause !== undefined ? { cause } : {}) });
}

/**
 * The container end's requests once its index is known: addresses, then
 * (unless a prepared pair did it already) alias + up and lo up, then routes
 * (the kernel refuses a gateway route over a down link), and a read of the
 * link by that index (its MAC, and its name as a check).
 */
function containerRequests(spec: VethAttachSpec, index: number, bringUp: boolean): NlRequest[] {
  const reqs: NlRequest[] = containerAddresses(spec.addresses).map((a) => newAddress({ ip: a.ip, prefix: a.prefix, index, ifname: spec.ifname, nodad: a.nodad }));
  if (bringUp) reqs.push(...containerUp(spec, index));
  for (const r of resolveRoutes(spec.routes, spec.gateways)) {
    const dst = tryParseCidr(r.dst)!;
    const via = r.via !== undefined ? tryParseIp(r.via) : undefined;
    reqs.push(appendRoute({ family: dst.family, dst: { family: dst.family, value: dst.base }, dstLen: dst.prefix, ...(via ? { via } : {}), index, ifname: spec.ifname }));
  }
  reqs.push(getLinkByIndex(index));
  return reqs;
}

/** Alias + up on the container end (by index, or by name when 0), lo up. */
function containerUp(spec: Pick<VethAttachSpec, 'ifname' | 'hostIfname'>, index: number): NlRequest[] {
  return [configureLink({ index, name: spec.ifname, alias: containerAliasFor(spec.hostIfname), up: true }), configureLink({ name: 'lo', up: true })];
}

/** The MAC from the final read of containerRequests, which must be the link we made (the index is the kernel's own answer; this double-checks it). */
function containerMacOf(spec: VethAttachSpec, index: number, reply: Buffer | undefined, netns?: string): string {
  const l = reply !== undefined ? decodeLink(reply) : undefined;
  if (!l || l.name !== spec.ifname) {
    throw new NetlinkError({ what: `link show index ${index}`, errno: 'ESTALE', reason: `index ${index} is ${l?.name ?? 'nothing'}, not ${spec.ifname}`, ...(netns !== undefined ? { netns } : {}) });
  }
  return l.mac;
}

/**
 * How far a prepared pair got on the thread pool: not created (attach()
 * creates it and reports the error), created but not configured (attach()
 * configures it the usual way), or created with both ends up and the host
 * end read back (attach() only adds addresses and routes).
 */
type PrepareOutcome =
  | { readonly created: false }
  | { readonly created: true; readonly configured: false }
  | { readonly created: true; readonly configured: true; readonly echoed?: NlLink; readonly host: NlLink };

/**
 * A veth pair whose creation started on the thread pool before the attach
 * (NetlinkVeth.prepare). The attach that consumes it waits for the outcome
 * and carries on from there; one never consumed is removed by discard().
 * Owns a socket in the container's netns until settle().
 */
class PreparedPair implements PreparedVeth {
  consumed = false;
  private closed = false;

  constructor(
    readonly hostIfname: string,
    /** The bridge index the pair was created with. */
    readonly master: number,
    readonly outcome: Promise<PrepareOutcome>,
    readonly containerFd: number,
    private readonly offload: RtnlOffload,
  ) {}

  /** Closes the container socket (once the outcome is in: the pool may still use it before). */
  async settle(): Promise<void> {
    await this.outcome;
    if (this.closed) return;
    this.closed = true;
    this.offload.close(this.containerFd);
  }

  async discard(): Promise<void> {
    if (this.consumed) return;
    this.consumed = true;
    const o = await this.outcome;
    await this.settle();
    // Removing a link waits ~20 ms for RCU in the kernel: on the pool too.
    if (o.created) {
      await this.offload.request(deleteLinkByName(this.hostIfname)).catch((e: unknown) => {
        if (!isNetlinkErrno(e, 'ENODEV')) throw e;
      });
    }
  }
}

export class NetlinkVeth implements VethOps {
  readonly mode = 'netlink' as const;
  /** The router's own netns: one socket for the router's life. */
  private hostSock: RtnlSocket | undefined;
  /**
   * ifindex of each bridge as last read. Indexes are handed out by a
   * per-netns counter and not reused, so a stale entry can only point at
   * nothing (the create then fails and the bridge is read again), never at
   * another device; the attach still checks the host end's master after the fact.
   */
  private readonly bridgeIndex = new Map<string, number>();

  constructor(
    private readonly pkg: NetlinkPackage,
    private readonly switcher: NetnsSwitcher,
    /** The host's netns path; undefined = the process's own. */
    private readonly hostNetns: string | undefined,
    private readonly timeoutMs: number,
    /** Requests on libuv's pool; without it (an older addon build) nothing is prepared ahead. */
    private readonly offload?: RtnlOffload,
  ) {}

  /** Whether prepare() can work at all (the addon has the pool requests, the host is the router's own netns). */
  get canPrepare(): boolean {
    return this.offload !== undefined && this.hostNetns === undefined;
  }

  /**
   * Starts creating the pair on the thread pool (the kernel's ~1.5 ms of
   * work then overlaps with the caller's allocation and commit) when that
   * can be done: the bridge's index is known and the host is the router's
   * own netns. Never throws: undefined means attach() creates the pair
   * itself, and reports whatever goes wrong the usual way.
   */
  prepare(spec: VethPrepareSpec): PreparedVeth | undefined {
    const offload = this.offload;
    const master = this.bridgeIndex.get(spec.bridge);
    if (!offload || this.hostNetns !== undefined || master === undefined) return undefined;
    let mac: string | undefined;
    let nsFd: number;
    let contFd: number;
    let hostFd: number;
    try {
      mac = spec.mac !== undefined && spec.mac !== '' ? canonicalMac(spec.mac) : undefined;
      nsFd = openSync(spec.netns, 'r');
    } catch {
      return undefined;
    }
    try {
      contFd = this.switcher.run(spec.netns, () => offload.open());
    } catch {
      closeSync(nsFd);
      return undefined;
    }
    try {
      hostFd = offload.open();
    } catch {
      closeSync(nsFd);
      offload.close(contFd);
      return undefined;
    }
    let steps: OffloadStep[];
    try {
      steps = [
        { fd: hostFd, req: newVeth({ name: spec.hostIfname, mtu: spec.mtu, master, peer: { name: spec.ifname, mtu: spec.mtu, ...(mac !== undefined ? { mac } : {}), netnsFd: nsFd, netnsLabel: spec.netns } }) },
        { fd: hostFd, req: configureLink({ name: spec.hostIfname, alias: portAlias(spec.bridge, spec.hairpin), hairpin: spec.hairpin, up: true }) },
        { fd: hostFd, req: getLinkByName(spec.hostIfname) },
        ...containerUp(spec, 0).map((req) => ({ fd: contFd, req, netns: spec.netns })),
      ];
    } catch {
      closeSync(nsFd);
      offload.close(hostFd);
      offload.close(contFd);
      return undefined;
    }
    const outcome = offload.sequence(steps).then((r): PrepareOutcome => {
      if (r.replies.length === 0) return { created: false };
      if (r.failed) return { created: true, configured: false };
      try {
        const echo = r.replies[0]![0];
        return { created: true, configured: true, ...(echo !== undefined ? { echoed: decodeLink(echo) } : {}), host: decodeLink(r.replies[2]![0]!) };
      } catch {
        // Made, but the answers did not parse: attach() configures it the usual way (idempotent requests).
        return { created: true, configured: false };
      }
    }, (): PrepareOutcome => ({ created: false })).finally(() => {
      closeSync(nsFd);
      offload.close(hostFd);
    });
    return new PreparedPair(spec.hostIfname, master, outcome, contFd, offload);
  }

  /** The rest of an attach whose pair the pool created and brought up: addresses, routes and the read back, on the pool too. */
  private async finishPrepared(spec: VethAttachSpec, pre: PreparedPair, o: Extract<PrepareOutcome, { configured: true }>, t0: number): Promise<VethAttached> {
    const waited = elapsedMs(t0);
    try {
      if (o.host.master !== pre.master) {
        this.bridgeIndex.delete(spec.bridge);
        throw bridgeMissing(spec.bridge, new NetlinkError({ what: `link add name ${spec.hostIfname} master index ${pre.master}`, errno: 'ESTALE', reason: `the new link's master is index ${o.host.master ?? 'none'}` }));
      }
      const index = o.echoed?.name === spec.hostIfname ? o.echoed.linkIndex : o.host.linkIndex;
      if (index === undefined) throw new NetlinkError({ what: `link show dev ${spec.hostIfname}`, errno: 'ESTALE', reason: 'the kernel did not say which link is the peer' });
      const r = await this.offload!.sequence(containerRequests(spec, index, false).map((req) => ({ fd: pre.containerFd, req, netns: spec.netns })));
      if (r.failed) throw r.failed.error;
      const containerMac = containerMacOf(spec, index, r.replies[r.replies.length - 1]?.[0], spec.netns);
      return { hostMac: o.host.mac, containerMac, timings: { createMs: waited, totalMs: elapsedMs(t0), prepared: 1 } };
    } finally {
      await pre.settle();
    }
  }

  private open(netns: string | undefined): RtnlSocket {
    return RtnlSocket.open(this.pkg, this.switcher, netns, this.timeoutMs);
  }

  /** Runs `fn` with a socket in the host's netns. */
  private async withHost<T>(fn: (s: RtnlSocket) => Promise<T>): Promise<T> {
    if (this.hostNetns === undefined) {
      if (!this.hostSock?.usable) {
        this.hostSock?.close();
        this.hostSock = this.open(undefined);
      }
      return fn(this.hostSock);
    }
    const s = this.open(this.hostNetns);
    try {
      return await fn(s);
    } finally {
      s.close();
    }
  }

  private async bridgeIdx(s: RtnlSocket, bridge: string): Promise<number> {
    const known = this.bridgeIndex.get(bridge);
    if (known !== undefined) return known;
    const br = await this.link(s, bridge);
    if (!br) throw bridgeMissing(bridge);
    this.bridgeIndex.set(bridge, br.index);
    return br.index;
  }

  private async link(s: RtnlSocket, name: string): Promise<NlLink | undefined> {
    try {
      const [data] = await s.request(getLinkByName(name));
      return data !== undefined ? decodeLink(data) : undefined;
    } catch (e) {
      if (isNetlinkErrno(e, 'ENODEV')) return undefined;
      throw e;
    }
  }

  private async mustLink(s: RtnlSocket, name: string): Promise<NlLink> {
    const l = await this.link(s, name);
    if (!l) throw new NetlinkError({ what: `link show dev ${name}`, errno: 'ENODEV', reason: 'No such device (ENODEV)', ...(s.netns !== undefined ? { netns: s.netns } : {}) });
    return l;
  }

  /**
   * Round trips are the cost: (1) create the pair, with the master set and
   * ECHO, whose answer carries the container end's index (IFLA_LINK);
   * (2) at the same time, the host batch (alias, hairpin, up, read both
   * links back) and the container batch (addresses, alias, up, lo up,
   * routes, read the link). A kernel that does not echo costs one more
   * round trip: the host batch first, whose read gives the index.
   */
  async attach(spec: VethAttachSpec, state: { created: boolean }, prepared?: PreparedVeth): Promise<VethAttached> {
    const t0 = performance.now();
    const pre = prepared instanceof PreparedPair && !prepared.consumed && prepared.hostIfname === spec.hostIfname ? prepared : undefined;
    if (!pre) return this.attachHere(spec, state, t0, undefined);
    pre.consumed = true;
    const early = await pre.outcome;
    if (early.created) state.created = true;
    if (early.created && early.configured) return this.finishPrepared(spec, pre, early, t0);
    await pre.settle();
    // A prepared pair that could not be made is made here, so its error is reported (or resolved) as usual.
    return this.attachHere(spec, state, t0, early.created ? pre.master : undefined);
  }

  /** The attach on the main thread: create the pair (unless `createdOn` says it exists, on that bridge index), then configure both ends. */
  private async attachHere(spec: VethAttachSpec, state: { created: boolean }, t0: number, createdOn: number | undefined): Promise<VethAttached> {
    const mac = spec.mac !== undefined && spec.mac !== '' ? canonicalMac(spec.mac) : undefined;
    let fd: number;
    try {
      fd = openSync(spec.netns, 'r');
    } catch (e) {
      throw new NetlinkError({ what: `open ${spec.netns}`, errno: (e as NodeJS.ErrnoException).code ?? 'EIO', reason: (e as Error).message, netnsUnusable: true, netns: spec.netns, cause: e });
    }
    try {
      return await this.withHost(async (s) => {
        let master = createdOn ?? await this.bridgeIdx(s, spec.bridge);
        let echoed: NlLink | undefined;
        for (let attempt = 0; createdOn === undefined; attempt++) {
          try {
            const [reply] = await s.request(newVeth({ name: spec.hostIfname, mtu: spec.mtu, master, peer: { name: spec.ifname, mtu: spec.mtu, ...(mac !== undefined ? { mac } : {}), netnsFd: fd, netnsLabel: spec.netns } }));
            echoed = reply !== undefined ? decodeLink(reply) : undefined;
            break;
          } catch (e) {
            // An IFLA_MASTER that names no device is EINVAL (ENODEV on older kernels): the
            // bridge may be gone, or re-created under a new index since we cached it.
            if (!isNetlinkErrno(e, 'EINVAL') && !isNetlinkErrno(e, 'ENODEV')) throw e;
            const now = await this.link(s, spec.bridge);
            if (!now) {
              this.bridgeIndex.delete(spec.bridge);
              throw bridgeMissing(spec.bridge, e);
            }
            this.bridgeIndex.set(spec.bridge, now.index);
            if (now.index === master || attempt > 0) throw e; // the bridge is fine: the error is about something else
            master = now.index;
          }
        }
        state.created = true;
        const created = elapsedMs(t0);
        const hostDone = this.finishHost(s, spec, master);
        let peerIndex = echoed?.name === spec.hostIfname ? echoed.linkIndex : undefined;
        if (peerIndex === undefined) {
          // No echo (an older kernel): the host batch's read gives the index.
          const h = await hostDone;
          peerIndex = h.peerIndex;
        }
        const contDone = this.container(spec, peerIndex);
        // Both settle before anything is reported, so a rollback never races our own requests.
        const [h, c] = await Promise.allSettled([hostDone, contDone]);
        if (h.status === 'rejected') throw h.reason;
        if (c.status === 'rejected') throw c.reason;
        return { hostMac: h.value.hostMac, bridgeMac: h.value.bridgeMac, containerMac: c.value, timings: { createMs: created, totalMs: elapsedMs(t0) } };
      });
    } finally {
      closeSync(fd);
    }
  }

  /** Alias, hairpin and up on the host end; reads it and the bridge back and checks it landed on the bridge. */
  private async finishHost(s: RtnlSocket, spec: VethAttachSpec, master: number): Promise<{ hostMac: string; bridgeMac: string; peerIndex?: number }> {
    const [, hostReply, bridgeReply] = await s.batch([
      configureLink({ name: spec.hostIfname, alias: portAlias(spec.bridge, spec.hairpin), hairpin: spec.hairpin, up: true }),
      getLinkByName(spec.hostIfname),
      getLinkByName(spec.bridge),
    ]);
    const h = decodeLink(hostReply![0]!);
    const b = decodeLink(bridgeReply![0]!);
    if (h.master !== b.index || b.index !== master) {
      // The bridge was deleted (and maybe re-created) under us: NOT_FOUND makes the caller ensure it and retry.
      this.bridgeIndex.delete(spec.bridge);
      throw bridgeMissing(spec.bridge, new NetlinkError({ what: `link add name ${spec.hostIfname} master ${spec.bridge}`, errno: 'ESTALE', reason: `the new link's master is index ${h.master ?? 'none'}, the bridge is index ${b.index}`, ...(s.netns !== undefined ? { netns: s.netns } : {}) }));
    }
    return { hostMac: h.mac, bridgeMac: b.mac, ...(h.linkIndex !== undefined ? { peerIndex: h.linkIndex } : {}) };
  }

  /**
   * One batch when the container end's index is known (the host end's
   * IFLA_LINK): addresses, alias + up, lo up, routes, and a read of the link
   * by that index (its MAC, and its name as a check). Without the index the
   * link is looked up by name first.
   */
  private async container(spec: VethAttachSpec, peerIndex: number | undefined): Promise<string> {
    const s = this.open(spec.netns);
    try {
      const index = peerIndex ?? (await this.mustLink(s, spec.ifname)).index;
      const reqs = containerRequests(spec, index, true);
      // The index is the kernel's own answer (IFLA_LINK of the veth just created); the read at the end double-checks it.
      const replies = await s.batch(reqs);
      return containerMacOf(spec, index, replies[replies.length - 1]?.[0], s.netns);
    } finally {
      s.close();
    }
  }

  /** The socket, or undefined when the netns cannot be entered (it is gone). */
  private tryOpen(netns: string | undefined): RtnlSocket | undefined {
    try {
      return this.open(netns);
    } catch (e) {
      if (isNetlinkNetnsUnusable(e)) return undefined;
      throw e;
    }
  }

  async readLink(netns: string | undefined, name: string): Promise<HostLinkState | undefined> {
    if (netns === undefined && this.hostNetns === undefined) return this.withHost((s) => this.readLinkOn(s, name));
    const s = this.tryOpen(netns ?? this.hostNetns);
    if (!s) return undefined;
    try {
      return await this.readLinkOn(s, name);
    } finally {
      s.close();
    }
  }

  private async readLinkOn(s: RtnlSocket, name: string): Promise<HostLinkState | undefined> {
    const l = await this.link(s, name);
    if (!l) return undefined;
    let master: string | undefined;
    if (l.master !== undefined) {
      try {
        const [m] = await s.request(getLinkByIndex(l.master));
        master = m !== undefined ? decodeLink(m).name : undefined;
      } catch (e) {
        if (!isNetlinkErrno(e, 'ENODEV')) throw e;
      }
    }
    return {
      name: l.name,
      up: l.up,
      mac: l.mac,
      mtu: l.mtu,
      ...(master !== undefined ? { master } : {}),
      ...(l.kind !== undefined ? { kind: l.kind } : {}),
      ...(l.alias !== undefined ? { alias: l.alias } : {}),
    };
  }

  async inspect(netns: string, ifname: string): Promise<ContainerIfaceState | undefined> {
    const s = this.tryOpen(netns);
    if (!s) return undefined;
    try {
      const l = await this.link(s, ifname);
      if (!l) return undefined;
      // Dumps one at a time: a second dump on a socket with one running is refused (EBUSY).
      const addrs = (await s.request(dumpAddresses())).map(decodeAddress);
      const v4 = (await s.request(dumpRoutes(4))).map(decodeRoute);
      const v6 = await this.optionalDump(s, 6);
      return { ifname: l.name, mac: l.mac, up: l.up, mtu: l.mtu, addresses: globalAddresses(addrs, l.index), routes: [...ifaceRoutes(v4, l.index), ...ifaceRoutes(v6, l.index)] };
    } finally {
      s.close();
    }
  }

  /** IPv6 routes; none when the kernel has no IPv6. */
  private async optionalDump(s: RtnlSocket, family: 6): Promise<ReturnType<typeof decodeRoute>[]> {
    try {
      return (await s.request(dumpRoutes(family))).map(decodeRoute);
    } catch (e) {
      if (isNetlinkErrno(e, 'EAFNOSUPPORT')) return [];
      throw e;
    }
  }
}
