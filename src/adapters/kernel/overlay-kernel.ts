/**
 * The overlay data plane on a real kernel (docs/overlay.md): reads weft's
 * VXLAN devices and their FDB/neighbour entries, diffs them against a
 * desired OverlayState (src/core/dataplane/overlay-diff.ts) and applies the
 * difference with one `ip -force -batch -`, one `bridge -force -batch -` and,
 * when the loop guard changes, one nft transaction.
 *
 * Runs in the daemon's netns (which is the host's), or in `hostNetns` when
 * given (tests drive a "host" namespace from outside). Never touches links
 * that do not carry weft's `weft-vxlan:` alias, nor nftables tables other
 * than `bridge weft`.
 */
import { performance } from 'node:perf_hooks';
import { parseJsonDocuments } from '../../core/dataplane/ip-json.js';
import { type OverlayChangeCounts, countChanges, diffOverlay, keepNetworksAsTheyAre, restrictToNetworks } from '../../core/dataplane/overlay-diff.js';
import { type OverlayFilterCounters, OVERLAY_NFT_FAMILY, OVERLAY_NFT_TABLE, parseOverlayFilterCounters, parseOverlayFilterListing, renderOverlayFilter } from '../../core/dataplane/overlay-filter.js';
import { parseVxlanAlias } from '../../core/dataplane/names.js';
import { type OverlayLinkInfo, parseOverlayFdb, parseOverlayLinks, parseOverlayNeigh } from '../../core/dataplane/overlay-parse.js';
import { planOverlay } from '../../core/dataplane/overlay-plan.js';
import { renderOverlayChanges } from '../../core/dataplane/overlay-render.js';
import type { PathMtuTarget } from '../../core/dataplane/overlay-mtu.js';
import {
  EMPTY_OVERLAY_STATE,
  type FdbEntry,
  type MasterFdbEntry,
  type NeighEntry,
  type OverlayFeatures,
  type OverlayInput,
  type OverlayPlan,
  type OverlayState,
  type PathMtuResult,
  type VxlanDevice,
} from '../../core/dataplane/overlay-types.js';
import { FeatureUnavailableError, InternalError, InvalidConfigError, KernelError, OverlayApplyError, VxlanUnavailableError } from '../../core/errors.js';
import { type CommandResult, formatCommand, inNetns, runCommand } from './exec.js';
import { isNetns } from './netns.js';
import { NftRunner } from './nft.js';
import { checkPathMtu } from './overlay-mtu-probe.js';
import { elapsedMs as ms } from './elapsed.js';
import { KeyedSerializer } from './serial.js';

type Fields = Record<string, unknown>;

/** The subset of the daemon's Logger this adapter uses (structural). */
export interface OverlayLogger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

export interface KernelOverlayOptions {
  /** Netns path that plays "host"; undefined = the process's own netns (the daemon). */
  readonly hostNetns?: string;
  /** Per-command timeout; default 30 s. */
  readonly timeoutMs?: number;
}

export interface OverlayReadResult {
  readonly state: OverlayState;
  /** Every link of the netns by name (to find bridges and name clashes). */
  readonly links: ReadonlyMap<string, OverlayLinkInfo>;
  /** Packet counters of the loop guard (relayed frames, drops). */
  readonly counters: OverlayFilterCounters;
}

export interface OverlaySkip {
  readonly network: string;
  readonly reason: string;
}

export interface OverlayBatchFailure {
  readonly line: string;
  readonly error: string;
}

export interface OverlayApplyReport {
  /** Changes made, by kind, over all passes. */
  readonly changes: OverlayChangeCounts;
  readonly ipLines: number;
  readonly bridgeLines: number;
  readonly nftRuns: number;
  /** 1, or 2 when the first pass had failures and the state was read and diffed again. */
  readonly passes: number;
  /** Networks left alone this time (bridge missing, device name taken by a link weft does not own). */
  readonly skipped: readonly OverlaySkip[];
  /** Failures of the last pass (empty when converged). */
  readonly failures: readonly OverlayBatchFailure[];
  readonly ms: number;
  /** Where the time went (ms, all passes): reading the state, nft, the ip batch, the bridge batch. */
  readonly timings: { readonly read: number; readonly nft: number; readonly ip: number; readonly bridge: number };
}

