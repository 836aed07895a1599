/**
 * The CNI verbs as the daemon serves them: validates the request (the HTTP
 * body is untrusted even though our own plugin sent it), negotiates the
 * version, turns the config into an AttachRequest, and renders the result in
 * the config's version.
 */
import type { CniCommand, CniRequest, PluginKind } from '../core/cni/protocol.js';
import { parseCniArgs } from '../core/cni/args.js';
import { type WeftIpamConf, type WeftNetConf, parseIpamConfig, parseWeftConfig } from '../core/cni/config.js';
import { type GcAttachment, hasGcAttachments, parseGcAttachments } from '../core/cni/gc-attachments.js';
import { validateEnv, type CniEnv } from '../core/cni/env.js';
import { renderIpamResult, renderResult, type CniDns, type CniResult } from '../core/cni/result.js';
import { requireVersionFor } from '../core/cni/versions.js';
import { BadRequestError, InvalidConfigError, InvalidEnvError, NotAvailableError, UnsupportedFieldError, DegradedError } from '../core/errors.js';
import type { Attachment } from '../core/ipam/attachment.js';
import { parseIp } from '../core/ip/addr.js';
import type { KernelFeatures } from '../core/dataplane/types.js';
import { type AttachRequest, type Attachments, netnsIdentity } from './attachments.js';
import type { CniHandler } from './api.js';
import type { IpamService } from './ipam-service.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'];

interface Parsed {
  readonly kind: PluginKind;
  readonly command: CniCommand;
  readonly env: CniEnv;
  readonly conf: WeftNetConf | WeftIpamConf;
  /** GC only: the attachments the runtime still has. */
  readonly valid?: readonly GcAttachment[];
}

function toEnv(command: CniCommand, e: CniRequest['env']): CniEnv {
  const raw: Record<string, string | undefined> = {
    CNI_COMMAND: command, CNI_CONTAINERID: e.containerId, CNI_NETNS: e.netns, CNI_IFNAME: e.ifname, CNI_ARGS: e.args, CNI_PATH: e.path,
  };
  for (const [k, v] of Object.entries(raw)) if (v !== undefined && typeof v !== 'string') throw new InvalidEnvError(`${k} must be a string`);
  return validateEnv(raw);
}

function dnsFromRuntime(conf: WeftNetConf | WeftIpamConf): CniDns[] {
  const out: CniDns[] = [];
  if ('dns' in conf && conf.dns) out.push(conf.dns);
  const r = conf.runtimeConfig.dns;
  if (r) out.push({ nameservers: r.servers, search: r.searches, options: r.options });
  return out;
}

function withoutContainerArgs(config: unknown): unknown {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return config;
  const { runtimeConfig: _r, args: _a, ...rest } = config as Record<string, unknown>;
  return rest;
}

export class CniService implements CniHandler {
  /** `dev:inode` of the router's own netns (it never changes), read at the first ADD. */
  private ownNetns: string | undefined;

  constructor(
    private readonly attachments: Attachments,
    private readonly ipam: IpamService,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly features: () => KernelFeatures | undefined,
    private readonly hostLinkExists: (name: string) => Promise<boolean>,
    private readonly defaultSubnet: string,
    /** Cluster IPAM: turns "no space here" / "address owned elsewhere" into a wait for a grant; true when a retry may succeed. */
    private readonly resolveSpace?: (e: unknown) => Promise<boolean>,
    /** Cluster IPAM: why allocation cannot proceed now (CNI STATUS). */
    private readonly clusterProblem?: () => string | undefined,
  ) {}

  private parse(body: unknown): Parsed {
    if (typeof body !== 'object' || body === null) throw new BadRequestError('CNI request must be a JSON object');
    const b = body as Partial<CniRequest>;
    if (b.plugin !== 'weft' && b.plugin !== 'weft-ipam') throw new BadRequestError('CNI request "plugin" must be "weft" or "weft-ipam"');
    if (!COMMANDS.includes(b.command as CniCommand)) throw new InvalidEnvError(`CNI_COMMAND "${String(b.command)}" is not one of ${COMMANDS.join(', ')}`);
    if (typeof b.env !== 'object' || b.env === null) throw new BadRequestError('CNI request "env" must be an object');
    const command = b.command as CniCommand;
    const env = toEnv(command, b.env);
    // DEL uses nothing of the per-container parts (runtimeConfig, args) and must not fail on them:
    // a runtime whose ADD was refused for a bad requested MAC or IP sends the same values with its DEL.
    const raw = command === 'DEL' ? withoutContainerArgs(b.config) : b.config;
    const conf = b.plugin === 'weft' ? parseWeftConfig(raw) : parseIpamConfig(raw);
    requireVersionFor(command, conf.resultVersion);
    const valid = command === 'GC' && hasGcAttachments(b.config) ? parseGcAttachments(b.config) : undefined;
    return { kind: b.plugin, command, env, conf, ...(valid ? { valid } : {}) };
  }

