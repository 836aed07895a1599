/**
 * Reading the overlay back: `ip -j -d link show`, `bridge -j fdb show dev X`
 * and `ip -j neigh show dev X` (iproute2 6.1) decoded into OverlayState.
 * Pure: the adapter hands over parsed JSON, tests hand over captured samples.
 * Only devices carrying weft's `weft-vxlan:<role>:<network>` alias are
 * weft's; everything else is only listed (to detect name clashes).
 */
import { KernelError } from '../errors.js';
import { tryParseIp } from '../ip/addr.js';
import { jsonArray } from './ip-json.js';
import { parseVxlanAlias } from './names.js';
import type { BridgePortFlags, FdbEntry, MasterFdbEntry, NeighEntry, VxlanDevice } from './overlay-types.js';
import { ipText } from './spec-checks.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Obj | undefined, k: string): string | undefined {
  const v = o?.[k];
  return typeof v === 'string' ? v : undefined;
}

function num(o: Obj | undefined, k: string): number | undefined {
  const v = o?.[k];
  return typeof v === 'number' ? v : undefined;
}

function bool(o: Obj | undefined, k: string): boolean | undefined {
  const v = o?.[k];
  return typeof v === 'boolean' ? v : undefined;
}

function canonicalIpText(s: string | undefined): string | null {
  if (s === undefined) return null;
  const ip = tryParseIp(s);
  return ip ? ipText(ip) : null;
}

/** Any link of the netns, as far as the overlay cares. */
export interface OverlayLinkInfo {
  readonly name: string;
  readonly kind?: string;
  readonly alias?: string;
  readonly up: boolean;
  readonly mtu: number;
  readonly master?: string;
}

export interface ParsedOverlayLinks {
  /** weft's VXLAN devices (by alias). */
  readonly devices: VxlanDevice[];
  /** Every link by name. */
  readonly links: Map<string, OverlayLinkInfo>;
}

function portFlags(o: Obj | undefined): BridgePortFlags | null {
  if (o === undefined) return null;
  return {
    hairpin: bool(o, 'hairpin') ?? false,
    learning: bool(o, 'learning') ?? true,
    flood: bool(o, 'flood') ?? true,
    mcastFlood: bool(o, 'mcast_flood') ?? true,
    bcastFlood: bool(o, 'bcast_flood') ?? true,
  };
}

export function parseOverlayLinks(doc: unknown): ParsedOverlayLinks {
  const devices: VxlanDevice[] = [];
  const links = new Map<string, OverlayLinkInfo>();
  for (const o of jsonArray(doc)) {
    const name = str(o, 'ifname');
    if (name === undefined) throw new KernelError('ip(8) printed a link without a name', { details: JSON.stringify(o).slice(0, 2000) });
    const flags = Array.isArray(o.flags) ? o.flags.filter((f): f is string => typeof f === 'string') : [];
    const info = isObj(o.linkinfo) ? o.linkinfo : undefined;
    const kind = str(info, 'info_kind');
    const alias = str(o, 'ifalias');
    const master = str(o, 'master');
    const up = flags.includes('UP');
    const mtu = num(o, 'mtu') ?? 0;
    links.set(name, { name, up, mtu, ...(kind !== undefined ? { kind } : {}), ...(alias !== undefined ? { alias } : {}), ...(master !== undefined ? { master } : {}) });
    const owner = parseVxlanAlias(alias);
    if (owner === undefined) continue;
    const data = isObj(info?.info_data) ? info.info_data : undefined;
    const slave = str(info, 'info_slave_kind') === 'bridge' && isObj(info?.info_slave_data) ? info.info_slave_data : undefined;
    const isVxlan = kind === 'vxlan';
    devices.push({
      name,
      network: owner.network,
      role: owner.role,
      // A link with weft's alias that is not a VXLAN device gets vni 0: the diff re-creates it.
      vni: isVxlan ? num(data, 'id') ?? 0 : 0,
      port: num(data, 'port') ?? 0,
      local: canonicalIpText(str(data, 'local') ?? str(data, 'local6')),
      dev: str(data, 'link') ?? null,
      learning: bool(data, 'learning') ?? true,
      proxy: bool(data, 'proxy') ?? false,
      mtu,
      master: master ?? null,
      up,
      portFlags: master !== undefined ? portFlags(slave) : null,
    });
  }
  return { devices, links };
}

/**
 * One device's `bridge -j fdb show dev X`: VXLAN entries (`self` with a
 * destination) and bridge entries (`master`). The port's own address
 * (master, permanent) and entries with a VLAN are not weft's and skipped.
 */
export function parseOverlayFdb(devName: string, doc: unknown): { fdb: FdbEntry[]; masterFdb: MasterFdbEntry[] } {
  const fdb: FdbEntry[] = [];
  const masterFdb: MasterFdbEntry[] = [];
  for (const o of jsonArray(doc)) {
    const mac = str(o, 'mac')?.toLowerCase();
    if (mac === undefined) continue;
    const flags = Array.isArray(o.flags) ? o.flags.filter((f): f is string => typeof f === 'string') : [];
    const state = str(o, 'state') ?? '';
    if (str(o, 'master') !== undefined && !flags.includes('self')) {
      if (state === 'permanent' || o.vlan !== undefined) continue;
      masterFdb.push({ dev: devName, mac, static: state === 'static' });
      continue;
    }
    const dst = canonicalIpText(str(o, 'dst'));
    if (!flags.includes('self') || dst === null) continue;
    const extra = o.vni !== undefined || o.port !== undefined || o.via !== undefined || o.src_vni !== undefined || o.nhid !== undefined;
    fdb.push({ dev: devName, mac, dst, permanent: state === 'permanent' && !extra });
  }
  return { fdb, masterFdb };
}

/** One device's `ip -j neigh show dev X`. */
export function parseOverlayNeigh(devName: string, doc: unknown): NeighEntry[] {
  const out: NeighEntry[] = [];
  for (const o of jsonArray(doc)) {
    const ip = canonicalIpText(str(o, 'dst'));
    if (ip === null) continue;
    const state = Array.isArray(o.state) ? o.state.filter((s): s is string => typeof s === 'string') : [];
    out.push({ dev: devName, ip, mac: (str(o, 'lladdr') ?? '').toLowerCase(), permanent: state.includes('PERMANENT') });
  }
  return out;
}
