/**
 * The ADD result. Internally weft keeps one shape, the 1.1.0 one, and renders
 * it into whatever version the configuration negotiated; prevResults from any
 * supported version are read back into that same shape.
 *
 * Rendering mirrors the reference Go types (containernetworking/cni
 * pkg/types/040 and pkg/types/100) field for field, including their quirks,
 * because that is what runtimes parse and cache:
 *  - 0.3.x/0.4.0: `ips[].version` ("4"/"6") is required; interfaces carry only
 *    name/mac/sandbox and routes only dst/gw; `dns` is always present (an
 *    empty object when there is nothing to say) as the Go struct never omits it.
 *  - 1.0.0: no `ips[].version`; otherwise like 0.4.0, but an empty `dns` is omitted.
 *  - 1.1.0: adds interfaces[].mtu/socketPath/pciID and routes[].mtu/advmss/
 *    priority/table/scope.
 * Empty lists are omitted in every version (Go `omitempty`), as are zero
 * mtu/advmss/priority.
 */
import { formatIp, tryParseIp } from '../ip/addr.js';
import { formatIpWithPrefix, tryParseIpWithPrefix } from '../ip/cidr.js';
import { IncompatibleVersionError, InternalError } from '../errors.js';
import { type CniVersion, SUPPORTED_VERSIONS, compareVersions, isSupportedVersion } from './versions.js';
import { type JsonObject, arr, at, int, invalid, obj, opt, str, strArray } from './json-check.js';

export interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  /** 1.1.0+ */
  readonly mtu?: number;
  /** The netns path for interfaces inside the container; absent for host-side ones. */
  readonly sandbox?: string;
  /** 1.1.0+ (vhost-user and similar). */
  readonly socketPath?: string;
  /** 1.1.0+ (SR-IOV and similar). */
  readonly pciID?: string;
}

export interface CniIpConfig {
  /** Address with prefix length, host bits kept: "10.32.0.5/12". */
  readonly address: string;
  readonly gateway?: string;
  /** Index into `interfaces`. */
  readonly interface?: number;
}

export interface CniRoute {
  /** Destination prefix: "0.0.0.0/0". */
  readonly dst: string;
  readonly gw?: string;
  /** 1.1.0+ */
  readonly mtu?: number;
  readonly advmss?: number;
  readonly priority?: number;
  readonly table?: number;
  /** 0 universe, 253 link, 254 host. */
  readonly scope?: number;
}

export interface CniDns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

/** A main plugin's result (what `weft` returns). */
export interface CniResult {
  readonly interfaces: readonly CniInterface[];
  readonly ips: readonly CniIpConfig[];
  readonly routes: readonly CniRoute[];
  readonly dns: CniDns;
}

/** An IPAM plugin's result (what `weft-ipam` returns): no interfaces, no ips[].interface. */
export interface IpamResult {
  readonly ips: readonly Omit<CniIpConfig, 'interface'>[];
  readonly routes: readonly CniRoute[];
  readonly dns: CniDns;
}

const is11 = (v: CniVersion): boolean => v === '1.1.0';
const is0x = (v: CniVersion): boolean => compareVersions(v, '1.0.0') < 0;

function renderDns(dns: CniDns): JsonObject {
  const out: JsonObject = {};
  if (dns.nameservers && dns.nameservers.length > 0) out['nameservers'] = [...dns.nameservers];
  if (dns.domain) out['domain'] = dns.domain;
  if (dns.search && dns.search.length > 0) out['search'] = [...dns.search];
  if (dns.options && dns.options.length > 0) out['options'] = [...dns.options];
  return out;
}

function renderInterface(i: CniInterface, version: CniVersion): JsonObject {
  const out: JsonObject = { name: i.name };
  if (i.mac) out['mac'] = i.mac;
  if (is11(version) && i.mtu) out['mtu'] = i.mtu;
  if (i.sandbox) out['sandbox'] = i.sandbox;
  if (is11(version) && i.socketPath) out['socketPath'] = i.socketPath;
  if (is11(version) && i.pciID) out['pciID'] = i.pciID;
  return out;
}