export interface OverlaySyncResult {
  readonly plan: OverlayPlan;
  readonly report: OverlayApplyReport;
}

/** What the daemon needs from the overlay data plane. */
export interface OverlayDataPlane {
  /** Kernel support for VXLAN and for the relay loop guard (nftables bridge family). Cached after the first call. */
  probe(): Promise<OverlayFeatures>;
  /** weft's overlay state as the kernel has it. */
  read(): Promise<OverlayReadResult>;
  /**
   * Makes the kernel hold exactly `desired` (weft's devices and entries; a
   * weft device absent from `desired` is deleted). Idempotent.
   * @throws VxlanUnavailableError when `desired` has devices and the kernel has no VXLAN
   * @throws OverlayApplyError when changes still fail after a second pass (the rest is applied)
   */
  apply(desired: OverlayState): Promise<OverlayApplyReport>;
  /** planOverlay (relaying on when asked for and the kernel supports the loop guard) + apply. */
  sync(input: OverlayInput, opts?: { relay?: boolean }): Promise<OverlaySyncResult>;
  /** Removes one network's devices (and their entries); other networks are left as they are. */
  removeNetwork(network: string): Promise<OverlayApplyReport>;
  /** Removes every weft VXLAN device and the `bridge weft` table. */
  removeAll(): Promise<OverlayApplyReport>;
  /** Full-size DF pings over the underlay, one result per target. */
  checkPathMtu(targets: readonly PathMtuTarget[]): Promise<PathMtuResult[]>;
}


/**
 * (line, reason) for every failed line of a `-force -batch` run: ip(8) and
 * bridge(8) print the reason, then "Command failed -:N".
 */
export function batchFailures(stderr: string, lines: readonly string[]): OverlayBatchFailure[] {
  const out: OverlayBatchFailure[] = [];
  let reason = '';
  for (const raw of stderr.split('\n')) {
    const l = raw.trim();
    const m = /^Command failed -:(\d+)$/.exec(l);
    if (m) {
      out.push({ line: lines[Number(m[1]) - 1] ?? `line ${m[1]}`, error: reason || 'failed' });
      reason = '';
    } else if (l !== '') reason = reason === '' ? l : `${reason}; ${l}`;
  }
  return out;
}

export class KernelOverlay implements OverlayDataPlane {
  private readonly log: OverlayLogger;
  private readonly hostNetns: string | undefined;
  private readonly timeoutMs: number | undefined;
  private readonly nft: NftRunner;
  private readonly serial = new KeyedSerializer();
  private features: Promise<OverlayFeatures> | undefined;

  constructor(log: OverlayLogger, opts: KernelOverlayOptions = {}) {
    this.log = log;
    this.hostNetns = opts.hostNetns;
    this.timeoutMs = opts.timeoutMs;
    if (this.hostNetns !== undefined && !isNetns(this.hostNetns)) {
      // Refuse rather than fall back to our own netns: that may be the machine's root netns.
      throw new InternalError(`hostNetns ${this.hostNetns} is not a network namespace`);
    }
    this.nft = new NftRunner({ ...(this.hostNetns !== undefined ? { netns: this.hostNetns } : {}), ...(this.timeoutMs !== undefined ? { timeoutMs: this.timeoutMs } : {}) });
  }

  // ---- running the tools ----

  private async tool(cmd: 'ip' | 'bridge', args: readonly string[], input?: string): Promise<CommandResult & { command: string }> {
    const w = inNetns(this.hostNetns, cmd, args);
    const r = await runCommand(w.cmd, w.args, { ...(input !== undefined ? { input } : {}), ...(this.timeoutMs !== undefined ? { timeoutMs: this.timeoutMs } : {}) });
    return { ...r, command: formatCommand(w.cmd, w.args) };
  }

  /** A batch of show commands with JSON output; undefined when a line failed (a device vanished meanwhile). */
  private async showBatch(cmd: 'ip' | 'bridge', lines: readonly string[]): Promise<unknown[] | undefined> {
    if (lines.length === 0) return [];
    const r = await this.tool(cmd, ['-j', '-batch', '-'], lines.join('\n') + '\n');
    if (r.code !== 0) return undefined;
    const docs = parseJsonDocuments(r.stdout);
    return docs.length === lines.length ? docs : undefined;
  }