  async handle(body: unknown): Promise<unknown> {
    const started = process.hrtime.bigint();
    // Label values come from the request: keep them to a fixed set so metric series stay bounded.
    const rawCommand = (body as { command?: unknown } | null)?.command;
    const rawPlugin = (body as { plugin?: unknown } | null)?.plugin;
    const command = COMMANDS.includes(rawCommand as CniCommand) ? String(rawCommand) : 'invalid';
    const plugin = rawPlugin === 'weft' || rawPlugin === 'weft-ipam' ? rawPlugin : 'invalid';
    let outcome = 'ok';
    try {
      const p = this.parse(body);
      switch (p.command) {
        case 'ADD': return await this.add(p);
        case 'DEL': await this.del(p); return undefined;
        case 'CHECK': await this.check(p); return undefined;
        case 'GC': await this.gc(p); return undefined;
        case 'STATUS': await this.status(p); return undefined;
      }
    } catch (e) {
      outcome = (e as { code?: string }).code ?? 'INTERNAL';
      this.log.info('CNI request failed', { command, plugin, err: (e as Error).message, code: outcome });
      throw e;
    } finally {
      const secs = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics.cniRequests.inc({ command: String(command), plugin: String(plugin), outcome });
      this.metrics.cniDuration.observe({ command: String(command) }, secs);
    }
  }

  private attachRequest(p: Parsed): AttachRequest {
    const args = parseCniArgs(p.env.args);
    const c = p.conf;
    const requested = [...c.runtimeConfig.ips, ...args.ips, ...c.args.ips].map((s) => s.split('/')[0]!);
    const uniqueReq = [...new Set(requested.map((s) => { try { return parseIp(s) && s; } catch { return s; } }))];
    const identity = { namespace: args.k8sPodNamespace ?? 'default', ...(args.k8sPodName ? { name: args.k8sPodName } : {}) };
    const mac = c.runtimeConfig.mac ?? args.mac;
    const base = {
      plugin: p.kind, containerId: p.env.containerId!, ifname: p.env.ifname!, ...(p.env.netns ? { netns: p.env.netns } : {}),
      network: c.name, identity, subnets: c.subnets, ...(c.pool ? { pool: c.pool } : {}), requestedIps: uniqueReq,
      ...(mac ? { mac } : {}), aliases: c.runtimeConfig.aliases, dns: dnsFromRuntime(c),
    };
    if (p.kind === 'weft-ipam') return { ...base, mode: 'ipam', hairpin: false, ipMasq: false, portMappings: [] };
    const w = c as WeftNetConf;
    const pm = w.runtimeConfig.portMappings.map((x) => ({ hostPort: x.hostPort, containerPort: x.containerPort, protocol: x.protocol, ...(x.hostIP ? { hostIP: x.hostIP } : {}) }));
    if (w.mode === 'macvlan') {
      if (pm.length) throw new UnsupportedFieldError('runtimeConfig.portMappings: port publishing needs mode "bridge" (macvlan traffic bypasses the host)');
      return { ...base, mode: 'macvlan', master: w.master, macvlanMode: w.macvlanMode, hairpin: false, ...(w.mtu ? { mtu: w.mtu } : {}), ipMasq: w.ipMasq, portMappings: [] };
    }
    return { ...base, mode: 'bridge', ...(w.bridge ? { bridge: w.bridge } : {}), hairpin: w.hairpinMode, ...(w.mtu ? { mtu: w.mtu } : {}), ipMasq: w.ipMasq, portMappings: pm };
  }