function renderIp(ip: CniIpConfig, version: CniVersion, interfaceCount: number): JsonObject {
  const parsed = tryParseIpWithPrefix(ip.address);
  if (!parsed) throw new InternalError(`result: ips address "${ip.address}" is not an address with a prefix length`);
  const out: JsonObject = {};
  if (is0x(version)) out['version'] = String(parsed.ip.family);
  if (ip.interface !== undefined) {
    if (!Number.isInteger(ip.interface) || ip.interface < 0 || ip.interface >= interfaceCount) {
      throw new InternalError(`result: ips interface index ${ip.interface} does not refer to one of the ${interfaceCount} interfaces`);
    }
    out['interface'] = ip.interface;
  }
  out['address'] = ip.address;
  if (ip.gateway) out['gateway'] = ip.gateway;
  return out;
}

function renderRoute(r: CniRoute, version: CniVersion): JsonObject {
  const out: JsonObject = { dst: r.dst };
  if (r.gw) out['gw'] = r.gw;
  if (is11(version)) {
    if (r.mtu) out['mtu'] = r.mtu;
    if (r.advmss) out['advmss'] = r.advmss;
    if (r.priority) out['priority'] = r.priority;
    if (r.table !== undefined) out['table'] = r.table;
    if (r.scope !== undefined) out['scope'] = r.scope;
  }
  return out;
}

/**
 * Renders a result as the JSON object of `version`. Throws InternalError if
 * the internal result is inconsistent (a bug in the caller, not user input).
 */
export function renderResult(result: CniResult, version: CniVersion): JsonObject {
  const out: JsonObject = { cniVersion: version };
  if (result.interfaces.length > 0) out['interfaces'] = result.interfaces.map((i) => renderInterface(i, version));
  if (result.ips.length > 0) out['ips'] = result.ips.map((ip) => renderIp(ip, version, result.interfaces.length));
  if (result.routes.length > 0) out['routes'] = result.routes.map((r) => renderRoute(r, version));
  const dns = renderDns(result.dns);
  if (is0x(version) || Object.keys(dns).length > 0) out['dns'] = dns;
  return out;
}

/** Renders an IPAM plugin's result (same rules, never interfaces or ips[].interface). */
export function renderIpamResult(result: IpamResult, version: CniVersion): JsonObject {
  const ips = result.ips.map(({ address, gateway }) => ({ address, ...(gateway === undefined ? {} : { gateway }) }));
  return renderResult({ interfaces: [], ips, routes: result.routes, dns: result.dns }, version);
}

// ---- reading results back (prevResult) ----

function ipWithPrefix(v: unknown, path: string): string {
  const p = tryParseIpWithPrefix(str(v, path));
  if (!p) invalid(path, 'an IP address with a prefix length', v);
  return formatIpWithPrefix(p.ip, p.prefix);
}

function ip(v: unknown, path: string): string {
  const p = tryParseIp(str(v, path));
  if (!p) invalid(path, 'an IP address', v);
  return formatIp(p);
}

const INT32 = 2 ** 31 - 1;

function readInterface(v: unknown, path: string): CniInterface {
  const o = obj(v, path);
  const name = str(o['name'], at(path, 'name'));
  const mac = opt(o, 'mac', path, str);
  const mtu = opt(o, 'mtu', path, (x, p) => int(x, p, 0, INT32));
  const sandbox = opt(o, 'sandbox', path, str);
  const socketPath = opt(o, 'socketPath', path, str);
  const pciID = opt(o, 'pciID', path, str);
  return {
    name,
    ...(mac ? { mac } : {}),
    ...(mtu ? { mtu } : {}),
    ...(sandbox ? { sandbox } : {}),
    ...(socketPath ? { socketPath } : {}),
    ...(pciID ? { pciID } : {}),
  };
}

