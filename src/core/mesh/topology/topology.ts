import type { PeerAddress } from '../address.js';
import type { PeerId } from '../peer-id.js';
import { isTopologyDelta, type DigestItem, type TopologyDelta, type TopologyEntry, type TopologyItem } from '../wire/messages.js';

const EMPTY: ReadonlySet<PeerId> = new Set();

export interface MergeResult {
  /** Entries that were new or newer and are now stored. */
  readonly changed: readonly TopologyEntry[];
  /**
   * Peers whose full entry we should ask for: referenced by a connection but
   * unknown, or sent as a delta against a version we do not hold.
   */
  readonly unknown: readonly PeerId[];
}

/** The entry `base` turned into by `d`, or undefined if `d` does not fit `base` (then ask for the full entry). */
export function applyDelta(base: TopologyEntry, d: TopologyDelta): TopologyEntry | undefined {
  if (base.version !== d.baseVersion) return undefined;
  const removed = new Set(d.removed);
  const kept = base.connections.filter((c) => !removed.has(c));
  if (kept.length !== base.connections.length - removed.size) return undefined;
  const have = new Set(kept);
  for (const a of d.added) if (have.has(a)) return undefined;
  const connections = [...kept, ...d.added].sort();
  return { peer: base.peer, version: d.version, nickname: base.nickname, address: base.address, connections };
}

/** The delta from `prev` to `next` (same peer), or undefined when the full entry is as small or other fields changed. */
export function diffEntries(prev: TopologyEntry, next: TopologyEntry): TopologyDelta | undefined {
  if (prev.nickname !== next.nickname || prev.address !== next.address) return undefined;
  const before = new Set(prev.connections);
  const after = new Set(next.connections);
  const added = next.connections.filter((c) => !before.has(c));
  const removed = prev.connections.filter((c) => !after.has(c));
  if (added.length + removed.length >= next.connections.length) return undefined;
  return { peer: next.peer, version: next.version, baseVersion: prev.version, added, removed };
}

/** Two independent 32-bit hashes of (peer, version), summed over all entries: order-free and updatable in O(1). */
function entryHash(peer: PeerId, version: number): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ version;
  const s = peer + ':' + version;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 13;
  }
  return [a >>> 0, b >>> 0];
}