  private async add(p: Parsed): Promise<unknown> {
    if (!p.env.netns) throw new InvalidEnvError('CNI_NETNS is required for ADD');
    const req = this.attachRequest(p);
    if (req.mode !== 'ipam') {
      // libcni's ErrInvalidNetNS: the container end, its address and its default route would land on the host itself.
      this.ownNetns ??= netnsIdentity('/proc/self/ns/net');
      if (this.ownNetns !== undefined && netnsIdentity(p.env.netns) === this.ownNetns) {
        throw new InvalidEnvError(`CNI_NETNS "${p.env.netns}" is the weft router's own network namespace, not a container's`, { hint: 'the runtime must pass the container\'s netns' });
      }
      const f = this.features();
      if (req.mode === 'macvlan' && f && !f.macvlan) throw new NotAvailableError('this kernel has no macvlan support (module macvlan missing)');
      if (req.mode === 'bridge' && f && (!f.bridge || !f.veth)) throw new NotAvailableError('this kernel lacks bridge or veth support');
    }
    let out;
    try {
      out = await this.attachments.attach(req);
    } catch (e) {
      // A failed ADD rolled back completely, so trying again after the ring granted space is safe.
      if (!this.resolveSpace || !(await this.resolveSpace(e))) throw e;
      this.log.info('ADD retried after the IPAM ring granted space', { containerId: req.containerId });
      out = await this.attachments.attach(req);
    }
    // A main plugin first in a chain may still be handed a prevResult; weft's own result replaces it.
    return out.kind === 'main' ? renderResult(out.result, p.conf.resultVersion) : renderIpamResult(out.result, p.conf.resultVersion);
  }

  private async del(p: Parsed): Promise<void> {
    const r = await this.attachments.detach(p.env.containerId!, p.env.ifname!, p.env.netns, { network: p.conf.name, plugin: p.kind });
    if (r) this.log.info('detached', { containerId: p.env.containerId, ifname: p.env.ifname, released: r.released, held: r.held });
  }

  private async check(p: Parsed): Promise<void> {
    if (!p.conf.prevResult) throw new InvalidConfigError('prevResult: CHECK needs the cached ADD result in "prevResult"');
    const prev: CniResult = p.conf.prevResult;
    if ('disableCheck' in p.conf && p.conf.disableCheck) return;
    // IPs of the interface this attachment put in the sandbox (or all of them for an IPAM result).
    const sandboxIdx = prev.interfaces.findIndex((i) => i.name === p.env.ifname && i.sandbox !== undefined);
    const ips = prev.ips.filter((i) => p.kind === 'weft-ipam' || i.interface === undefined || i.interface === sandboxIdx).map((i) => i.address);
    const prevMac = sandboxIdx >= 0 ? prev.interfaces[sandboxIdx]!.mac?.toLowerCase() : undefined;
    await this.attachments.check(p.env.containerId!, p.env.ifname!, p.env.netns, p.kind === 'weft-ipam' ? [] : ips, p.kind === 'weft-ipam' ? undefined : prevMac);
  }

  private async gc(p: Parsed): Promise<void> {
    if ('disableGC' in p.conf && p.conf.disableGC) return;
    // No list at all would mean "nothing is valid": refuse rather than wipe the network.
    if (!p.valid) throw new InvalidConfigError('GC needs "cni.dev/valid-attachments" (or the older "cni.dev/attachments") in the configuration');
    const valid = p.valid;
    const keep = new Set(valid.map((v) => `${v.containerID}/${v.ifname}`));
    const r = await this.attachments.gc(p.conf.name, (a: Attachment) => keep.has(`${a.containerId}/${a.ifname}`) || a.state === 'creating');
    this.log.info('GC', { network: p.conf.name, released: r.released.map((a) => `${a.containerId}/${a.ifname}`), errors: r.errors });
    if (r.errors.length) throw new DegradedError(`GC released ${r.released.length} attachment(s) but failed on ${r.errors.length}`, { details: r.errors.join('; ') });
  }

  private async status(p: Parsed): Promise<void> {
    const f = this.features();
    if (!f) throw new NotAvailableError('the weft router is starting: kernel features not probed yet');
    if (p.kind === 'weft') {
      const w = p.conf as WeftNetConf;
      if (w.mode === 'macvlan') {
        if (!f.macvlan) throw new NotAvailableError('this kernel has no macvlan support');
        if (!(await this.hostLinkExists(w.master))) throw new NotAvailableError(`macvlan master interface ${w.master} does not exist`);
      } else if (!f.bridge || !f.veth) throw new NotAvailableError('this kernel lacks bridge or veth support');
    }
    const problem = this.clusterProblem?.();
    if (problem) throw new NotAvailableError(problem);
    const names = p.conf.subnets.length ? p.conf.subnets : [this.defaultSubnet];
    for (const n of names) {
      let u;
      try { u = this.ipam.subnetUsage(n); } catch { throw new NotAvailableError(`subnet "${n}" is not defined`, { hint: 'create it with `weft subnet create`' }); }
      if (u.capacity === '0' && u.subnet.quota === undefined) throw new NotAvailableError(`subnet "${n}" has no free address`);
      if (u.subnet.quota !== undefined && u.inUse >= u.subnet.quota) throw new NotAvailableError(`subnet "${n}" is at its quota of ${u.subnet.quota}`);
    }
  }
}