  // ---- features ----

  probe(): Promise<OverlayFeatures> {
    this.features ??= this.probeNow().catch((e: unknown) => {
      this.features = undefined;
      throw e;
    });
    return this.features;
  }

  private async probeNow(): Promise<OverlayFeatures> {
    const t0 = performance.now();
    const reasons: { vxlan?: string; bridgeNft?: string } = {};
    // Everything in a throwaway netns (unshare --net): it vanishes with the process.
    const lines = [
      'link add wpu type veth peer name wpv',
      'link set wpu up',
      'addr add 198.51.100.1/24 dev wpu',
      'link add wpb type bridge',
      'link add wpx type vxlan id 42 local 198.51.100.1 dev wpu dstport 4789 nolearning proxy',
      'link set dev wpx master wpb',
      'link set dev wpx type bridge_slave hairpin off learning off flood off mcast_flood on bcast_flood on',
    ];
    const r = await runCommand('unshare', ['--net', '--', 'ip', '-force', '-batch', '-'], { input: lines.join('\n') + '\n', timeoutMs: this.timeoutMs ?? 10_000 });
    if (/^unshare: failed to execute ip/m.test(r.stderr)) throw new FeatureUnavailableError('ip is not installed (or not on PATH)', { hint: 'install the iproute2 package' });
    if (r.code !== 0 && /^unshare: /m.test(r.stderr)) {
      throw new KernelError(`cannot create a scratch network namespace to probe the kernel: ${r.stderr.trim()}`, { hint: 'weft needs CAP_SYS_ADMIN and CAP_NET_ADMIN' });
    }
    const failures = batchFailures(r.stderr, lines);
    // Every line builds the VXLAN port as weft uses it; the first failure is the reason.
    const vxFail = failures[0];
    if (vxFail !== undefined) reasons.vxlan = `${vxFail.line}: ${vxFail.error}`;

    const fake = ['wpx', 'wpr'].map((name, i): VxlanDevice => ({
      name, network: 'probe', role: i === 0 ? 'data' : 'relay', vni: 42 + i, port: 4789, local: null, dev: null,
      learning: false, proxy: true, mtu: 1450, master: null, up: true, portFlags: null,
    }));
    const script = renderOverlayFilter(fake)!.script;
    try {
      const n = await runCommand('unshare', ['--net', '--', 'nft', '-f', '-'], { input: script, timeoutMs: this.timeoutMs ?? 10_000 });
      if (n.code !== 0) reasons.bridgeNft = /failed to execute/.test(n.stderr) ? 'nft is not installed' : n.stderr.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'failed';
    } catch (e) {
      if (!(e instanceof FeatureUnavailableError)) throw e;
      reasons.bridgeNft = e.message;
    }
    const features: OverlayFeatures = { vxlan: reasons.vxlan === undefined, bridgeNft: reasons.bridgeNft === undefined, reasons };
    this.log.info('overlay features probed', { vxlan: features.vxlan, bridgeNft: features.bridgeNft, reasons, ms: ms(t0) });
    return features;
  }

  private async requireVxlan(): Promise<void> {
    const f = await this.probe();
    if (!f.vxlan) {
      throw new VxlanUnavailableError(`this kernel cannot create the VXLAN devices of the overlay: ${f.reasons.vxlan ?? 'unknown reason'}`, {
        hint: 'load the vxlan module (modprobe vxlan) or run weft with CAP_NET_ADMIN; containers on other hosts are unreachable until then',
      });
    }
  }

  // ---- reading ----

  read(): Promise<OverlayReadResult> {
    return this.readNow();
  }

