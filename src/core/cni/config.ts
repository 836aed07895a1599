/**
 * Validation of the network configuration the runtime passes on stdin, for
 * the two plugin types. The plugin executable forwards the decoded JSON
 * unvalidated; the daemon calls these.
 *
 * Error codes follow SPEC.md §5: a key weft does not know is code 2
 * (UnsupportedFieldError, message names the key and its value) — silently
 * ignoring a misspelt `ipMasq` would give the user a network that quietly
 * does something else; a known key with a wrong value is code 7
 * (InvalidConfigError, message names the JSON path); an unusable cniVersion
 * is code 1.
 */
import { InvalidConfigError, UnsupportedFieldError } from '../errors.js';
import { type GcAttachment, hasGcAttachments, parseGcAttachments } from './gc-attachments.js';
import { type JsonObject, absolutePath, at, bool, cniName, ifname, int, invalid, nonEmptyStr, obj, opt, rejectUnknownKeys } from './json-check.js';
import { type CniDns, type CniResult, parsePrevResult, readDns } from './result.js';
import { type ConfigArgs, type RuntimeConfig, EMPTY_ARGS, EMPTY_RUNTIME_CONFIG, parseCapabilities, parseConfigArgs, parseRuntimeConfig } from './runtime-config.js';
import { describeValue } from './syntax.js';
import { type CniVersion, pickVersion } from './versions.js';

export { parseGcAttachments, type GcAttachment } from './gc-attachments.js';

export type WeftMode = 'bridge' | 'macvlan';
export type MacvlanMode = 'bridge' | 'private' | 'vepa' | 'passthru';

/** What every plugin config has, whichever plugin it is for. */
export interface CommonNetConf {
  /** The configuration's own cniVersion ("" when it only has cniVersions). */
  readonly cniVersion: string;
  /** The negotiated version: render the result (and errors) in this one. */
  readonly resultVersion: CniVersion;
  readonly name: string;
  readonly runtimeConfig: RuntimeConfig;
  readonly args: ConfigArgs;
  /** The previous plugin's result (chained ADD), or the cached one (DEL/CHECK). */
  readonly prevResult?: CniResult;
}

interface WeftNetConfBase extends CommonNetConf {
  readonly type: 'weft';
  /** Daemon socket the plugin talks to; absent means DEFAULT_SOCKET. */
  readonly socket?: string;
  /** Names of managed subnets to allocate from, in order; empty means the daemon's default. */
  readonly subnets: readonly string[];
  readonly pool?: string;
  readonly ipMasq: boolean;
  readonly mtu?: number;
  readonly capabilities: Readonly<Record<string, boolean>>;
  readonly dns?: CniDns;
  readonly disableCheck: boolean;
  readonly disableGC: boolean;
  /** GC only: union of `cni.dev/valid-attachments` and `cni.dev/attachments`; absent when neither key is there. */
  readonly validAttachments?: readonly GcAttachment[];
  /** Every other `cni.dev/*` key, untouched. */
  readonly extensions: Readonly<JsonObject>;
}

export interface WeftBridgeNetConf extends WeftNetConfBase {
  readonly mode: 'bridge';
  /** Override of the bridge device name. */
  readonly bridge?: string;
  readonly hairpinMode: boolean;
}

export interface WeftMacvlanNetConf extends WeftNetConfBase {
  readonly mode: 'macvlan';
  /** Host interface the macvlan devices hang off. */
  readonly master: string;
  readonly macvlanMode: MacvlanMode;
}

export type WeftNetConf = WeftBridgeNetConf | WeftMacvlanNetConf;

export interface WeftIpamConf extends CommonNetConf {
  /** The main plugin's `type` (whoever delegated to weft-ipam). */
  readonly mainType?: string;
  readonly socket?: string;
  readonly subnets: readonly string[];
  readonly pool?: string;
}

const WEFT_KEYS: ReadonlySet<string> = new Set([
  'cniVersion', 'cniVersions', 'name', 'type', 'socket', 'subnet', 'pool', 'ipMasq', 'mtu', 'mode', 'master', 'macvlanMode',
  'bridge', 'hairpinMode', 'capabilities', 'runtimeConfig', 'args', 'prevResult', 'dns', 'disableCheck', 'disableGC',
]);
const IPAM_KEYS: ReadonlySet<string> = new Set(['type', 'socket', 'subnet', 'pool']);
const MACVLAN_MODES: readonly MacvlanMode[] = ['bridge', 'private', 'vepa', 'passthru'];
const isCniDevKey = (k: string): boolean => k.startsWith('cni.dev/');

function subnets(v: unknown, path: string): string[] {
  if (typeof v === 'string') return [nonEmptyStr(v, path)];
  if (!Array.isArray(v) || v.length === 0) invalid(path, 'a subnet name or a non-empty array of subnet names', v);
  const names = v.map((s, i) => nonEmptyStr(s, at(path, i)));
  const dup = names.find((s, i) => names.indexOf(s) !== i);
  if (dup !== undefined) throw new InvalidConfigError(`${path}: subnet "${dup}" is listed twice`);
  return names;
}

