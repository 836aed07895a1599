/**
 * The DataPlane on a real Linux kernel, through ip(8), nft(8) and /proc/sys.
 *
 * Host-side commands run in the daemon's own netns (no nsenter) unless
 * `hostNetns` is given (tests and tools that drive a "host" namespace from
 * outside it). Container-side commands always run through
 * `nsenter --net=<CNI_NETNS>`.
 *
 * Veths (attach, the reads of detach, CHECK's inspection, hostLink) are
 * programmed in process over rtnetlink when weft's setns addon and the
 * `netlink` package load (netlink-attach.ts), else through ip(8) as above;
 * which one is chosen is logged once and shown by `weft status`. Deleting a
 * veth always runs in an ip(8) child: the kernel's ~20 ms RCU wait would
 * otherwise block the router's event loop.
 *
 * Planning (what to change) lives in src/core/dataplane and is pure; this
 * class reads state, asks the planners, runs the batches and undoes a
 * half-done attach.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { MACVLAN_ALIAS, containerAliasFor, planMacvlanAttach, planVethAttach } from '../../core/dataplane/attach-plan.js';
import { planBridge, planPortReattach, renderBridgeOps } from '../../core/dataplane/bridge-plan.js';
import { type ParsedLink, containerIfaceState, jsonArray, parseGlobalAddresses, parseLink, parseLinks } from '../../core/dataplane/ip-json.js';
import { elapsedMs as ms } from './elapsed.js';
import { assertIfname, isHostIfname, networkFromAlias, parsePortAlias, parseVxlanAlias } from '../../core/dataplane/names.js';
import { renderNatRemoval, renderNatRuleset } from '../../core/dataplane/nat-ruleset.js';
import type {
  AttachResult,
  BridgeSpec,
  ContainerIfaceState,
  DataPlane,
  HostLinkState,
  KernelFeatures,
  MacvlanAttachSpec,
  NatSpec,
  VethAttachSpec,
  VethPrepareSpec,
  PreparedVeth,
  VethProgramming,
} from '../../core/dataplane/types.js';
import { BridgeFullError, ConflictError, InterfaceExistsError, InternalError, InvalidConfigError, InvalidEnvError, NotFoundError } from '../../core/errors.js';
import { IpCommandError, IpRunner, isAlreadyExists, isNetnsUnusable, isNoSuchDevice } from './ip-runner.js';
import { NetlinkVeth, type VethAttached, type VethOps } from './netlink-attach.js';
import { chooseVethProgramming } from './netlink-select.js';
import { isNetlinkErrno, isNetlinkNetnsUnusable, loadNetlinkPackage } from './netlink-socket.js';
import { NetnsSwitcher, loadNetnsAddon } from './netns-addon.js';
import { RtnlOffload, hasRtnlOffload } from './rtnl-offload.js';
import { isNetns } from './netns.js';
import { NftRunner } from './nft.js';
import { probeKernel } from './probe.js';
import { KeyedSerializer } from './serial.js';
import { ensureSysctl } from './sysctl.js';

type Fields = Record<string, unknown>;

/** The subset of the daemon's Logger this adapter uses (structural, so any logger fits). */
export interface DataPlaneLogger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

export interface KernelDataPlaneOptions {
  /**
   * Path of the netns that plays "host". Undefined (the daemon): the
   * process's own netns. Tests pass the namespace they created, so nothing
   * ever lands in the netns the test runner itself lives in.
   */
  readonly hostNetns?: string;
  /** Per-command timeout; default 30 s. */
  readonly timeoutMs?: number;
  /**
   * false: program veths with ip(8) even when in-process netlink is
   * available. Default: netlink when the addon and the package load (and
   * WEFT_NETLINK is not 0/off), ip(8) otherwise.
   */
  readonly netlink?: boolean;
}

/** The link is gone (ip: "Cannot find device"; netlink: ENODEV). */
function isGone(e: unknown): boolean {
  return isNoSuchDevice(e) || isNetlinkErrno(e, 'ENODEV');
}

function isExists(e: unknown): boolean {
  return isAlreadyExists(e) || isNetlinkErrno(e, 'EEXIST');
}

/** EXFULL on enslaving: the bridge has the kernel's maximum of ports (BR_MAX_PORTS, 1024 port numbers). */
function isBridgeFull(e: unknown): boolean {
  return isNetlinkErrno(e, 'EXFULL') || (e instanceof IpCommandError && /Exchange full/i.test(e.stderr));
}

