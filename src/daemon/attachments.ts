/**
 * Attaching and detaching container interfaces: the transaction that
 * allocates, the kernel work, and the rollback when either fails.
 *
 * Order of an ADD, and why:
 *  1. one durable transaction allocates every address and records the
 *     attachment as `creating`, with everything its result needs but the
 *     MACs; a crash before it left no record (a veth it may have left is
 *     removed by the reconcile's sweep of veths no record owns);
 *  2. kernel work (bridge, veth or macvlan, NAT);
 *  3. the answer, then a second transaction marks the attachment `ready`.
 *     The `ready` commit (~0.5 ms of fsync) follows the answer because
 *     nothing in the answer depends on it; the keyed lock is held until it
 *     is done. A crash between the answer and that commit leaves a
 *     `creating` record whose kernel state is complete: a restarted router
 *     completes it (settleInterrupted). When the ADD changes the NAT table
 *     (first masquerading container of a subnet, published ports), `ready`
 *     is committed before the answer, because the table is planned from
 *     ready records.
 * Any failure in 2 undoes 2 and then 1, so a failed ADD leaves nothing.
 * weft-ipam has no kernel work: its attachment is `ready` in 1.
 */
import { statSync } from 'node:fs';
import type { Store } from '../adapters/store/store.js';
import { type LinkMacs, ipamResultOf, mainResultOf, mergeDns } from '../core/cni/attach-result.js';
import type { CniDns, CniResult, CniRoute, IpamResult } from '../core/cni/result.js';
import { containerSideComplete } from '../core/dataplane/interrupted-add.js';
import type { DataPlane } from '../core/dataplane/types.js';
import { bridgeNameFor, hostIfnameFor } from '../core/dataplane/names.js';
import { NotFoundError, CheckFailedError, ConflictError, InvalidEnvError, TryAgainError, UnknownContainerError, AddressUnavailableError, toWeftError } from '../core/errors.js';
import type { Attachment, AttachmentIp, PortMappingRecord } from '../core/ipam/attachment.js';
import { type Identity, identityKey } from '../core/ipam/model.js';
import { formatIp, tryParseIp } from '../core/ip/addr.js';
import { cidrContains, parseCidr } from '../core/ip/cidr.js';
import type { BindingChange, HostNetwork } from './host-network.js';
import type { Allocated, IpamService } from './ipam-service.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { Logger } from './logger.js';

export interface AttachRequest {
  readonly plugin: 'weft' | 'weft-ipam';
  readonly mode: 'bridge' | 'macvlan' | 'ipam';
  readonly containerId: string;
  readonly ifname: string;
  readonly netns?: string;
  readonly network: string;
  readonly identity: Identity;
  readonly subnets: readonly string[];
  readonly pool?: string;
  readonly requestedIps: readonly string[];
  readonly mac?: string;
  readonly bridge?: string;
  readonly hairpin: boolean;
  readonly master?: string;
  readonly macvlanMode?: 'bridge' | 'private' | 'vepa' | 'passthru';
  readonly mtu?: number;
  readonly ipMasq: boolean;
  readonly portMappings: readonly PortMappingRecord[];
  readonly aliases: readonly string[];
  /** DNS from the network config and the runtime, layered over the subnet's. */
  readonly dns: readonly CniDns[];
}

export type AttachOutcome = { kind: 'main'; result: CniResult } | { kind: 'ipam'; result: IpamResult };

const WILDCARD = new Set(['', '0.0.0.0', '::']);

/** Two publications of a host port collide when port and protocol match and either binds all addresses or both bind the same one. */
export function portsClash(a: PortMappingRecord, b: PortMappingRecord): boolean {
  if (a.hostPort !== b.hostPort || a.protocol !== b.protocol) return false;
  const ha = a.hostIP ?? '';
  const hb = b.hostIP ?? '';
  if (WILDCARD.has(ha) || WILDCARD.has(hb)) return true;
  const pa = tryParseIp(ha);
  const pb = tryParseIp(hb);
  return pa && pb ? pa.family === pb.family && pa.value === pb.value : ha === hb;
}