function sameConnections(a: readonly PeerId[], b: readonly PeerId[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameEntry(a: TopologyEntry, b: TopologyEntry): boolean {
  return a.version === b.version && a.nickname === b.nickname && sameConnections(a.connections, b.connections)
    && (a.address === b.address || (a.address !== undefined && b.address !== undefined && a.address.port === b.address.port && a.address.ip.value === b.address.ip.value && a.address.ip.family === b.address.ip.family));
}

/**
 * Who is connected to whom, as every peer sees it: one entry per peer, each
 * written only by its owner and versioned, so merging is "highest version
 * wins" and any two routers that saw the same entries agree, in whatever
 * order and however often they saw them.
 *
 * Versions are max(previous + 1, clock ms). The clock part means a router
 * that restarts without remembering its version still starts above the
 * versions it used before; if the clock went backwards, the router notices
 * its old, higher version coming back through gossip and jumps above it.
 *
 * Peers unreachable from us are marked and forgotten after a timeout; a
 * tombstone (peer, last version) then stops old copies still circulating
 * from bringing them back. A fresh connection from the peer itself lifts it.
 */
export class Topology {
  private readonly entries = new Map<PeerId, TopologyEntry>();
  private readonly tombstones = new Map<PeerId, { version: number; until: number }>();
  private readonly unreachable = new Map<PeerId, number>();
  /** nickname → peers using it; name-collision checks run on every handshake. */
  private readonly nicknames = new Map<string, Set<PeerId>>();
  private local: TopologyEntry;
  private localConnections: PeerId[] = [];
  private dirty = false;
  /** A version of ourselves seen elsewhere that our next version must exceed. */
  private floor = 0;
  private gen = 0;
  /** nextGarbageAt is asked after every input; recomputed only when the unreachable or tombstone sets changed. */
  private gcDirty = true;
  private gcNext: number | undefined;
  private hashA = 0;
  private hashB = 0;

  constructor(readonly self: PeerId, nickname: string, address: PeerAddress | undefined, now: number) {
    this.local = { peer: self, version: Math.max(1, Math.floor(now)), nickname, address, connections: [] };
    this.put(this.local);
  }

  /** Increases on every change of any entry; routes are cached per generation. */
  get generation(): number {
    return this.gen;
  }

  get size(): number {
    return this.entries.size;
  }

  get(peer: PeerId): TopologyEntry | undefined {
    return this.entries.get(peer);
  }

  has(peer: PeerId): boolean {
    return this.entries.has(peer);
  }

  all(): IterableIterator<TopologyEntry> {
    return this.entries.values();
  }

  /** Peers whose entry carries `nickname`. */
  peersWithNickname(nickname: string): ReadonlySet<PeerId> {
    return this.nicknames.get(nickname) ?? EMPTY;
  }

  localEntry(): TopologyEntry {
    return this.local;
  }

  /** Equal fingerprints mean equal (peer, version) sets, for convergence checks. */
  fingerprint(): string {
    return `${this.entries.size}:${this.hashA.toString(16)}:${this.hashB.toString(16)}`;
  }

  private put(e: TopologyEntry): void {
    const old = this.entries.get(e.peer);
    if (old) {
      const [a, b] = entryHash(old.peer, old.version);
      this.hashA = (this.hashA - a) >>> 0;
      this.hashB = (this.hashB - b) >>> 0;
    }
    const [a, b] = entryHash(e.peer, e.version);
    this.hashA = (this.hashA + a) >>> 0;
    this.hashB = (this.hashB + b) >>> 0;
    if (old && old.nickname !== e.nickname) this.nicknames.get(old.nickname)?.delete(e.peer);
    let set = this.nicknames.get(e.nickname);
    if (!set) this.nicknames.set(e.nickname, (set = new Set()));
    set.add(e.peer);
    this.entries.set(e.peer, e);
    this.gen++;
  }

  private drop(peer: PeerId): void {
    const old = this.entries.get(peer);
    if (!old) return;
    const [a, b] = entryHash(old.peer, old.version);
    this.hashA = (this.hashA - a) >>> 0;
    this.hashB = (this.hashB - b) >>> 0;
    const set = this.nicknames.get(old.nickname);
    set?.delete(peer);
    if (set && set.size === 0) this.nicknames.delete(old.nickname);
    this.entries.delete(peer);
    this.unreachable.delete(peer);
    this.gcDirty = true;
    this.gen++;
  }

  /** Our established connections changed; published at the next `commitLocal`. */
  setLocalConnections(peers: Iterable<PeerId>): void {
    const sorted = [...new Set(peers)].filter((p) => p !== this.self).sort();
    if (!sameConnections(sorted, this.localConnections)) {
      this.localConnections = sorted;
      this.dirty = true;
    }
  }

  /** True when our entry must be republished. */
  get localDirty(): boolean {
    return this.dirty;
  }

  /**
   * Publishes a new version of our entry if anything changed. Returns it,
   * with the delta from the previous version when that is smaller.
   */
  commitLocal(now: number): { entry: TopologyEntry; delta: TopologyDelta | undefined } | undefined {
    if (!this.dirty) return undefined;
    this.dirty = false;
    const prev = this.local;
    const version = Math.max(prev.version + 1, this.floor + 1, Math.floor(now));
    this.local = { ...prev, version, connections: this.localConnections };
    this.put(this.local);
    return { entry: this.local, delta: diffEntries(prev, this.local) };
  }

  /** Merges received entries and deltas; returns what was new. Never lets anyone else rewrite our own entry. */
  merge(received: readonly TopologyItem[]): MergeResult {
    const changed: TopologyEntry[] = [];
    const unknown = new Set<PeerId>();
    for (const item of received) {
      if (item.peer === this.self) {
        // Someone holds a version of us we do not remember (we restarted, or
        // our clock went back): publish a version above it.
        if (item.version > this.local.version || (item.version === this.local.version && !isTopologyDelta(item) && !sameEntry(item, this.local))) {
          this.floor = Math.max(this.floor, item.version);
          this.dirty = true;
        }
        continue;
      }
      const tomb = this.tombstones.get(item.peer);
      if (tomb && item.version <= tomb.version) continue;
      const cur = this.entries.get(item.peer);
      if (cur && cur.version >= item.version) continue;
      let e: TopologyEntry | undefined = item as TopologyEntry;
      if (isTopologyDelta(item)) {
        e = cur ? applyDelta(cur, item) : undefined;
        if (!e) {
          unknown.add(item.peer);
          continue;
        }
      }
      if (tomb) {
        this.tombstones.delete(item.peer);
        this.gcDirty = true;
      }
      this.put(e);
      changed.push(e);
    }
    for (const e of changed) {
      for (const c of e.connections) if (c !== this.self && !this.entries.has(c) && !this.tombstones.has(c)) unknown.add(c);
    }
    return { changed, unknown: [...unknown] };
  }

  /**
   * A digest says someone holds version `v` of our entry. If that is above
   * ours, we are the one who forgot (restart, clock jump): our next version
   * must exceed it. Returns true when a republication is needed.
   */
  noteOwnVersionSeen(v: number): boolean {
    // Equal is normally our current entry. (A different entry under the same
    // number needs a clock that went back to the very millisecond; our next
    // connection change repairs even that.)
    if (v <= this.local.version) return false;
    this.floor = Math.max(this.floor, v);
    this.dirty = true;
    return true;
  }

  /** (peer, version) for every entry: what a TOPOLOGY_REQUEST carries. */
  digest(): DigestItem[] {
    const out: DigestItem[] = [];
    for (const e of this.entries.values()) out.push({ peer: e.peer, version: e.version });
    return out;
  }

  /**
   * What a peer that sent `digest` is missing from us, and whether it has
   * something we lack (then it is worth asking back). A partial digest asks
   * only about the peers it lists.
   */
  answer(digest: readonly DigestItem[], partial = false): { entries: TopologyEntry[]; theyHaveNewer: boolean } {
    let theyHaveNewer = false;
    const entries: TopologyEntry[] = [];
    if (partial) {
      for (const d of digest) {
        const mine = this.entries.get(d.peer);
        if (mine && mine.version > d.version) entries.push(mine);
        else if ((!mine || mine.version < d.version) && d.version > 0) theyHaveNewer = true;
      }
      return { entries, theyHaveNewer };
    }
    const theirs = new Map<PeerId, number>();
    for (const d of digest) {
      theirs.set(d.peer, d.version);
      const mine = this.entries.get(d.peer);
      const tomb = this.tombstones.get(d.peer);
      if ((!mine || mine.version < d.version) && !(tomb && d.version <= tomb.version)) theyHaveNewer = true;
    }
    for (const e of this.entries.values()) {
      const v = theirs.get(e.peer);
      if (v === undefined || v < e.version) entries.push(e);
    }
    return { entries, theyHaveNewer };
  }

  /** Records which peers we can reach now; returns true if the unreachable set changed. */
  markReachable(reachable: ReadonlySet<PeerId>, now: number): boolean {
    let changed = false;
    for (const peer of this.entries.keys()) {
      if (peer === this.self) continue;
      if (reachable.has(peer)) {
        if (this.unreachable.delete(peer)) changed = true;
      } else if (!this.unreachable.has(peer)) {
        this.unreachable.set(peer, now);
        changed = true;
      }
    }
    if (changed) this.gcDirty = true;
    return changed;
  }

  unreachableSince(peer: PeerId): number | undefined {
    return this.unreachable.get(peer);
  }

  /** Forgets peers unreachable for `removeAfterMs`, leaving tombstones as long again; returns them. */
  collectGarbage(now: number, removeAfterMs: number): PeerId[] {
    const removed: PeerId[] = [];
    for (const [peer, since] of this.unreachable) {
      if (now - since < removeAfterMs) continue;
      const e = this.entries.get(peer);
      if (e) this.tombstones.set(peer, { version: e.version, until: now + removeAfterMs });
      this.drop(peer);
      removed.push(peer);
    }
    for (const [peer, t] of this.tombstones) {
      if (t.until <= now) {
        this.tombstones.delete(peer);
        this.gcDirty = true;
      }
    }
    return removed;
  }

  /** The earliest time `collectGarbage` has work. */
  nextGarbageAt(removeAfterMs: number): number | undefined {
    if (!this.gcDirty) return this.gcNext;
    let next: number | undefined;
    for (const since of this.unreachable.values()) if (next === undefined || since + removeAfterMs < next) next = since + removeAfterMs;
    for (const t of this.tombstones.values()) if (next === undefined || t.until < next) next = t.until;
    this.gcNext = next;
    this.gcDirty = false;
    return next;
  }

  /** A direct handshake proves the peer is alive whatever we remembered: lift its tombstone. */
  forgiveTombstone(peer: PeerId): void {
    if (this.tombstones.delete(peer)) this.gcDirty = true;
  }

  isTombstoned(peer: PeerId): boolean {
    return this.tombstones.has(peer);
  }
}