/**
 * A host end weft made: it carries weft's port alias, or it has weft's
 * host-end name and no alias yet (a pair created on the pool whose alias
 * request a crash cut off).
 */
function isOwnedPort(l: Pick<HostLinkState, 'name' | 'alias'>): boolean {
  return parsePortAlias(l.alias) !== undefined || ((l.alias === undefined || l.alias === '') && isHostIfname(l.name));
}

function isNetnsGone(e: unknown): boolean {
  return isNetnsUnusable(e) || isNetlinkNetnsUnusable(e);
}

/** A locally administered unicast MAC (bit 1 of the first octet set, bit 0 clear). */
function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function toHostLinkState(l: ParsedLink): HostLinkState {
  return {
    name: l.name,
    up: l.up,
    mac: l.mac,
    mtu: l.mtu,
    ...(l.master !== undefined ? { master: l.master } : {}),
    ...(l.kind !== undefined ? { kind: l.kind } : {}),
    ...(l.alias !== undefined ? { alias: l.alias } : {}),
  };
}

function firstLink(doc: unknown): ParsedLink {
  const l = parseLinks(doc)[0];
  if (!l) throw new InternalError('ip(8) printed no link for a show command');
  return l;
}


export class KernelDataPlane implements DataPlane {
  private readonly log: DataPlaneLogger;
  private readonly hostNetns: string | undefined;
  private readonly timeoutMs: number | undefined;
  private readonly host: IpRunner;
  private readonly nft: NftRunner;
  private readonly serial = new KeyedSerializer();
  /** Text of the ruleset last applied successfully; undefined = unknown (apply next time). */
  private lastNat: string | undefined;
  private readonly programming: VethProgramming;
  /** How veths are programmed: in-process netlink, or the ip(8) methods below. */
  private readonly veth: VethOps;

