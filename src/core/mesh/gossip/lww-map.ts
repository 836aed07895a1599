import { MeshMalformedError } from '../../errors.js';
import { isPeerId, type PeerId } from '../peer-id.js';
import type { GossipChannelState, GossipData, GossipSender } from './interfaces.js';
import { exactKeys, isPlainObject, jsonPayload, parseJsonPayload } from './json-payload.js';

/** One key's value; `null` is a deletion (a tombstone, kept so the delete wins over older writes). */
export interface LwwEntry {
  readonly value: string | null;
  readonly ts: number;
  readonly origin: PeerId;
}

/** Total order of writes: timestamp, then writer ID, so concurrent writes resolve the same way everywhere. */
export function newerThan(a: LwwEntry, b: LwwEntry | undefined): boolean {
  return b === undefined || a.ts > b.ts || (a.ts === b.ts && a.origin > b.origin);
}

const MAX_KEY = 256;
const MAX_VALUE = 64 * 1024;
/** Payload budget per encoded chunk, well under the default 1 MiB frame. */
const CHUNK_BYTES = 256 * 1024;

/**
 * Last-writer-wins map: a state-based CRDT with tombstones.
 *
 * Payload: `{"e":[[key, value|null, ts, origin], ...]}`, key 1..256 chars,
 * value ≤ 64 KiB, ts a non-negative safe integer, origin a peer ID.
 */
export class LwwMapData implements GossipData<LwwMapData> {
  constructor(readonly entries: ReadonlyMap<string, LwwEntry>) {}

  encode(): Uint8Array[] {
    const out: Uint8Array[] = [];
    let batch: unknown[] = [];
    let size = 0;
    for (const [k, e] of this.entries) {
      const item = [k, e.value, e.ts, e.origin];
      const s = k.length + (e.value?.length ?? 4) + 48;
      if (batch.length > 0 && size + s > CHUNK_BYTES) {
        out.push(jsonPayload({ e: batch }));
        batch = [];
        size = 0;
      }
      batch.push(item);
      size += s;
    }
    if (batch.length > 0) out.push(jsonPayload({ e: batch }));
    return out;
  }

  merge(other: LwwMapData): LwwMapData {
    const m = new Map(this.entries);
    for (const [k, e] of other.entries) if (newerThan(e, m.get(k))) m.set(k, e);
    return new LwwMapData(m);
  }

  static decode(payload: Uint8Array): LwwMapData {
    const v = parseJsonPayload(payload, 'lww-map');
    if (!isPlainObject(v)) throw new MeshMalformedError('lww-map: not an object');
    exactKeys(v, ['e'], 'lww-map');
    const list = v['e'];
    if (!Array.isArray(list)) throw new MeshMalformedError('lww-map: "e" is not an array');
    const m = new Map<string, LwwEntry>();
    for (const item of list) {
      if (!Array.isArray(item) || item.length !== 4) throw new MeshMalformedError('lww-map: entry is not [key, value, ts, origin]');
      const [k, value, ts, origin] = item as unknown[];
      if (typeof k !== 'string' || k.length === 0 || k.length > MAX_KEY) throw new MeshMalformedError('lww-map: bad key');
      if (value !== null && (typeof value !== 'string' || value.length > MAX_VALUE)) throw new MeshMalformedError(`lww-map: bad value for ${k}`);
      if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) throw new MeshMalformedError(`lww-map: bad ts for ${k}`);
      if (!isPeerId(origin)) throw new MeshMalformedError(`lww-map: bad origin for ${k}`);
      const e: LwwEntry = { value: value as string | null, ts, origin };
      if (newerThan(e, m.get(k))) m.set(k, e);
    }
    return new LwwMapData(m);
  }
}

export class LwwMap implements GossipChannelState<LwwMapData> {
  private readonly map = new Map<string, LwwEntry>();
  private sender: GossipSender<LwwMapData> | undefined;
  private lastTs = 0;

  constructor(private readonly self: PeerId, private readonly clock: () => number) {}

  setSender(sender: GossipSender<LwwMapData>): void {
    this.sender = sender;
  }

  set(key: string, value: string): void {
    this.write(key, value);
  }

  delete(key: string): void {
    this.write(key, null);
  }

  private write(key: string, value: string | null): void {
    if (key.length === 0 || key.length > MAX_KEY) throw new RangeError('key must be 1..256 characters');
    if (value !== null && value.length > MAX_VALUE) throw new RangeError('value too long');
    // Never behind our own last write nor the newest write we have seen for
    // the key, so a local write always wins locally even if our clock lags.
    const ts = Math.max(Math.floor(this.clock()), this.lastTs + 1, (this.map.get(key)?.ts ?? -1) + 1);
    this.lastTs = ts;
    const e: LwwEntry = { value, ts, origin: this.self };
    this.map.set(key, e);
    this.sender?.gossipBroadcast(new LwwMapData(new Map([[key, e]])));
  }

  get(key: string): string | undefined {
    return this.map.get(key)?.value ?? undefined;
  }

  /** Live keys and values, sorted by key. */
  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (const [k, e] of this.map) if (e.value !== null) out.push([k, e.value]);
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Equal for two maps holding the same entries (tombstones included); for convergence checks. */
  fingerprint(): string {
    let h1 = 0;
    let h2 = 0;
    for (const [k, e] of this.map) {
      const s = `${k}\u0000${e.value ?? '\u0001'}\u0000${e.ts}\u0000${e.origin}`;
      let a = 0x811c9dc5;
      let b = 0x9747b28c;
      for (let i = 0; i < s.length; i++) {
        a = Math.imul(a ^ s.charCodeAt(i), 0x01000193);
        b = Math.imul(b ^ s.charCodeAt(i), 0x5bd1e995);
        b ^= b >>> 15;
      }
      h1 = (h1 + (a >>> 0)) >>> 0;
      h2 = (h2 + (b >>> 0)) >>> 0;
    }
    return `${this.map.size}:${h1.toString(16)}:${h2.toString(16)}`;
  }

  /** Merges and returns the entries that changed, or undefined. */
  mergeData(d: LwwMapData): LwwMapData | undefined {
    const changed = new Map<string, LwwEntry>();
    for (const [k, e] of d.entries) {
      if (newerThan(e, this.map.get(k))) {
        this.map.set(k, e);
        changed.set(k, e);
        if (e.origin === this.self && e.ts > this.lastTs) this.lastTs = e.ts;
      }
    }
    return changed.size > 0 ? new LwwMapData(changed) : undefined;
  }

  gossip(): LwwMapData | undefined {
    return this.map.size > 0 ? new LwwMapData(new Map(this.map)) : undefined;
  }

  onGossip(payload: Uint8Array): LwwMapData | undefined {
    return this.mergeData(LwwMapData.decode(payload));
  }

  onGossipBroadcast(_src: PeerId, payload: Uint8Array): void {
    this.mergeData(LwwMapData.decode(payload));
  }

  onGossipUnicast(_src: PeerId, payload: Uint8Array): void {
    this.mergeData(LwwMapData.decode(payload));
  }
}
