/**
 * The parts of a plugin configuration the runtime fills in for a particular
 * container: `runtimeConfig` (capability arguments, CONVENTIONS.md) and
 * `args` (the `args.cni.*` conventions). Unknown keys here are tolerated,
 * unlike at the top level: they are written by the runtime, not the user,
 * and only for capabilities the configuration declared (libcni
 * injectRuntimeConfig), which parseCapabilities already restricts.
 */
import { UnsupportedFieldError } from '../errors.js';
import { type JsonObject, arr, at, bool, int, invalid, ipAddr, ipMaybePrefix, isObject, mac, obj, opt, str, strArray } from './json-check.js';
import { describeValue } from './syntax.js';

export interface PortMapping {
  readonly hostPort: number;
  readonly containerPort: number;
  /** Lower-cased; "tcp" when the runtime did not say. */
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  /** Host address to bind; absent means all. */
  readonly hostIP?: string;
}

export interface RuntimeDns {
  readonly servers: readonly string[];
  readonly searches: readonly string[];
  readonly options: readonly string[];
}

export interface RuntimeConfig {
  /** Requested addresses ("ip" or "ip/prefix"), `ips` capability. */
  readonly ips: readonly string[];
  /** Requested MAC, lower-cased, `mac` capability. */
  readonly mac?: string;
  readonly portMappings: readonly PortMapping[];
  readonly dns?: RuntimeDns;
  /** Extra DNS names for this container, `aliases` capability. */
  readonly aliases: readonly string[];
}

export interface ConfigArgs {
  /** `args.cni.ips`: requested addresses. */
  readonly ips: readonly string[];
  /** `args.cni.labels`: free-form key/value labels. */
  readonly labels: readonly { readonly key: string; readonly value: string }[];
  /** Every other key of `args` (and of `args.cni`), untouched. */
  readonly other: Readonly<JsonObject>;
}

/** Capabilities weft honours; declaring any other one as true is code 2. */
export const SUPPORTED_CAPABILITIES: readonly string[] = ['ips', 'mac', 'portMappings', 'dns', 'aliases'];

export const EMPTY_RUNTIME_CONFIG: RuntimeConfig = { ips: [], portMappings: [], aliases: [] };
export const EMPTY_ARGS: ConfigArgs = { ips: [], labels: [], other: {} };

/**
 * `capabilities` (an object of booleans). A capability weft cannot honour
 * would otherwise be silently ignored (e.g. `bandwidth`), so it is refused.
 */
export function parseCapabilities(v: unknown, path: string): Readonly<Record<string, boolean>> {
  const o = obj(v, path);
  const out: Record<string, boolean> = {};
  for (const [key, value] of Object.entries(o)) {
    out[key] = bool(value, at(path, key));
    if (value === true && !SUPPORTED_CAPABILITIES.includes(key)) {
      throw new UnsupportedFieldError(`unsupported capability "${at(path, key)}" with value ${describeValue(value)}: weft supports ${SUPPORTED_CAPABILITIES.join(', ')}`);
    }
  }
  return out;
}

function portMapping(v: unknown, path: string): PortMapping {
  const o = obj(v, path);
  const hostPort = int(o['hostPort'], at(path, 'hostPort'), 1, 65535);
  const containerPort = int(o['containerPort'], at(path, 'containerPort'), 1, 65535);
  const proto = (opt(o, 'protocol', path, str) ?? 'tcp').toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') {
    throw new UnsupportedFieldError(`unsupported value ${describeValue(o['protocol'])} for "${at(path, 'protocol')}": expected tcp, udp or sctp`);
  }
  // Runtimes send "" for "all addresses".
  const hostIP = o['hostIP'] === '' ? undefined : opt(o, 'hostIP', path, ipAddr);
  return { hostPort, containerPort, protocol: proto, ...(hostIP === undefined ? {} : { hostIP }) };
}

function runtimeDns(v: unknown, path: string): RuntimeDns {
  const o = obj(v, path);
  return {
    servers: opt(o, 'servers', path, (x, p) => arr(x, p).map((s, i) => ipAddr(s, at(p, i)))) ?? [],
    searches: opt(o, 'searches', path, strArray) ?? [],
    options: opt(o, 'options', path, strArray) ?? [],
  };
}

/**
 * `aliases`: CONVENTIONS.md passes a map of network name to names (podman:
 * `{"<network>": ["<short id>", ...]}`); a plain array is accepted too.
 * From the map only this network's entry counts.
 */
function aliasesOf(v: unknown, path: string, network: string | undefined): string[] {
  if (Array.isArray(v)) return strArray(v, path);
  if (!isObject(v)) invalid(path, 'an object of network name to names (or an array of names)', v);
  const m = v;
  const out: string[] = [];
  for (const [net, names] of Object.entries(m)) {
    const list = strArray(names, at(path, net));
    if (network === undefined || net === network) out.push(...list);
  }
  return out;
}

export function parseRuntimeConfig(v: unknown, path: string, network?: string): RuntimeConfig {
  const o = obj(v, path);
  const ips = opt(o, 'ips', path, (x, p) => arr(x, p).map((s, i) => ipMaybePrefix(s, at(p, i)))) ?? [];
  const m = o['mac'] === '' ? undefined : opt(o, 'mac', path, mac);
  const portMappings = opt(o, 'portMappings', path, (x, p) => arr(x, p).map((pm, i) => portMapping(pm, at(p, i)))) ?? [];
  const dns = opt(o, 'dns', path, runtimeDns);
  const aliases = opt(o, 'aliases', path, (x, p) => aliasesOf(x, p, network)) ?? [];
  return { ips, ...(m === undefined ? {} : { mac: m }), portMappings, ...(dns === undefined ? {} : { dns }), aliases };
}

function label(v: unknown, path: string): { key: string; value: string } {
  const o = obj(v, path);
  return { key: str(o['key'], at(path, 'key')), value: str(o['value'], at(path, 'value')) };
}

export function parseConfigArgs(v: unknown, path: string): ConfigArgs {
  const o = obj(v, path);
  const { cni, ...rest } = o;
  if (cni === undefined) return { ips: [], labels: [], other: rest };
  const c = obj(cni, at(path, 'cni'));
  const cniPath = at(path, 'cni');
  const ips = opt(c, 'ips', cniPath, (x, p) => arr(x, p).map((s, i) => ipMaybePrefix(s, at(p, i)))) ?? [];
  const labels = opt(c, 'labels', cniPath, (x, p) => arr(x, p).map((l, i) => label(l, at(p, i)))) ?? [];
  const cniRest = Object.fromEntries(Object.entries(c).filter(([k]) => k !== 'ips' && k !== 'labels'));
  const other: JsonObject = { ...rest };
  if (Object.keys(cniRest).length > 0) other['cni'] = cniRest;
  return { ips, labels, other };
}