function readIp(v: unknown, path: string, interfaceCount: number): CniIpConfig {
  const o = obj(v, path);
  const address = ipWithPrefix(o['address'], at(path, 'address'));
  const version = o['version'];
  // 1.x results have no version; in 0.x it must agree with the address.
  if (version !== undefined) {
    const family = address.includes(':') ? '6' : '4';
    if (version !== family) invalid(at(path, 'version'), `"${family}" for address ${address}`, version);
  }
  const gateway = opt(o, 'gateway', path, ip);
  const iface = opt(o, 'interface', path, (x, p) => int(x, p, 0, Math.max(0, interfaceCount - 1)));
  if (iface !== undefined && interfaceCount === 0) invalid(at(path, 'interface'), 'no interface index (the result lists no interfaces)', iface);
  return { address, ...(gateway === undefined ? {} : { gateway }), ...(iface === undefined ? {} : { interface: iface }) };
}

function readRoute(v: unknown, path: string): CniRoute {
  const o = obj(v, path);
  const dst = ipWithPrefix(o['dst'], at(path, 'dst'));
  const gw = opt(o, 'gw', path, ip);
  const mtu = opt(o, 'mtu', path, (x, p) => int(x, p, 0, INT32));
  const advmss = opt(o, 'advmss', path, (x, p) => int(x, p, 0, INT32));
  const priority = opt(o, 'priority', path, (x, p) => int(x, p, 0, 2 ** 32 - 1));
  const table = opt(o, 'table', path, (x, p) => int(x, p, 0, 2 ** 32 - 1));
  const scope = opt(o, 'scope', path, (x, p) => int(x, p, 0, 255));
  return {
    dst,
    ...(gw === undefined ? {} : { gw }),
    ...(mtu ? { mtu } : {}),
    ...(advmss ? { advmss } : {}),
    ...(priority ? { priority } : {}),
    ...(table === undefined ? {} : { table }),
    ...(scope === undefined ? {} : { scope }),
  };
}

/** Reads a `dns` object ({nameservers, domain, search, options}); shared with the config parser. */
export function readDns(v: unknown, path: string): CniDns {
  const o = obj(v, path);
  const nameservers = opt(o, 'nameservers', path, strArray);
  const domain = opt(o, 'domain', path, str);
  const search = opt(o, 'search', path, strArray);
  const options = opt(o, 'options', path, strArray);
  return {
    ...(nameservers && nameservers.length > 0 ? { nameservers } : {}),
    ...(domain ? { domain } : {}),
    ...(search && search.length > 0 ? { search } : {}),
    ...(options && options.length > 0 ? { options } : {}),
  };
}

/** A list that may be absent or null (non-Go encoders write null for empty lists). */
function list(o: JsonObject, key: string, path: string): unknown[] {
  const v = o[key];
  return v === undefined || v === null ? [] : arr(v, at(path, key));
}

/**
 * Reads a result of any supported version (a chained plugin's prevResult,
 * or a cached one on DEL/CHECK) into the internal shape. Addresses are
 * canonicalised so callers can compare them with their own state. Before
 * 1.0.0 results could omit cniVersion; as libcni does, `fallbackVersion`
 * (the configuration's) is assumed then. Unknown keys are ignored because
 * other plugins in a chain may add their own. Malformed input is an
 * InvalidConfigError (code 7) naming the path; an unsupported version is an
 * IncompatibleVersionError (code 1).
 */
export function parsePrevResult(raw: unknown, opts: { fallbackVersion?: string; path?: string } = {}): CniResult {
  const path = opts.path ?? 'prevResult';
  const o = obj(raw, path);
  const version = o['cniVersion'] === undefined || o['cniVersion'] === '' ? opts.fallbackVersion : str(o['cniVersion'], at(path, 'cniVersion'));
  if (version === undefined) invalid(at(path, 'cniVersion'), 'a CNI version', undefined);
  if (!isSupportedVersion(version)) {
    throw new IncompatibleVersionError(`${path} has cniVersion "${version}"; weft reads results of versions ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const interfaces = list(o, 'interfaces', path).map((v, i) => readInterface(v, at(at(path, 'interfaces'), i)));
  const ips = list(o, 'ips', path).map((v, i) => readIp(v, at(at(path, 'ips'), i), interfaces.length));
  const routes = list(o, 'routes', path).map((v, i) => readRoute(v, at(at(path, 'routes'), i)));
  const dns = o['dns'] === undefined || o['dns'] === null ? {} : readDns(o['dns'], at(path, 'dns'));
  return { interfaces, ips, routes, dns };
}
