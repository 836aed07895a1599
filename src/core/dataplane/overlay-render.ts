/**
 * Overlay changes as command lines: one `ip -batch` (devices, neighbours),
 * one `bridge -batch` (VXLAN and bridge FDB) and at most one nft script.
 * Every value is validated again here, so nothing from another host can
 * smuggle a token into a batch line.
 *
 * ip(8) quits a batch on a failed `neigh` request even with -force
 * (iproute2 6.1 exits instead of returning), so neighbour deletes, the only
 * neighbour lines that can fail on a race, go last.
 */
import { InvalidConfigError } from '../errors.js';
import { assertIfname } from './names.js';
import { aliasOf, assertVni } from './overlay-plan.js';
import { renderOverlayFilterRemoval } from './overlay-filter.js';
import { type BridgePortFlags, type OverlayChange, type VxlanDevice, ZERO_MAC } from './overlay-types.js';
import { assertBatchToken, assertMtu, canonicalIp, ipText } from './spec-checks.js';

export interface RenderedOverlayChanges {
  /** Lines for `ip -force -batch -`. */
  readonly ip: string[];
  /** Lines for `bridge -force -batch -`. */
  readonly bridge: string[];
  /** nft script to run before the batches (filter-apply). */
  readonly nftBefore?: string;
  /** nft script to run after the batches (filter-remove). */
  readonly nftAfter?: string;
  /** For each ip line, the change it belongs to (index into the input). */
  readonly ipSource: number[];
  readonly bridgeSource: number[];
}

function mac(m: string): string {
  const v = typeof m === 'string' ? m.toLowerCase() : '';
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(v)) throw new InvalidConfigError(`"${String(m)}" is not a MAC address`);
  return v;
}

function ip(s: string): string {
  return ipText(canonicalIp(s, 'overlay address'));
}

function dev(name: string): string {
  assertIfname(name, 'vxlan device name');
  return name;
}

function onOff(b: boolean): string {
  return b ? 'on' : 'off';
}

export function portFlagsArgs(f: BridgePortFlags): string {
  return `hairpin ${onOff(f.hairpin)} learning ${onOff(f.learning)} flood ${onOff(f.flood)} mcast_flood ${onOff(f.mcastFlood)} bcast_flood ${onOff(f.bcastFlood)}`;
}

/** `ip -batch` lines that create a device as planned: create, mark, enslave, port flags, up. */
export function deviceCreateLines(d: VxlanDevice): string[] {
  const name = dev(d.name);
  assertVni(d.vni, `vni of ${name}`);
  assertMtu(d.mtu, `mtu of ${name}`);
  if (!Number.isInteger(d.port) || d.port < 1 || d.port > 65535) throw new InvalidConfigError(`vxlan port ${String(d.port)} of ${name} is not a port number`);
  const alias = aliasOf(d);
  assertBatchToken(alias, 'vxlan alias');
  const opts = [
    `id ${d.vni}`,
    ...(d.local !== null ? [`local ${ip(d.local)}`] : []),
    ...(d.dev !== null ? [`dev ${dev(d.dev)}`] : []),
    `dstport ${d.port}`,
    d.learning ? 'learning' : 'nolearning',
    ...(d.proxy ? ['proxy'] : []),
  ];
  const lines = [`link add name ${name} mtu ${d.mtu} type vxlan ${opts.join(' ')}`, `link set dev ${name} alias ${alias}`];
  if (d.master !== null) {
    lines.push(`link set dev ${name} master ${dev(d.master)}`);
    // Port flags need their own request (with `master` the kernel answers EOPNOTSUPP).
    if (d.portFlags !== null) lines.push(`link set dev ${name} type bridge_slave ${portFlagsArgs(d.portFlags)}`);
  }
  if (d.up) lines.push(`link set dev ${name} up`);
  return lines;
}