  constructor(log: DataPlaneLogger, opts: KernelDataPlaneOptions = {}) {
    this.log = log;
    this.hostNetns = opts.hostNetns;
    this.timeoutMs = opts.timeoutMs;
    if (this.hostNetns !== undefined && !isNetns(this.hostNetns)) {
      // Refuse rather than fall back to our own netns: that may be the machine's root netns.
      throw new InternalError(`hostNetns ${this.hostNetns} is not a network namespace`);
    }
    const base = { ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) };
    this.host = new IpRunner({ ...base, ...(this.hostNetns !== undefined ? { netns: this.hostNetns } : {}) });
    this.nft = new NftRunner({ ...base, ...(this.hostNetns !== undefined ? { netns: this.hostNetns } : {}) });
    this.programming = chooseVethProgramming({
      ...(opts.netlink !== undefined ? { option: opts.netlink } : {}),
      ...(process.env.WEFT_NETLINK !== undefined ? { env: process.env.WEFT_NETLINK } : {}),
      platform: process.platform,
      addon: loadNetnsAddon,
      netlink: loadNetlinkPackage,
    });
    const addon = this.programming.mode === 'netlink' ? loadNetnsAddon() : undefined;
    const pkg = this.programming.mode === 'netlink' ? loadNetlinkPackage() : undefined;
    if (addon?.ok && pkg?.ok) {
      this.veth = new NetlinkVeth(pkg.value, new NetnsSwitcher(addon.value), this.hostNetns, opts.timeoutMs ?? 30_000, hasRtnlOffload(addon.value) ? new RtnlOffload(addon.value) : undefined);
      this.log.info('veths are programmed in process over rtnetlink');
    } else {
      this.veth = this.ipVeth;
      this.log.warn('veths are programmed by spawning ip(8): in-process netlink is unavailable', { reason: this.programming.reason });
    }
  }

  vethProgramming(): VethProgramming {
    return this.veth instanceof NetlinkVeth ? { ...this.programming, prepared: this.veth.canPrepare } : this.programming;
  }

  private inContainer(netns: string): IpRunner {
    return this.host.in(netns);
  }

  isNetns(path: string): boolean {
    return isNetns(path);
  }

  // ---- features and sysctls ----

  async probe(): Promise<KernelFeatures> {
    const t0 = performance.now();
    const { features, reasons } = await probeKernel(this.timeoutMs);
    this.log.info('kernel features probed', { features, missing: reasons, ms: ms(t0) });
    return features;
  }

  async enableForwarding(families: readonly (4 | 6)[]): Promise<void> {
    for (const f of new Set(families)) {
      const key = f === 4 ? 'net/ipv4/ip_forward' : 'net/ipv6/conf/all/forwarding';
      if (await ensureSysctl(key, '1', this.hostNetns)) this.log.info('forwarding enabled', { sysctl: key });
    }
  }

  // ---- bridges ----

  /** The link and its global addresses, or undefined when absent. */
  private async readHostLinkAddrs(name: string): Promise<{ link: ParsedLink; addrs: string[] } | undefined> {
    try {
      const doc = await this.host.json(['addr', 'show', 'dev', name], { details: true });
      const o = jsonArray(doc)[0];
      if (!o) return undefined;
      return { link: parseLink(o), addrs: parseGlobalAddresses(o) };
    } catch (e) {
      if (isNoSuchDevice(e)) return undefined;
      throw e;
    }
  }

  ensureBridge(spec: BridgeSpec): Promise<{ mac: string }> {
    return this.serial.run(`bridge:${spec.name}`, async () => {
      const t0 = performance.now();
      for (let attempt = 0; ; attempt++) {
        const observed = await this.readHostLinkAddrs(spec.name);
        const ops = planBridge(spec, observed?.link, observed?.addrs ?? [], { macForNewBridge: randomMac() });
        if (ops.length === 0 && observed) return { mac: observed.link.mac };
        // A missing bridge may have been deleted under running containers: bring their ports back.
        const reattach = observed ? [] : planPortReattach(spec.name, await this.listHostLinks());
        try {
          const docs = await this.host.batch([...renderBridgeOps(ops), ...reattach, `link show dev ${spec.name}`], { json: true });
          const mac = firstLink(docs[docs.length - 1]).mac;
          this.log.info(observed ? 'bridge repaired' : 'bridge created', {
            bridge: spec.name,
            network: spec.network,
            changes: ops.map((o) => o.kind),
            ...(reattach.length > 0 ? { portsReattached: reattach.filter((l) => l.includes(' master ')).length } : {}),
            ms: ms(t0),
          });
          return { mac };
        } catch (e) {
          // Someone created it between our read and our create: read again and reconcile once more.
          if (attempt === 0 && !observed && isAlreadyExists(e) && e instanceof IpCommandError && e.failedLine?.startsWith('link add')) continue;
          throw e;
        }
      }
    });
  }

  removeBridge(name: string): Promise<void> {
    assertIfname(name, 'bridge name');
    return this.serial.run(`bridge:${name}`, async () => {
      const link = await this.hostLink(name);
      if (!link) return;
      if (link.kind !== 'bridge' || networkFromAlias(link.alias) === undefined) {
        throw new ConflictError(`refusing to delete "${name}": it is not a bridge weft created`, { details: `kind=${link.kind ?? '?'} alias=${link.alias ?? ''}` });
      }
      await this.deleteLink(this.host, name);
      this.log.info('bridge removed', { bridge: name });
    });
  }

  async listOwnedBridges(): Promise<{ name: string; network: string; overlayPorts: number }[]> {
    const links = await this.listHostLinks();
    const overlayPorts = new Map<string, number>();
    for (const l of links) if (l.master !== undefined && parseVxlanAlias(l.alias) !== undefined) overlayPorts.set(l.master, (overlayPorts.get(l.master) ?? 0) + 1);
    const out: { name: string; network: string; overlayPorts: number }[] = [];
    for (const l of links) {
      const network = networkFromAlias(l.alias);
      if (l.kind === 'bridge' && network !== undefined) out.push({ name: l.name, network, overlayPorts: overlayPorts.get(l.name) ?? 0 });
    }
    return out;
  }

  async listOwnedPorts(): Promise<{ name: string; bridge: string; mac: string }[]> {
    const out: { name: string; bridge: string; mac: string }[] = [];
    for (const l of await this.listHostLinks()) {
      if (l.kind === 'veth' && isOwnedPort(l)) out.push({ name: l.name, bridge: parsePortAlias(l.alias)?.bridge ?? l.master ?? '', mac: l.mac });
    }
    return out;
  }

  async removeOwnedPort(name: string, mac: string): Promise<boolean> {
    assertIfname(name, 'host interface name');
    const link = await this.hostLink(name);
    // Re-read right before deleting: only the same veth (MAC), still saying it is weft's, goes.
    if (!link || link.kind !== 'veth' || !isOwnedPort(link) || link.mac.toLowerCase() !== mac.toLowerCase()) return false;
    return this.deleteLink(this.host, name);
  }

  // ---- links ----

  hostLink(name: string): Promise<HostLinkState | undefined> {
    return this.veth.readLink(undefined, name);
  }

  async listHostLinks(): Promise<HostLinkState[]> {
    return parseLinks(await this.host.json(['link', 'show'], { details: true })).map(toHostLinkState);
  }

  /** A link with details, or undefined when it (or the netns) is gone. */
  private async readLink(ip: IpRunner, name: string): Promise<ParsedLink | undefined> {
    try {
      const doc = await ip.json(['link', 'show', 'dev', name], { details: true });
      return parseLinks(doc)[0];
    } catch (e) {
      if (isNoSuchDevice(e) || isNetnsUnusable(e)) return undefined;
      throw e;
    }
  }

  /** `ip link del`; true when it deleted something, false when it was already gone. */
  private async deleteLink(ip: IpRunner, name: string): Promise<boolean> {
    try {
      await ip.run(['link', 'del', 'dev', name]);
      return true;
    } catch (e) {
      if (isNoSuchDevice(e) || isNetnsUnusable(e)) return false;
      throw e;
    }
  }

  private assertNetns(path: string): void {
    if (!isNetns(path)) {
      throw new InvalidEnvError(`CNI_NETNS "${path}" is not a network namespace`, {
        hint: 'the runtime must pass the path of an existing netns (/run/netns/NAME or /proc/PID/ns/net)',
      });
    }
  }

  // ---- veth ----

  /** The ip(8) way: one `ip -batch` per side (nsenter for the container's). */
  private readonly ipVeth: VethOps = {
    mode: 'ip',
    attach: async (spec, state) => {
      const t0 = performance.now();
      const plan = planVethAttach(spec);
      state.created = true;
      let hostDocs: unknown[];
      try {
        hostDocs = await this.host.batch([...plan.host, `link show dev ${spec.hostIfname}`, `link show dev ${spec.bridge}`], { json: true });
      } catch (e) {
        // `link add` is one netlink request: when it fails, nothing was created.
        if (e instanceof IpCommandError && e.failedLine === plan.host[0]) state.created = false;
        // ip reports a missing master as an argument error ("argument "X" is wrong: Device does not exist")
        // and exits without naming the batch line, so match on the bridge name.
        if (isNoSuchDevice(e) && (e as IpCommandError).stderr.includes(`"${spec.bridge}"`)) {
          throw new NotFoundError(`bridge "${spec.bridge}" does not exist`, { hint: 'the network bridge must be ensured before attaching containers', cause: e });
        }
        throw e;
      }
      const hostMs = ms(t0);
      const t1 = performance.now();
      const contDocs = await this.inContainer(spec.netns).batch([...plan.container, `link show dev ${spec.ifname}`], { json: true });
      return {
        hostMac: firstLink(hostDocs[hostDocs.length - 2]).mac,
        bridgeMac: firstLink(hostDocs[hostDocs.length - 1]).mac,
        containerMac: firstLink(contDocs[contDocs.length - 1]).mac,
        timings: { hostMs, containerMs: ms(t1) },
      };
    },
    readLink: async (netns, name) => {
      const l = await this.readLink(netns === undefined ? this.host : this.inContainer(netns), name);
      return l ? toHostLinkState(l) : undefined;
    },
    // A vanished link or netns is undefined: inspectContainerIface catches that for both ways.
    inspect: async (netns, ifname) => {
      const docs = await this.inContainer(netns).batch(
        [`addr show dev ${ifname}`, `route show table all dev ${ifname} root 0.0.0.0/0`, `route show table all dev ${ifname} root ::/0`],
        { json: true, details: true },
      );
      const link = jsonArray(docs[0])[0];
      if (!link) return undefined;
      return containerIfaceState(link, docs[1] ?? [], docs[2] ?? []);
    },
  };

  prepareVeth(spec: VethPrepareSpec): PreparedVeth | undefined {
    return this.veth instanceof NetlinkVeth ? this.veth.prepare(spec) : undefined;
  }

  async attachVeth(spec: VethAttachSpec, prepared?: PreparedVeth): Promise<AttachResult> {
    const t0 = performance.now();
    this.assertNetns(spec.netns);
    // Validates the whole spec before anything exists (both ways use the same checks).
    planVethAttach(spec);
    const v = this.veth;
    // Whether CNI_IFNAME is taken is not read up front: creating the pair
    // fails with EEXIST when either name is taken, and only then do we look
    // which one it was.
    const state = { created: false };
    try {
      let r: VethAttached;
      try {
        r = await v.attach(spec, state, prepared);
      } catch (e) {
        if (state.created || !isExists(e)) throw e;
        await this.resolveNameClash(spec, e);
        r = await v.attach(spec, state);
      }
      this.log.info('veth attached', { netns: spec.netns, ifname: spec.ifname, hostIfname: spec.hostIfname, bridge: spec.bridge, via: v.mode, ms: ms(t0), ...r.timings });
      return { containerMac: r.containerMac, hostMac: r.hostMac, ...(r.bridgeMac !== undefined ? { bridgeMac: r.bridgeMac } : {}) };
    } catch (e) {
      if (state.created) await this.rollbackHostEnd(spec.hostIfname, e);
      if (isBridgeFull(e)) {
        throw new BridgeFullError(`bridge ${spec.bridge} has the most ports the kernel allows (1023): no more containers fit on this network on this host`, { hint: 'attach further containers to another weft network (another bridge), or remove containers from this one', cause: e });
      }
      throw e;
    }
  }

  /**
   * Creating the pair said EEXIST. CNI_IFNAME taken in the container: the
   * caller's InterfaceExistsError. Otherwise the host end's name is taken;
   * that name is derived from (container id, ifname), so a veth holding it is
   * the leftover of an earlier attach of this very attachment that was
   * interrupted before its rollback ran: remove it and let the caller retry
   * once. Anything else holding the name is a conflict.
   */
  private async resolveNameClash(spec: VethAttachSpec, cause: unknown): Promise<void> {
    if (await this.veth.readLink(spec.netns, spec.ifname)) {
      throw new InterfaceExistsError(`interface "${spec.ifname}" already exists in ${spec.netns}`, { hint: 'choose another CNI_IFNAME, or DEL the previous attachment first', cause });
    }
    const existing = await this.veth.readLink(undefined, spec.hostIfname);
    if (!existing) return; // both names free by now: a transient clash; retry
    if (existing.kind !== 'veth') {
      throw new ConflictError(`host interface name "${spec.hostIfname}" is taken by a ${existing.kind ?? 'link'} weft did not create`, { cause });
    }
    this.log.warn('replacing stale host veth end', { hostIfname: spec.hostIfname, master: existing.master });
    await this.deleteLink(this.host, spec.hostIfname);
  }

  private async rollbackHostEnd(hostIfname: string, cause: unknown): Promise<void> {
    try {
      // Deleting one end of a veth deletes its peer in the container too.
      await this.deleteLink(this.host, hostIfname);
      this.log.warn('attach failed; veth removed', { hostIfname, error: (cause as Error).message });
    } catch (e) {
      this.log.error('attach failed and its veth could not be removed', { hostIfname, error: (e as Error).message, cause: (cause as Error).message });
    }
  }

  /**
   * Deletes the pair through its host end: one process, and the name is
   * weft's own (derived from container id + ifname), so nothing foreign can be
   * hit. Deleting either end of a veth removes both. Only when the host end is
   * already gone and the netns still holds an interface carrying our mark
   * (`weft:<hostIfname>`) is the container side deleted instead. A DEL that
   * follows a failed ADD (INTERFACE_EXISTS) therefore never touches the
   * runtime's own interface of that name. The deletes run in ip(8) children
   * whichever way veths are programmed (see the header).
   */
  async detachVeth(args: { netns?: string; ifname: string; hostIfname: string }): Promise<void> {
    const t0 = performance.now();
    assertIfname(args.ifname, 'CNI_IFNAME');
    assertIfname(args.hostIfname, 'host interface name');
    if (await this.deleteLink(this.host, args.hostIfname)) {
      this.log.info('veth detached', { hostIfname: args.hostIfname, ms: ms(t0) });
      return;
    }
    if (args.netns === undefined || args.netns === '' || !isNetns(args.netns)) return;
    const link = await this.veth.readLink(args.netns, args.ifname);
    if (link && link.kind === 'veth' && link.alias === containerAliasFor(args.hostIfname) && (await this.deleteLink(this.inContainer(args.netns), args.ifname))) {
      this.log.info('veth detached (container end)', { netns: args.netns, ifname: args.ifname, ms: ms(t0) });
    }
  }

  // ---- macvlan ----

  async attachMacvlan(spec: MacvlanAttachSpec): Promise<AttachResult> {
    const t0 = performance.now();
    this.assertNetns(spec.netns);
    const plan = planMacvlanAttach(spec);
    const cont = this.inContainer(spec.netns);
    try {
      // The macvlan is created inside the netns, so EEXIST means CNI_IFNAME is taken there.
      await this.host.batch(plan.host);
    } catch (e) {
      if (isNoSuchDevice(e) && (e as IpCommandError).stderr.includes(`"${spec.master}"`)) {
        throw new InvalidConfigError(`macvlan master "${spec.master}" does not exist in the host network namespace`, { hint: 'set "master" to an existing interface of the host', cause: e });
      }
      if (isAlreadyExists(e)) throw new InterfaceExistsError(`interface "${spec.ifname}" already exists in ${spec.netns}`, { hint: 'choose another CNI_IFNAME, or DEL the previous attachment first', cause: e });
      throw e;
    }
    try {
      const docs = await cont.batch([...plan.container, `link show dev ${spec.ifname}`], { json: true });
      const containerMac = firstLink(docs[docs.length - 1]).mac;
      this.log.info('macvlan attached', { netns: spec.netns, ifname: spec.ifname, master: spec.master, ms: ms(t0) });
      return { containerMac };
    } catch (e) {
      try {
        await this.deleteLink(cont, spec.ifname);
        this.log.warn('attach failed; macvlan removed', { netns: spec.netns, ifname: spec.ifname, error: (e as Error).message });
      } catch (e2) {
        this.log.error('attach failed and its macvlan could not be removed', { netns: spec.netns, ifname: spec.ifname, error: (e2 as Error).message });
      }
      throw e;
    }
  }

  async detachMacvlan(args: { netns?: string; ifname: string }): Promise<void> {
    assertIfname(args.ifname, 'CNI_IFNAME');
    // A macvlan lives only in the container: with the netns gone, so is it.
    if (args.netns === undefined || args.netns === '' || !isNetns(args.netns)) return;
    const cont = this.inContainer(args.netns);
    const link = await this.readLink(cont, args.ifname);
    if (!link) return;
    if (link.kind !== 'macvlan' || link.alias !== MACVLAN_ALIAS) {
      this.log.warn('not deleting an interface weft did not create', { netns: args.netns, ifname: args.ifname, kind: link.kind });
      return;
    }
    if (await this.deleteLink(cont, args.ifname)) this.log.info('macvlan detached', { netns: args.netns, ifname: args.ifname });
  }

  // ---- inspection ----

  async inspectContainerIface(netns: string, ifname: string): Promise<ContainerIfaceState | undefined> {
    if (!isNetns(netns)) return undefined;
    assertIfname(ifname, 'CNI_IFNAME');
    try {
      return await this.veth.inspect(netns, ifname);
    } catch (e) {
      if (isGone(e) || isNetnsGone(e)) return undefined;
      throw e;
    }
  }

  // ---- nftables ----

  applyNat(spec: NatSpec): Promise<void> {
    const text = renderNatRuleset(spec);
    return this.serial.run('nat', async () => {
      if (text === this.lastNat) {
        this.log.debug('nat ruleset unchanged; not applied');
        return;
      }
      const t0 = performance.now();
      this.lastNat = undefined;
      await this.nft.apply(text);
      this.lastNat = text;
      this.log.info('nat ruleset applied', { masquerade: spec.masquerade.length, portMappings: spec.portMappings.length, ms: ms(t0) });
    });
  }

  removeNat(): Promise<void> {
    return this.serial.run('nat', async () => {
      this.lastNat = undefined;
      await this.nft.apply(renderNatRemoval());
      this.log.info('nat ruleset removed');
    });
  }

  /**
   * Makes the next applyNat apply even when its text is unchanged: call it
   * when the table may have been changed behind weft's back (a firewall
   * reload that flushed the ruleset).
   */
  forgetAppliedNat(): void {
    this.lastNat = undefined;
  }
}