function readCommon(o: JsonObject): CommonNetConf {
  if (o['name'] === undefined || o['name'] === '') throw new InvalidConfigError('name: the network configuration has no name');
  const name = cniName(o['name'], 'name');
  const resultVersion = pickVersion(o);
  const cniVersion = typeof o['cniVersion'] === 'string' ? o['cniVersion'] : '';
  const runtimeConfig = opt(o, 'runtimeConfig', '', (v, p) => parseRuntimeConfig(v, p, name)) ?? EMPTY_RUNTIME_CONFIG;
  const args = opt(o, 'args', '', parseConfigArgs) ?? EMPTY_ARGS;
  const prevResult = o['prevResult'] === undefined ? undefined : parsePrevResult(o['prevResult'], { fallbackVersion: cniVersion || resultVersion });
  return { cniVersion, resultVersion, name, runtimeConfig, args, ...(prevResult ? { prevResult } : {}) };
}

/**
 * Validates a `type: "weft"` plugin configuration. Throws
 * UnsupportedFieldError (2), InvalidConfigError (7) or
 * IncompatibleVersionError (1).
 */
export function parseWeftConfig(raw: unknown): WeftNetConf {
  const o = obj(raw, '');
  if (o['ipam'] !== undefined) {
    throw new UnsupportedFieldError(`unsupported field "ipam" with value ${describeValue(o['ipam'])}: weft does its own IPAM`, {
      hint: 'remove "ipam" and choose addresses with "subnet" or "pool" in the weft configuration',
    });
  }
  const common = readCommon(o);
  rejectUnknownKeys(o, WEFT_KEYS, '', `weft network configuration "${common.name}"`, isCniDevKey);
  if (o['type'] !== 'weft') invalid('type', '"weft"', o['type']);

  const mode = o['mode'] === undefined ? 'bridge' : o['mode'];
  if (mode !== 'bridge' && mode !== 'macvlan') invalid('mode', '"bridge" or "macvlan"', o['mode']);

  const socket = opt(o, 'socket', '', absolutePath);
  const pool = opt(o, 'pool', '', nonEmptyStr);
  const mtu = opt(o, 'mtu', '', (v, p) => int(v, p, 576, 65535));
  const capabilities = opt(o, 'capabilities', '', parseCapabilities) ?? {};
  const dns = opt(o, 'dns', '', readDns);
  const extensions = Object.fromEntries(Object.entries(o).filter(([k]) => isCniDevKey(k) && k !== 'cni.dev/valid-attachments' && k !== 'cni.dev/attachments'));
  const base = {
    ...common,
    type: 'weft' as const,
    ...(socket === undefined ? {} : { socket }),
    subnets: opt(o, 'subnet', '', subnets) ?? [],
    ...(pool === undefined ? {} : { pool }),
    ipMasq: opt(o, 'ipMasq', '', bool) ?? false,
    ...(mtu === undefined ? {} : { mtu }),
    capabilities,
    ...(dns === undefined ? {} : { dns }),
    disableCheck: opt(o, 'disableCheck', '', bool) ?? false,
    disableGC: opt(o, 'disableGC', '', bool) ?? false,
    ...(hasGcAttachments(o) ? { validAttachments: parseGcAttachments(o) } : {}),
    extensions,
  };

  if (mode === 'macvlan') {
    for (const k of ['bridge', 'hairpinMode']) {
      if (o[k] !== undefined) throw new InvalidConfigError(`${k}: only valid with mode "bridge", but mode is "macvlan"`);
    }
    if (o['master'] === undefined) throw new InvalidConfigError('master: mode "macvlan" needs "master", the host interface to attach to');
    const master = ifname(o['master'], 'master');
    const macvlanMode = o['macvlanMode'] === undefined ? 'bridge' : o['macvlanMode'];
    if (!MACVLAN_MODES.includes(macvlanMode as MacvlanMode)) invalid('macvlanMode', MACVLAN_MODES.map((m) => `"${m}"`).join(', '), macvlanMode);
    return { ...base, mode, master, macvlanMode: macvlanMode as MacvlanMode };
  }
  for (const k of ['master', 'macvlanMode']) {
    if (o[k] !== undefined) throw new InvalidConfigError(`${k}: only valid with mode "macvlan", but mode is "bridge"`);
  }
  const bridge = opt(o, 'bridge', '', ifname);
  return { ...base, mode, ...(bridge === undefined ? {} : { bridge }), hairpinMode: opt(o, 'hairpinMode', '', bool) ?? true };
}

/**
 * Validates a configuration whose `ipam.type` is "weft-ipam". The top level
 * belongs to the main plugin (bridge, macvlan, …): only the keys the CNI
 * spec gives every plugin are validated there, the rest is ignored. Inside
 * `ipam`, only type/socket/subnet/pool exist (no routes/ranges/dataDir
 * overrides: addressing, gateways and routes come from the weft subnet).
 */
export function parseIpamConfig(raw: unknown): WeftIpamConf {
  const o = obj(raw, '');
  const common = readCommon(o);
  const ipam = obj(o['ipam'], 'ipam');
  rejectUnknownKeys(ipam, IPAM_KEYS, 'ipam', `weft-ipam configuration of network "${common.name}"`);
  if (ipam['type'] !== 'weft-ipam') invalid('ipam.type', '"weft-ipam"', ipam['type']);
  const mainType = typeof o['type'] === 'string' ? o['type'] : undefined;
  const socket = opt(ipam, 'socket', 'ipam', absolutePath);
  const pool = opt(ipam, 'pool', 'ipam', nonEmptyStr);
  return {
    ...common,
    ...(mainType === undefined ? {} : { mainType }),
    ...(socket === undefined ? {} : { socket }),
    subnets: opt(ipam, 'subnet', 'ipam', subnets) ?? [],
    ...(pool === undefined ? {} : { pool }),
  };
}
