/**
 * Desired vs actual overlay state -> ordered changes, and a model of what
 * the kernel does with them (applyOverlayChanges), used by the property
 * tests and for dry runs. Pure.
 *
 * Order (docs/overlay.md "Apply order"):
 *   1. filter-apply: the loop guard is in place before a relay device exists
 *   2. device-delete (unwanted, or to be re-created because an immutable
 *      attribute differs: VNI, port, local, dev, learning, proxy)
 *   3. device-create, 4. device-update (mtu, master, port flags, up)
 *   5. FDB adds/replacements, then 6. bridge entries: a bridge entry never
 *      points at a VXLAN port before the port knows where to send the MAC
 *      (otherwise the VXLAN device would flood it to every peer)
 *   7. neighbour adds/replacements (ARP is answered once the path exists)
 *   8. bridge entry deletes before 9. FDB deletes (same reason), 10.
 *      neighbour deletes, 11. filter-remove once no relay device is left.
 * Entry changes are computed against the actual state *after* the device
 * changes (a deleted or re-created device has no entries; a port that
 * changed bridge lost its bridge entries), so a re-created device gets all
 * of its entries back in the same apply.
 */
import { renderOverlayFilter } from './overlay-filter.js';
import { byKey, fdbKey, neighKey, sortState } from './overlay-plan.js';
import {
  type BridgePortFlags,
  type FdbEntry,
  type MasterFdbEntry,
  type NeighEntry,
  type OverlayChange,
  type OverlayChangeKind,
  type OverlayState,
  type VxlanDevice,
} from './overlay-types.js';

function sameFlags(a: BridgePortFlags | null, b: BridgePortFlags | null): boolean {
  if (a === null || b === null) return a === b;
  return a.hairpin === b.hairpin && a.learning === b.learning && a.flood === b.flood && a.mcastFlood === b.mcastFlood && a.bcastFlood === b.bcastFlood;
}

/** An attribute that `ip link set` cannot change on a VXLAN device differs: delete and create. */
export function needsReplace(want: VxlanDevice, have: VxlanDevice): boolean {
  return (
    have.network !== want.network ||
    have.role !== want.role ||
    have.vni !== want.vni ||
    have.port !== want.port ||
    have.local !== want.local ||
    have.dev !== want.dev ||
    have.learning !== want.learning ||
    have.proxy !== want.proxy
  );
}

function deviceChanges(desired: OverlayState, actual: OverlayState): OverlayChange[] {
  const have = new Map(actual.devices.map((d) => [d.name, d]));
  const want = new Map(desired.devices.map((d) => [d.name, d]));
  const deletes: OverlayChange[] = [];
  const creates: OverlayChange[] = [];
  const updates: OverlayChange[] = [];
  for (const d of [...actual.devices].sort(byKey((x) => x.name))) {
    if (!want.has(d.name)) deletes.push({ kind: 'device-delete', name: d.name, reason: 'unwanted' });
  }
  for (const w of [...desired.devices].sort(byKey((x) => x.name))) {
    const h = have.get(w.name);
    if (h === undefined) {
      creates.push({ kind: 'device-create', device: w });
      continue;
    }
    if (needsReplace(w, h)) {
      deletes.push({ kind: 'device-delete', name: w.name, reason: 'replace' });
      creates.push({ kind: 'device-create', device: w });
      continue;
    }
    const masterChanged = h.master !== w.master;
    const u: { mtu?: number; master?: string | null; portFlags?: BridgePortFlags; up?: true } = {};
    if (h.mtu !== w.mtu) u.mtu = w.mtu;
    if (masterChanged) u.master = w.master;
    // A port that changes bridge starts with the kernel's default flags: set ours again.
    if (w.portFlags !== null && w.master !== null && (masterChanged || !sameFlags(h.portFlags, w.portFlags))) u.portFlags = w.portFlags;
    if (w.up && !h.up) u.up = true;
    if (Object.keys(u).length > 0) updates.push({ kind: 'device-update', name: w.name, ...u });
  }
  return [...deletes, ...creates, ...updates];
}

/** The bridge each device is a port of, for keying bridge entries (a MAC is unique per bridge, not per port). */
function masterOf(devices: readonly VxlanDevice[]): Map<string, string | null> {
  return new Map(devices.map((d) => [d.name, d.master]));
}