  private async readNow(): Promise<OverlayReadResult> {
    for (let attempt = 0; ; attempt++) {
      const r = await this.tool('ip', ['-j', '-d', 'link', 'show']);
      if (r.code !== 0) throw new KernelError(`ip: cannot list links: ${r.stderr.trim()}`, { details: r.command });
      const parsed = parseOverlayLinks(parseJsonDocuments(r.stdout)[0] ?? []);
      const names = parsed.devices.map((d) => d.name);
      const [neighDocs, fdbDocs, table] = await Promise.all([
        this.showBatch('ip', names.map((n) => `neigh show dev ${n}`)),
        this.showBatch('bridge', names.map((n) => `fdb show dev ${n}`)),
        this.nft.listTable(OVERLAY_NFT_FAMILY, OVERLAY_NFT_TABLE).catch((e: unknown) => {
          if (e instanceof FeatureUnavailableError) return undefined;
          throw e;
        }),
      ]);
      if (neighDocs === undefined || fdbDocs === undefined) {
        // A device went away between the link listing and the entry listing: read again.
        if (attempt < 3) continue;
        throw new KernelError('the overlay devices kept changing while being read');
      }
      const fdb: FdbEntry[] = [];
      const masterFdb: MasterFdbEntry[] = [];
      const neigh: NeighEntry[] = [];
      names.forEach((n, i) => {
        const f = parseOverlayFdb(n, fdbDocs[i]);
        fdb.push(...f.fdb);
        masterFdb.push(...f.masterFdb);
        neigh.push(...parseOverlayNeigh(n, neighDocs[i]));
      });
      return {
        state: { devices: parsed.devices, fdb, masterFdb, neigh, filter: parseOverlayFilterListing(table) },
        links: parsed.links,
        counters: parseOverlayFilterCounters(table),
      };
    }
  }

  // ---- applying ----

  apply(desired: OverlayState): Promise<OverlayApplyReport> {
    return this.serial.run('overlay', () => this.applyNow(desired));
  }

  async sync(input: OverlayInput, opts: { relay?: boolean } = {}): Promise<OverlaySyncResult> {
    const f = await this.probe();
    if (!f.vxlan && input.networks.length > 0) await this.requireVxlan();
    const plan = planOverlay(input, { relay: f.bridgeNft && (opts.relay ?? true) });
    if (plan.notes.length > 0) this.log.debug('overlay plan notes', { notes: plan.notes.slice(0, 20), count: plan.notes.length });
    const report = await this.apply(plan.desired);
    return { plan, report };
  }

  removeNetwork(network: string): Promise<OverlayApplyReport> {
    return this.serial.run('overlay', async () => {
      const actual = await this.readNow();
      return this.applyNow(restrictToNetworks(actual.state, (n) => n !== network));
    });
  }

  removeAll(): Promise<OverlayApplyReport> {
    return this.apply(EMPTY_OVERLAY_STATE);
  }

  /** Networks that cannot be programmed now: bridge missing, or a device name held by a link weft does not own. */
  private blocked(desired: OverlayState, links: ReadonlyMap<string, OverlayLinkInfo>): OverlaySkip[] {
    const out = new Map<string, string>();
    for (const d of desired.devices) {
      if (out.has(d.network)) continue;
      const l = links.get(d.name);
      if (l !== undefined && parseVxlanAlias(l.alias) === undefined) {
        out.set(d.network, `link "${d.name}" exists and is not weft's (${l.kind ?? 'unknown kind'}); weft will not modify it`);
      } else if (d.master !== null && links.get(d.master)?.kind !== 'bridge') {
        out.set(d.network, `bridge "${d.master}" does not exist`);
      }
    }
    return [...out].map(([network, reason]) => ({ network, reason }));
  }

