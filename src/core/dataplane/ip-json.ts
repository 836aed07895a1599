/**
 * Decoding of `ip -j` output (iproute2 6.1) into the DataPlane's state types.
 * Pure: the adapter hands over the text, tests hand over captured samples.
 */
import { KernelError } from '../errors.js';
import type { Family } from '../ip/addr.js';
import { tryParseIp } from '../ip/addr.js';
import { formatCidr, tryParseCidr } from '../ip/cidr.js';
import type { ContainerIfaceState, HostLinkState } from './types.js';

/**
 * `ip -j -batch -` prints one JSON document per show command, back to back.
 * Splits and parses them (a JSON.parse per document, boundaries found by
 * tracking nesting outside strings).
 */
export function parseJsonDocuments(text: string): unknown[] {
  const docs: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (ch === ']' || ch === '}') {
      depth--;
      if (depth === 0) docs.push(parseOne(text.slice(start, i + 1)));
      if (depth < 0) throw new KernelError('unbalanced JSON from ip(8)', { details: text.slice(0, 2000) });
    }
  }
  if (depth !== 0) throw new KernelError('truncated JSON from ip(8)', { details: text.slice(0, 2000) });
  return docs;
}

function parseOne(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch (e) {
    throw new KernelError('ip(8) printed JSON weft cannot parse', { details: s.slice(0, 2000), cause: e });
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Obj, k: string): string | undefined {
  const v = o[k];
  return typeof v === 'string' ? v : undefined;
}

function num(o: Obj, k: string): number | undefined {
  const v = o[k];
  return typeof v === 'number' ? v : undefined;
}

/** The objects of one `ip -j` document (always an array at top level). */
export function jsonArray(doc: unknown): Obj[] {
  if (!Array.isArray(doc)) throw new KernelError('ip(8) JSON output is not an array', { details: JSON.stringify(doc).slice(0, 2000) });
  return doc.filter(isObj);
}

/** A link as `ip -j [-d] link show` / `addr show` prints it, with its index and addresses. */
export interface ParsedLink extends HostLinkState {
  readonly ifindex: number;
  readonly mtu: number;
  /** ifindex of the peer (veth) or lower device (macvlan), possibly in another netns. */
  readonly linkIndex?: number;
  readonly flags: readonly string[];
}

export function parseLink(o: Obj): ParsedLink {
  const name = str(o, 'ifname');
  const ifindex = num(o, 'ifindex');
  if (name === undefined || ifindex === undefined) throw new KernelError('ip(8) printed a link without name or index', { details: JSON.stringify(o).slice(0, 2000) });
  const flags = Array.isArray(o.flags) ? o.flags.filter((f): f is string => typeof f === 'string') : [];
  const info = isObj(o.linkinfo) ? o.linkinfo : undefined;
  const kind = info !== undefined ? str(info, 'info_kind') : undefined;
  const master = str(o, 'master');
  const alias = str(o, 'ifalias');
  const linkIndex = num(o, 'link_index');
  return {
    name,
    ifindex,
    mtu: num(o, 'mtu') ?? 0,
    // Admin state (IFF_UP), not carrier: an empty bridge is "up" with NO-CARRIER.
    up: flags.includes('UP'),
    mac: (str(o, 'address') ?? '').toLowerCase(),
    flags,
    ...(kind !== undefined ? { kind } : {}),
    ...(master !== undefined ? { master } : {}),
    ...(alias !== undefined ? { alias } : {}),
    ...(linkIndex !== undefined ? { linkIndex } : {}),
  };
}

export function parseLinks(doc: unknown): ParsedLink[] {
  return jsonArray(doc).map(parseLink);
}

/** Global-scope addresses (`10.32.0.5/12`) of one `addr show` entry; link-local and host scope are skipped. */
export function parseGlobalAddresses(o: Obj): string[] {
  const infos = Array.isArray(o.addr_info) ? o.addr_info.filter(isObj) : [];
  const out: string[] = [];
  for (const a of infos) {
    const local = str(a, 'local');
    const prefix = num(a, 'prefixlen');
    if (local === undefined || prefix === undefined) continue;
    if (str(a, 'scope') !== undefined && str(a, 'scope') !== 'global') continue;
    const ip = tryParseIp(local);
    if (!ip) continue;
    out.push(`${local}/${prefix}`);
  }
  return out;
}

/**
 * Routes of one family from `ip -j route show table all dev X root <any>`:
 * main-table unicast routes the kernel did not add by itself (connected-subnet
 * routes, fe80::/64) — the ones a CNI result describes.
 */
export function parseRoutes(doc: unknown, family: Family): { dst: string; gw?: string }[] {
  const out: { dst: string; gw?: string }[] = [];
  for (const r of jsonArray(doc)) {
    const table = str(r, 'table');
    if (table !== undefined && table !== 'main') continue;
    const type = str(r, 'type');
    if (type !== undefined && type !== 'unicast') continue;
    if (str(r, 'protocol') === 'kernel') continue;
    const rawDst = str(r, 'dst');
    if (rawDst === undefined) continue;
    let dst: string;
    if (rawDst === 'default') dst = family === 4 ? '0.0.0.0/0' : '::/0';
    else {
      const c = tryParseCidr(rawDst.includes('/') ? rawDst : `${rawDst}/${family === 4 ? 32 : 128}`);
      if (!c) continue;
      dst = formatCidr(c);
    }
    const gw = str(r, 'gateway');
    out.push(gw !== undefined ? { dst, gw } : { dst });
  }
  return out;
}

export function containerIfaceState(link: Obj, v4Routes: unknown, v6Routes: unknown): ContainerIfaceState {
  const l = parseLink(link);
  return {
    ifname: l.name,
    mac: l.mac,
    up: l.up,
    mtu: l.mtu,
    addresses: parseGlobalAddresses(link),
    routes: [...parseRoutes(v4Routes, 4), ...parseRoutes(v6Routes, 6)],
  };
}