function bridgeEntryKey(masters: Map<string, string | null>, e: MasterFdbEntry): string {
  return `${masters.get(e.dev) ?? `!${e.dev}`}|${e.mac}`;
}

export function diffOverlay(desired: OverlayState, actual: OverlayState): OverlayChange[] {
  const devOps = deviceChanges(desired, actual);
  const base = applyOverlayChanges(actual, devOps);

  const fdbAdds: OverlayChange[] = [];
  const fdbDels: OverlayChange[] = [];
  const haveFdb = new Map(base.fdb.map((e) => [fdbKey(e), e]));
  const wantFdb = new Map(desired.fdb.map((e) => [fdbKey(e), e]));
  for (const [k, w] of [...wantFdb].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const h = haveFdb.get(k);
    if (h === undefined) fdbAdds.push({ kind: 'fdb-add', entry: w });
    // All-zeros entries are keyed by destination too, so for them only the state can differ.
    else if (h.dst !== w.dst || !h.permanent) fdbAdds.push({ kind: 'fdb-replace', entry: w });
  }
  for (const [k, h] of [...haveFdb].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) if (!wantFdb.has(k)) fdbDels.push({ kind: 'fdb-del', entry: h });

  const masterAdds: OverlayChange[] = [];
  const masterDels: OverlayChange[] = [];
  const wantMasters = masterOf(desired.devices);
  const haveMasters = masterOf(base.devices);
  const haveBr = new Map(base.masterFdb.map((e) => [bridgeEntryKey(haveMasters, e), e]));
  const wantBr = new Map(desired.masterFdb.map((e) => [bridgeEntryKey(wantMasters, e), e]));
  for (const [k, w] of [...wantBr].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const h = haveBr.get(k);
    if (h === undefined) masterAdds.push({ kind: 'master-add', entry: w });
    else if (h.dev !== w.dev || !h.static) masterAdds.push({ kind: 'master-replace', entry: w });
  }
  for (const [k, h] of [...haveBr].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) if (!wantBr.has(k)) masterDels.push({ kind: 'master-del', entry: h });

  const neighAdds: OverlayChange[] = [];
  const neighDels: OverlayChange[] = [];
  const haveN = new Map(base.neigh.map((e) => [neighKey(e), e]));
  const wantN = new Map(desired.neigh.map((e) => [neighKey(e), e]));
  for (const [k, w] of [...wantN].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const h = haveN.get(k);
    if (h === undefined) neighAdds.push({ kind: 'neigh-add', entry: w });
    else if (h.mac !== w.mac || !h.permanent) neighAdds.push({ kind: 'neigh-replace', entry: w });
  }
  for (const [k, h] of [...haveN].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) if (!wantN.has(k)) neighDels.push({ kind: 'neigh-del', entry: h });

  const out: OverlayChange[] = [];
  if (desired.filter !== null) {
    const rendered = renderOverlayFilter(desired.devices);
    const a = actual.filter;
    if (rendered !== null && (a === null || a.digest !== rendered.filter.digest || a.rules !== rendered.filter.rules)) {
      out.push({ kind: 'filter-apply', script: rendered.script, filter: rendered.filter });
    }
  }
  out.push(...devOps, ...fdbAdds, ...masterAdds, ...neighAdds, ...masterDels, ...fdbDels, ...neighDels);
  if (desired.filter === null && actual.filter !== null) out.push({ kind: 'filter-remove' });
  return out;
}

/**
 * What the kernel holds after `changes` (as weft reads it back): the model
 * the diff is checked against. Deleting a device takes its entries with it;
 * a created device has none; a port moved to another bridge loses its
 * bridge entries; a bridge entry replace moves the MAC between ports of one
 * bridge.
 */