export function netnsIdentity(path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Resolves once the answer of the current request has been written: promise callbacks run before any setImmediate. */
function afterAnswer(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class Attachments {
  private readonly lock = new KeyedMutex();
  private readonly listeners: ((a: Attachment, removed: boolean) => void)[] = [];
  private readonly preparing = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly ipam: IpamService,
    private readonly dp: DataPlane,
    private readonly host: HostNetwork,
    private readonly log: Logger,
    private readonly now: () => Date,
    private readonly defaults: { subnet: string; mtu: number },
  ) {}

  private key(cid: string, ifname: string): string {
    return `${cid}/${ifname}`;
  }

  list(): Attachment[] {
    return this.store.read((tx) => tx.listAttachments());
  }

  /** Called after an attachment became ready or was removed (the cluster announces its endpoints then). */
  onChange(fn: (a: Attachment, removed: boolean) => void): void {
    this.listeners.push(fn);
  }

  private changed(a: Attachment, removed: boolean): void {
    for (const fn of this.listeners) {
      try { fn(a, removed); } catch (e) { this.log.warn('attachment change listener failed', { err: (e as Error).message }); }
    }
  }

  /** Resolves with the outcome as soon as it is known; the attachment's lock is held until its `ready` commit, which may follow. */
  attach(req: AttachRequest): Promise<AttachOutcome> {
    return new Promise((resolve, reject) => {
      this.lock.run(this.key(req.containerId, req.ifname), async () => {
        const r = await this.attachLocked(req);
        resolve(r.outcome);
        if (r.recordReady) {
          await afterAnswer();
          r.recordReady();
        }
      }).catch(reject);
    });
  }

  private reserveAll(req: AttachRequest, bridge: string | undefined, hostIfname: string | undefined): { att: Attachment; allocated: Allocated[]; bound: BindingChange[] } | { existing: Attachment } {
    return this.store.write((tx) => {
      const prior = tx.getAttachment(req.containerId, req.ifname);
      if (prior) return { existing: prior };
      const subnets = req.subnets.length ? req.subnets : [this.defaults.subnet];
      // Each requested address goes to the subnet that contains it.
      const wanted = new Map<string, string>();
      for (const ipText of req.requestedIps) {
        const ip = tryParseIp(ipText.split('/')[0]!);
        if (!ip) throw new AddressUnavailableError(`requested address "${ipText}" is not an IP address`);
        const target = subnets.find((n) => { const s = tx.getSubnet(n); return s && cidrContains(parseCidr(s.cidr), ip); });
        if (!target) throw new AddressUnavailableError(`requested address ${formatIp(ip)} is outside the network's subnet(s) ${subnets.join(', ')}`);
        if (wanted.has(target)) throw new AddressUnavailableError(`two addresses requested in subnet "${target}" (${wanted.get(target)}, ${formatIp(ip)}); one interface gets one address per subnet`);
        wanted.set(target, formatIp(ip));
      }
      for (const pm of req.portMappings) {
        for (const other of tx.listAttachments()) {
          const clash = other.portMappings.find((x) => portsClash(x, pm));
          if (clash) throw new ConflictError(`host port ${pm.protocol}/${pm.hostPort} is already published by container ${other.containerId}`);
        }
      }
      const allocated: Allocated[] = [];
      const bound: BindingChange[] = [];
      for (const name of subnets) {
        const ip = wanted.get(name);
        allocated.push(this.ipam.allocate(tx, {
          subnet: name, identity: req.identity, containerId: req.containerId, ifname: req.ifname, network: req.network,
          ...(req.netns ? { netns: req.netns } : {}),
          ...(ip ? { requestedIp: ip } : {}),
          ...(req.pool ? { poolName: req.pool } : {}),
        }));
        const change = bridge ? this.host.bindSubnet(tx, name, bridge, req.network) : undefined;
        if (change) bound.push(change);
      }
      const ips: AttachmentIp[] = allocated.map((a) => ({
        subnet: a.subnet.name,
        address: `${a.allocation.ip}/${parseCidr(a.subnet.cidr).prefix}`,
        ...(a.subnet.gateway ? { gateway: a.subnet.gateway } : {}),
      }));
      const routes: CniRoute[] = [];
      for (const a of allocated) for (const rt of a.subnet.routes) routes.push({ dst: rt.dst, ...(rt.gw ? { gw: rt.gw } : {}) });
      const dns = mergeDns([...allocated.map(({ subnet: s }) => ({ nameservers: s.dns.nameservers, search: s.dns.search, options: s.dns.options, ...(s.dns.domain ? { domain: s.dns.domain } : {}) })), ...req.dns]);
      const idKey = identityKey(req.identity);
      const netnsId = netnsIdentity(req.netns);
      const base: Attachment = {
        containerId: req.containerId, ifname: req.ifname, network: req.network, plugin: req.plugin, mode: req.mode, state: 'creating',
        ...(req.netns ? { netns: req.netns } : {}), ...(netnsId ? { netnsId } : {}),
        ...(idKey ? { identity: idKey } : {}), tenant: req.identity.namespace, ips,
        ...(hostIfname !== undefined ? { hostIfname, bridge } : {}),
        ...(req.master ? { master: req.master } : {}),
        ...(req.mode !== 'ipam' ? { mtu: req.mtu ?? this.defaults.mtu } : {}),
        ipMasq: req.ipMasq, portMappings: req.portMappings, aliases: req.aliases, routes, dns, createdAt: this.now().toISOString(),
      };
      // weft-ipam touches no kernel state: its answer is known now, and one commit records it.
      const att: Attachment = req.mode === 'ipam' ? { ...base, state: 'ready', result: ipamResultOf(base) as unknown as Record<string, unknown> } : base;
      tx.putAttachment(att);
      return { att, allocated, bound };
    });
  }

  private async attachLocked(req: AttachRequest): Promise<{ outcome: AttachOutcome; recordReady?: () => void }> {
    const bridge = req.mode === 'bridge' ? (req.bridge ?? bridgeNameFor(req.network)) : undefined;
    const hostIfname = bridge !== undefined ? hostIfnameFor(req.containerId, req.ifname) : undefined;
    if (hostIfname !== undefined) this.preparing.add(hostIfname);
    try {
      return await this.attachPrepared(req, bridge, hostIfname);
    } finally {
      if (hostIfname !== undefined) this.preparing.delete(hostIfname);
    }
  }

  /** Host ends of veths an ADD in flight may have created before its record exists (the orphan sweep leaves them alone). */
  preparingPort(name: string): boolean {
    return this.preparing.has(name);
  }

  private async attachPrepared(req: AttachRequest, bridge: string | undefined, hostIfname: string | undefined): Promise<{ outcome: AttachOutcome; recordReady?: () => void }> {
    // The pair needs no address: its creation (~1.2 ms of kernel work, on another thread) overlaps with the allocation's commit.
    const prepared = bridge !== undefined && hostIfname !== undefined && req.netns !== undefined
      ? this.dp.prepareVeth?.({ netns: req.netns, ifname: req.ifname, hostIfname, bridge, mtu: req.mtu ?? this.defaults.mtu, hairpin: req.hairpin, ...(req.mac ? { mac: req.mac } : {}) })
      : undefined;
    const discard = (): Promise<void> => prepared?.discard().catch((e: unknown) => this.log.error('removing a veth prepared for a failed ADD failed', { hostIfname, err: toWeftError(e).message })) ?? Promise.resolve();
    let r: ReturnType<Attachments['reserveAll']>;
    try {
      r = this.reserveAll(req, bridge, hostIfname);
    } catch (e) {
      await discard();
      throw e;
    }
    if ('existing' in r) await discard();
    if ('existing' in r) {
      const e = r.existing;
      // A retried ADD for the same sandbox gets the same answer; anything else is the runtime's mistake.
      if (e.state === 'ready' && e.netns === req.netns && e.network === req.network && e.result) {
        return { outcome: req.mode === 'ipam' ? { kind: 'ipam', result: e.result as unknown as IpamResult } : { kind: 'main', result: e.result as unknown as CniResult } };
      }
      if (e.state === 'creating') throw new TryAgainError(`an ADD for container ${req.containerId} interface ${req.ifname} is already in progress`);
      throw new ConflictError(`container ${req.containerId} already has interface ${req.ifname} attached (network "${e.network}")`, { hint: 'the runtime must DEL before it ADDs the same interface again' });
    }
    const { att, allocated, bound } = r;
    if (att.state === 'ready') {
      this.changed(att, false);
      return { outcome: { kind: 'ipam', result: att.result as unknown as IpamResult } };
    }
    const subnets = allocated.map((a) => a.subnet);
    const cidrs = subnets.map((s) => s.cidr);
    let masqCounted = false;
    try {
      const gateways = subnets.map((s) => s.gateway).filter((g): g is string => !!g);
      const addresses = att.ips.map((i) => i.address);
      const routes = (att.routes ?? []).map((x) => ({ dst: x.dst, ...(x.gw ? { gw: x.gw } : {}) }));
      let macs: LinkMacs;
      if (req.mode === 'bridge') {
        // Start-up only enabled forwarding for the families that had subnets then; a later v6 subnet needs it too.
        await this.host.enableForwarding(subnets.map((s) => parseCidr(s.cidr).family));
        let { mac: bridgeMac } = await this.host.ensureBridge(bridge!);
        const veth = {
          netns: req.netns!, ifname: req.ifname, hostIfname: att.hostIfname!, bridge: bridge!, mtu: att.mtu!,
          ...(req.mac ? { mac: req.mac } : {}), addresses, gateways, routes, hairpin: req.hairpin,
        };
        let res;
        try {
          res = await this.dp.attachVeth(veth, prepared);
        } catch (e) {
          // The bridge was ensured from memory; if it vanished since, ensure it for real and try once more.
          if (!(e instanceof NotFoundError)) throw e;
          this.host.forgetBridge(bridge!);
          bridgeMac = (await this.host.ensureBridge(bridge!)).mac;
          res = await this.dp.attachVeth(veth);
        }
        macs = { container: res.containerMac, bridge: bridgeMac, ...(res.hostMac ? { host: res.hostMac } : {}) };
      } else {
        const res = await this.dp.attachMacvlan({
          netns: req.netns!, ifname: req.ifname, master: req.master!, mode: req.macvlanMode ?? 'bridge', mtu: att.mtu!,
          ...(req.mac ? { mac: req.mac } : {}), addresses, gateways, routes,
        });
        macs = { container: res.containerMac };
      }
      const result = mainResultOf(att, macs);
      const ready: Attachment = { ...att, state: 'ready', mac: macs.container, result: result as unknown as Record<string, unknown> };
      const outcome: AttachOutcome = { kind: 'main', result };
      // The NAT table changes only when a subnet starts being masqueraded or a port is published.
      const natChange = att.portMappings.length > 0 || this.host.natFailed || (att.ipMasq && !this.host.masquerading(cidrs));
      if (!natChange) return { outcome, recordReady: () => this.recordReady(ready, cidrs) };
      this.store.write((tx) => tx.putAttachment(ready));
      this.changed(ready, false);
      masqCounted = att.ipMasq;
      if (att.ipMasq) this.host.masqueradeChanged(cidrs, 1);
      await this.host.syncNat();
      return { outcome };
    } catch (e) {
      // A failure after the `ready` commit (the NAT sync) was already counted as a masquerade user: uncount it.
      if (masqCounted) this.host.masqueradeChanged(cidrs, -1);
      // Before the rollback removes the pair by name: a creation still running must not outlive it.
      await discard();
      await this.undo(att, allocated, bound);
      throw e;
    }
  }

  /** The `ready` commit after the answer (see the top of this file). */
  private recordReady(ready: Attachment, cidrs: readonly string[]): void {
    try {
      this.store.write((tx) => tx.putAttachment(ready));
    } catch (e) {
      this.log.error('the attachment could not be recorded as ready; the next reconcile completes it', { containerId: ready.containerId, ifname: ready.ifname, err: toWeftError(e).message });
      return;
    }
    this.changed(ready, false);
    // A DEL of the subnet's last other masquerading container since the check removed the rule without this one.
    if (ready.ipMasq && this.host.masqueradeChanged(cidrs, 1)) {
      void this.host.syncNat().catch((e: unknown) => this.log.error('NAT sync after an ADD failed', { err: toWeftError(e).message }));
    }
  }

  /** Rolls back a failed ADD; errors here are logged, the original error is what the runtime sees. */
  private async undo(att: Attachment, allocated: Allocated[], bound: readonly BindingChange[]): Promise<void> {
    try {
      await this.removeKernel(att);
    } catch (e) {
      // The interface may still carry the address: keep the attachment (as `creating`) and its
      // allocations, so the runtime's DEL, GC or the next start retries instead of handing the
      // address to someone else.
      this.log.error('rollback of kernel state failed; attachment kept for DEL to retry', { containerId: att.containerId, ifname: att.ifname, err: toWeftError(e).message });
      this.store.write((tx) => tx.putAttachment({ ...att, state: 'creating', abandoned: true }));
      return;
    }
    this.store.write((tx) => {
      for (const a of allocated) this.ipam.rollback(tx, a);
      tx.deleteAttachment(att.containerId, att.ifname);
      for (const b of bound) this.host.unbindSubnet(tx, b);
    });
    this.changed(att, true);
    // The bridge this ADD created, or the gateway it added to an existing one, goes too.
    if (att.bridge) {
      await this.host.settleBridge(att.bridge).catch((e: unknown) => this.log.error('rollback of the bridge failed', { bridge: att.bridge, err: toWeftError(e).message }));
    }
    if (att.ipMasq || att.portMappings.length) await this.host.syncNat().catch((e: unknown) => this.log.error('NAT resync after rollback failed', { err: toWeftError(e).message }));
  }

  private async removeKernel(att: Attachment, netnsOverride?: string): Promise<void> {
    const netns = netnsOverride ?? att.netns;
    // A netns path that now names another namespace (a reused /proc/PID) must not be touched.
    const sameNs = netns !== undefined && (!att.netnsId || netnsIdentity(netns) === att.netnsId) ? netns : undefined;
    if (att.mode === 'bridge') await this.dp.detachVeth({ ...(sameNs ? { netns: sameNs } : {}), ifname: att.ifname, hostIfname: att.hostIfname! });
    else if (att.mode === 'macvlan') await this.dp.detachMacvlan({ ...(sameNs ? { netns: sameNs } : {}), ifname: att.ifname });
  }

  /**
   * DEL: idempotent. An unknown attachment, a vanished netns or an empty
   * CNI_NETNS (containerd after the task exited) all succeed.
   */
  async detach(containerId: string, ifname: string, netns?: string, owner?: { network: string; plugin: 'weft' | 'weft-ipam' }): Promise<{ released: string[]; held: string[] } | undefined> {
    return this.lock.run(this.key(containerId, ifname), async () => {
      const att = this.store.read((tx) => tx.getAttachment(containerId, ifname));
      if (!att) return undefined;
      // The DEL that follows a refused ADD of *another* network for the same interface
      // name must not tear down the attachment that is really there.
      if (owner && (att.network !== owner.network || att.plugin !== owner.plugin)) {
        this.log.info('DEL for another network ignored', { containerId, ifname, attached: att.network, requested: owner.network, plugin: owner.plugin });
        return undefined;
      }
      return this.release(att, netns);
    });
  }

  /**
   * `rollback`: the attachment never became ready (an ADD interrupted by a crash), so
   * its addresses go back exactly as they were: a fresh one is freed even on a sticky
   * subnet, a reused held one is held again.
   */
  private async release(att: Attachment, netns?: string, rollback = false): Promise<{ released: string[]; held: string[] }> {
    await this.removeKernel(att, netns && netns === att.netns ? netns : att.netns);
    const out = this.store.write((tx) => {
      const released: string[] = [];
      const held: string[] = [];
      for (const ip of att.ips) {
        const addr = ip.address.split('/')[0]!;
        const r = rollback && att.state === 'creating' ? this.ipam.rollbackBound(tx, ip.subnet, addr, att.containerId) : this.ipam.releaseBound(tx, ip.subnet, addr, att.containerId);
        if (r === 'held') held.push(addr); else if (r === 'freed') released.push(addr);
      }
      tx.deleteAttachment(att.containerId, att.ifname);
      return { released, held };
    });
    if (att.state === 'ready') this.changed(att, true);
    const cidrs = this.store.read((tx) => att.ips.map((i) => tx.getSubnet(i.subnet)?.cidr).filter((c): c is string => !!c));
    const masqChanged = att.ipMasq && att.state === 'ready' && this.host.masqueradeChanged(cidrs, -1);
    if (masqChanged || att.portMappings.length || this.host.natFailed) await this.host.syncNat();
    return out;
  }

  /** CHECK: the attachment, its addresses and its interfaces are all still as ADD left them. */
  /**
   * `expectedMac`: the MAC of the interface in the runtime's prevResult. In a
   * chain a later plugin (tuning) may change it; the final result is what the
   * runtime expects, so it wins over the one weft recorded at ADD.
   */
  async check(containerId: string, ifname: string, netns: string | undefined, prevIps: readonly string[], expectedMac?: string): Promise<void> {
    const att = this.store.read((tx) => tx.getAttachment(containerId, ifname));
    if (!att) throw new UnknownContainerError(`weft has no attachment for container ${containerId} interface ${ifname}`);
    if (att.state !== 'ready') throw new TryAgainError(`the ADD of container ${containerId} interface ${ifname} has not finished`);
    const mine = att.ips.map((i) => i.address).sort();
    for (const p of prevIps) if (!mine.includes(p)) throw new CheckFailedError(`prevResult lists ${p}, but weft assigned ${mine.join(', ')} to ${ifname}`);
    this.store.read((tx) => {
      for (const ip of att.ips) {
        const a = tx.allocationAt(ip.subnet, ip.address.split('/')[0]!);
        if (!a || a.state !== 'bound' || a.containerId !== containerId) throw new CheckFailedError(`address ${ip.address} is no longer allocated to container ${containerId}`);
      }
    });
    if (att.mode === 'ipam') return;
    const ns = netns ?? att.netns!;
    if (!this.dp.isNetns(ns)) throw new InvalidEnvError(`CNI_NETNS ${ns} is not a network namespace`);
    const st = await this.dp.inspectContainerIface(ns, ifname);
    if (!st) throw new CheckFailedError(`interface ${ifname} is missing in ${ns}`);
    if (!st.up) throw new CheckFailedError(`interface ${ifname} in ${ns} is down`);
    for (const addr of mine) if (!st.addresses.includes(addr)) throw new CheckFailedError(`interface ${ifname} in ${ns} lacks address ${addr} (has ${st.addresses.join(', ') || 'none'})`);
    const mac = expectedMac ?? att.mac;
    if (mac && st.mac !== mac) throw new CheckFailedError(`interface ${ifname} has MAC ${st.mac}, expected ${mac}`);
    if (att.mode === 'bridge') {
      const h = await this.dp.hostLink(att.hostIfname!);
      if (!h) throw new CheckFailedError(`host interface ${att.hostIfname} of ${ifname} is missing`);
      if (h.master !== att.bridge) throw new CheckFailedError(`host interface ${att.hostIfname} is not attached to bridge ${att.bridge}`);
      if (!h.up) throw new CheckFailedError(`host interface ${att.hostIfname} is down`);
      const br = await this.dp.hostLink(att.bridge!);
      if (!br?.up) throw new CheckFailedError(`bridge ${att.bridge} is missing or down`);
    }
  }

  /**
   * GC (CNI 1.1) and the reconcile's sweep: releases every attachment of
   * `network` not in `valid`. Continues past errors and reports them all.
   */
  async gc(network: string | undefined, isValid: (a: Attachment) => boolean): Promise<{ released: Attachment[]; errors: string[] }> {
    const released: Attachment[] = [];
    const errors = await this.eachLocked((a) => (network === undefined || a.network === network) && !isValid(a), async (cur) => {
      await this.release(cur, undefined, false);
      released.push(cur);
    });
    return { released, errors };
  }

  /**
   * Runs `fn` on each attachment `pick` selects, under its lock and re-read
   * there (it may have changed while waiting), skipping it if no longer
   * picked. Continues past errors and returns them.
   */
  private async eachLocked(pick: (a: Attachment) => boolean, fn: (cur: Attachment) => Promise<void>): Promise<string[]> {
    const errors: string[] = [];
    for (const a of this.store.read((tx) => tx.listAttachments()).filter(pick)) {
      try {
        await this.lock.run(this.key(a.containerId, a.ifname), async () => {
          const cur = this.store.read((tx) => tx.getAttachment(a.containerId, a.ifname));
          if (cur && pick(cur)) await fn(cur);
        });
      } catch (e) {
        errors.push(`${a.containerId}/${a.ifname}: ${toWeftError(e).message}`);
      }
    }
    return errors;
  }

  /**
   * ADDs left `creating`: by a crash (the answer may have gone out, since
   * the `ready` commit follows it), a failed `ready` commit, or a failed
   * rollback. One whose kernel state is complete and that did not fail is
   * completed, any other rolled back. Each is judged under its lock, so an
   * ADD in flight is waited for, not judged.
   */
  async settleInterrupted(): Promise<{ completed: Attachment[]; rolledBack: Attachment[]; errors: string[] }> {
    const completed: Attachment[] = [];
    const rolledBack: Attachment[] = [];
    const errors = await this.eachLocked((a) => a.state === 'creating', async (cur) => {
      const macs = cur.abandoned ? undefined : await this.completeInKernel(cur);
      if (!macs) {
        await this.release(cur, undefined, true);
        rolledBack.push(cur);
        return;
      }
      const ready: Attachment = { ...cur, state: 'ready', mac: macs.container, result: mainResultOf(cur, macs) as unknown as Record<string, unknown> };
      this.store.write((tx) => tx.putAttachment(ready));
      this.changed(ready, false);
      // The NAT table is planned from ready records; the reconcile that called this rewrites it next.
      if (ready.ipMasq) this.host.masqueradeChanged(this.store.read((tx) => ready.ips.map((i) => tx.getSubnet(i.subnet)?.cidr).filter((c): c is string => !!c)), 1);
      completed.push(ready);
    });
    return { completed, rolledBack, errors };
  }

  /** The MACs of an interrupted ADD's links when the kernel has all of it (what its answer said); else undefined. */
  private async completeInKernel(att: Attachment): Promise<LinkMacs | undefined> {
    // Records of versions before the `ready` commit followed the answer carry no routes; their answers never went out.
    if (att.mode === 'ipam' || att.routes === undefined || !this.containerAlive(att)) return undefined;
    const st = await this.dp.inspectContainerIface(att.netns!, att.ifname);
    if (!st || !containerSideComplete({ addresses: att.ips.map((i) => i.address), routes: att.routes }, st)) return undefined;
    if (att.mode === 'macvlan') return { container: st.mac };
    const h = await this.dp.hostLink(att.hostIfname!);
    if (!h?.up || h.master !== att.bridge) return undefined;
    const br = await this.dp.hostLink(att.bridge!);
    if (!br) return undefined;
    return { container: st.mac, host: h.mac, bridge: br.mac };
  }

  /** True when the attachment's container still exists: its netns is the one recorded at ADD. */
  containerAlive(a: Attachment): boolean {
    if (!a.netns) return false;
    if (!this.dp.isNetns(a.netns)) return false;
    return !a.netnsId || netnsIdentity(a.netns) === a.netnsId;
  }
}