export function renderOverlayChanges(changes: readonly OverlayChange[]): RenderedOverlayChanges {
  const ipLines: string[] = [];
  const ipSource: number[] = [];
  const ipLast: string[] = [];
  const ipLastSource: number[] = [];
  const bridge: string[] = [];
  const bridgeSource: number[] = [];
  let nftBefore: string | undefined;
  let nftAfter: string | undefined;
  const addIp = (i: number, ...lines: string[]): void => {
    for (const l of lines) {
      ipLines.push(l);
      ipSource.push(i);
    }
  };
  const addBridge = (i: number, line: string): void => {
    bridge.push(line);
    bridgeSource.push(i);
  };
  changes.forEach((c, i) => {
    switch (c.kind) {
      case 'filter-apply':
        nftBefore = c.script;
        break;
      case 'filter-remove':
        nftAfter = renderOverlayFilterRemoval();
        break;
      case 'device-delete':
        addIp(i, `link del dev ${dev(c.name)}`);
        break;
      case 'device-create':
        addIp(i, ...deviceCreateLines(c.device));
        break;
      case 'device-update': {
        const name = dev(c.name);
        if (c.mtu !== undefined) {
          assertMtu(c.mtu, `mtu of ${name}`);
          addIp(i, `link set dev ${name} mtu ${c.mtu}`);
        }
        if (c.master !== undefined) addIp(i, c.master === null ? `link set dev ${name} nomaster` : `link set dev ${name} master ${dev(c.master)}`);
        if (c.portFlags !== undefined) addIp(i, `link set dev ${name} type bridge_slave ${portFlagsArgs(c.portFlags)}`);
        if (c.up) addIp(i, `link set dev ${name} up`);
        break;
      }
      case 'fdb-add':
      case 'fdb-replace': {
        const e = c.entry;
        if (mac(e.mac) === ZERO_MAC) {
          // All-zeros entries hold a list of destinations: `append` adds one. The kernel refuses
          // `replace` on them, so a destination in the wrong state is deleted and appended again.
          if (c.kind === 'fdb-replace') addBridge(i, `fdb del ${ZERO_MAC} dev ${dev(e.dev)} dst ${ip(e.dst)} self`);
          addBridge(i, `fdb append ${ZERO_MAC} dev ${dev(e.dev)} dst ${ip(e.dst)} self permanent`);
        } else {
          // A unicast entry has one destination; `replace` creates or overwrites it.
          addBridge(i, `fdb replace ${mac(e.mac)} dev ${dev(e.dev)} dst ${ip(e.dst)} self permanent`);
        }
        break;
      }
      case 'fdb-del': {
        const e = c.entry;
        addBridge(i, mac(e.mac) === ZERO_MAC ? `fdb del ${ZERO_MAC} dev ${dev(e.dev)} dst ${ip(e.dst)} self` : `fdb del ${mac(e.mac)} dev ${dev(e.dev)} self`);
        break;
      }
      case 'master-add':
      case 'master-replace':
        addBridge(i, `fdb replace ${mac(c.entry.mac)} dev ${dev(c.entry.dev)} master static`);
        break;
      case 'master-del':
        addBridge(i, `fdb del ${mac(c.entry.mac)} dev ${dev(c.entry.dev)} master`);
        break;
      case 'neigh-add':
      case 'neigh-replace':
        addIp(i, `neigh replace ${ip(c.entry.ip)} lladdr ${mac(c.entry.mac)} dev ${dev(c.entry.dev)} nud permanent`);
        break;
      case 'neigh-del':
        ipLast.push(`neigh del ${ip(c.entry.ip)} dev ${dev(c.entry.dev)}`);
        ipLastSource.push(i);
        break;
    }
  });
  return {
    ip: [...ipLines, ...ipLast],
    bridge,
    ...(nftBefore !== undefined ? { nftBefore } : {}),
    ...(nftAfter !== undefined ? { nftAfter } : {}),
    ipSource: [...ipSource, ...ipLastSource],
    bridgeSource,
  };
}