export function applyOverlayChanges(state: OverlayState, changes: readonly OverlayChange[]): OverlayState {
  let devices = [...state.devices];
  const fdb = new Map(state.fdb.map((e) => [fdbKey(e), e]));
  let master = [...state.masterFdb];
  const neigh = new Map(state.neigh.map((e) => [neighKey(e), e]));
  let filter = state.filter;
  const dropEntriesOf = (dev: string): void => {
    for (const [k, e] of fdb) if (e.dev === dev) fdb.delete(k);
    for (const [k, e] of neigh) if (e.dev === dev) neigh.delete(k);
    master = master.filter((e) => e.dev !== dev);
  };
  for (const c of changes) {
    switch (c.kind) {
      case 'filter-apply':
        filter = c.filter;
        break;
      case 'filter-remove':
        filter = null;
        break;
      case 'device-delete':
        devices = devices.filter((d) => d.name !== c.name);
        dropEntriesOf(c.name);
        break;
      case 'device-create':
        devices = devices.filter((d) => d.name !== c.device.name);
        dropEntriesOf(c.device.name);
        devices.push(c.device);
        break;
      case 'device-update':
        devices = devices.map((d) => {
          if (d.name !== c.name) return d;
          let n: VxlanDevice = d;
          if (c.mtu !== undefined) n = { ...n, mtu: c.mtu };
          if (c.master !== undefined && c.master !== d.master) {
            master = master.filter((e) => e.dev !== d.name);
            n = { ...n, master: c.master, portFlags: c.master === null ? null : { hairpin: false, learning: true, flood: true, mcastFlood: true, bcastFlood: true } };
          }
          if (c.portFlags !== undefined) n = { ...n, portFlags: c.portFlags };
          if (c.up) n = { ...n, up: true };
          return n;
        });
        break;
      case 'fdb-add':
      case 'fdb-replace':
        fdb.set(fdbKey(c.entry), c.entry);
        break;
      case 'fdb-del':
        fdb.delete(fdbKey(c.entry));
        break;
      case 'master-add':
      case 'master-replace': {
        const br = devices.find((d) => d.name === c.entry.dev)?.master ?? null;
        master = master.filter((e) => !(e.mac === c.entry.mac && (devices.find((d) => d.name === e.dev)?.master ?? null) === br));
        master.push(c.entry);
        break;
      }
      case 'master-del':
        master = master.filter((e) => !(e.dev === c.entry.dev && e.mac === c.entry.mac));
        break;
      case 'neigh-add':
      case 'neigh-replace':
        neigh.set(neighKey(c.entry), c.entry);
        break;
      case 'neigh-del':
        neigh.delete(neighKey(c.entry));
        break;
    }
  }
  return sortState({ devices, fdb: [...fdb.values()], masterFdb: master, neigh: [...neigh.values()], filter });
}

export type OverlayChangeCounts = Partial<Record<OverlayChangeKind, number>>;

export function countChanges(changes: readonly OverlayChange[]): OverlayChangeCounts {
  const out: OverlayChangeCounts = {};
  for (const c of changes) out[c.kind] = (out[c.kind] ?? 0) + 1;
  return out;
}

/** Keeps only the devices (and their entries) of the given networks; the filter follows the devices kept. */
export function restrictToNetworks(state: OverlayState, keep: (network: string) => boolean): OverlayState {
  const devices = state.devices.filter((d) => keep(d.network));
  const names = new Set(devices.map((d) => d.name));
  const rendered = renderOverlayFilter(devices);
  return {
    devices,
    fdb: state.fdb.filter((e: FdbEntry) => names.has(e.dev)),
    masterFdb: state.masterFdb.filter((e: MasterFdbEntry) => names.has(e.dev)),
    neigh: state.neigh.filter((e: NeighEntry) => names.has(e.dev)),
    filter: rendered?.filter ?? null,
  };
}

/**
 * `desired` with the part of the given networks taken from `actual` instead
 * (those networks are left exactly as they are), the filter recomputed over
 * the result: a network that cannot be programmed now keeps its devices, and
 * the loop guard keeps covering them.
 */
export function keepNetworksAsTheyAre(desired: OverlayState, actual: OverlayState, networks: ReadonlySet<string>): OverlayState {
  if (networks.size === 0) return desired;
  const mine = restrictToNetworks(desired, (n) => !networks.has(n));
  const theirs = restrictToNetworks(actual, (n) => networks.has(n));
  const devices = [...mine.devices, ...theirs.devices];
  return sortState({
    devices,
    fdb: [...mine.fdb, ...theirs.fdb],
    masterFdb: [...mine.masterFdb, ...theirs.masterFdb],
    neigh: [...mine.neigh, ...theirs.neigh],
    filter: renderOverlayFilter(devices)?.filter ?? null,
  });
}