  private async applyNow(desired: OverlayState): Promise<OverlayApplyReport> {
    const t0 = performance.now();
    if (desired.devices.length > 0) await this.requireVxlan();
    const total: OverlayChangeCounts = {};
    let ipLines = 0;
    let bridgeLines = 0;
    let nftRuns = 0;
    let failures: OverlayBatchFailure[] = [];
    let skipped: OverlaySkip[] = [];
    let passes = 0;
    const timings = { read: 0, nft: 0, ip: 0, bridge: 0 };
    const timed = async <T>(k: keyof typeof timings, fn: () => Promise<T>): Promise<T> => {
      const t = performance.now();
      try {
        return await fn();
      } finally {
        timings[k] += ms(t);
      }
    };
    for (let pass = 1; pass <= 2; pass++) {
      passes = pass;
      const actual = await timed('read', () => this.readNow());
      const underlays = new Set(desired.devices.map((d) => d.dev).filter((d): d is string => d !== null));
      for (const u of underlays) {
        if (!actual.links.has(u)) throw new InvalidConfigError(`underlay device "${u}" does not exist`, { hint: 'the overlay needs the interface that connects the hosts (--advertise-addr / underlay dev)' });
      }
      skipped = this.blocked(desired, actual.links);
      const skip = new Set(skipped.map((s) => s.network));
      // A skipped network stays exactly as it is (a bridge being re-created must not cost
      // the entries), and the loop guard keeps covering its devices.
      const want = keepNetworksAsTheyAre(desired, actual.state, skip);
      const changes = diffOverlay(want, actual.state);
      failures = [];
      if (changes.length === 0) break;
      for (const [k, v] of Object.entries(countChanges(changes))) total[k as keyof OverlayChangeCounts] = (total[k as keyof OverlayChangeCounts] ?? 0) + v;
      const r = renderOverlayChanges(changes);
      ipLines += r.ip.length;
      bridgeLines += r.bridge.length;
      if (r.nftBefore !== undefined) {
        nftRuns++;
        await timed('nft', () => this.runNft(r.nftBefore!, failures));
        // No relay device may carry traffic without the loop guard: change nothing else.
        if (failures.length > 0) break;
      }
      if (r.ip.length > 0) failures.push(...(await timed('ip', () => this.runBatch('ip', r.ip))));
      if (r.bridge.length > 0) failures.push(...(await timed('bridge', () => this.runBatch('bridge', r.bridge))));
      if (r.nftAfter !== undefined) {
        nftRuns++;
        await timed('nft', () => this.runNft(r.nftAfter!, failures));
      }
      if (failures.length === 0) break;
      this.log.warn('overlay changes failed; reading the state again', { pass, failures: failures.slice(0, 10), count: failures.length });
    }
    for (const k of Object.keys(timings) as (keyof typeof timings)[]) timings[k] = Math.round(timings[k] * 100) / 100;
    const report: OverlayApplyReport = { changes: total, ipLines, bridgeLines, nftRuns, passes, skipped, failures, ms: ms(t0), timings };
    for (const s of skipped) this.log.warn('overlay network skipped', { network: s.network, reason: s.reason });
    if (failures.length > 0) {
      throw new OverlayApplyError(`${failures.length} overlay change(s) failed: ${failures[0]!.line}: ${failures[0]!.error}`, report, {
        details: failures.slice(0, 20).map((f) => `${f.line}: ${f.error}`).join('\n'),
      });
    }
    if (ipLines + bridgeLines + nftRuns > 0) this.log.info('overlay applied', { changes: total, ipLines, bridgeLines, nftRuns, passes, ms: report.ms, timings });
    else this.log.debug('overlay unchanged', { ms: report.ms });
    return report;
  }

  private async runBatch(cmd: 'ip' | 'bridge', lines: readonly string[]): Promise<OverlayBatchFailure[]> {
    const r = await this.tool(cmd, ['-force', '-batch', '-'], lines.join('\n') + '\n');
    if (r.code === 0) return [];
    const f = batchFailures(r.stderr, lines);
    // ip quits a batch on a failed neighbour request without naming the line.
    if (f.length === 0 || (cmd === 'ip' && !/Command failed -:\d+\s*$/.test(r.stderr.trim()))) {
      f.push({ line: `(${cmd} batch stopped early)`, error: r.stderr.trim().split('\n').pop() ?? `exit ${String(r.code)}` });
    }
    return f;
  }

  private async runNft(script: string, failures: OverlayBatchFailure[]): Promise<void> {
    try {
      await this.nft.apply(script);
    } catch (e) {
      failures.push({ line: `nft -f - (table ${OVERLAY_NFT_FAMILY} ${OVERLAY_NFT_TABLE})`, error: (e as Error).message });
    }
  }

  // ---- path MTU ----

  checkPathMtu(targets: readonly PathMtuTarget[]): Promise<PathMtuResult[]> {
    return checkPathMtu(targets, { ...(this.hostNetns !== undefined ? { netns: this.hostNetns } : {}) });
  }
}
