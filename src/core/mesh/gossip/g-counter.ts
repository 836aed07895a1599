import { MeshMalformedError } from '../../errors.js';
import { isPeerId, type PeerId } from '../peer-id.js';
import type { GossipChannelState, GossipData, GossipSender } from './interfaces.js';
import { exactKeys, isPlainObject, jsonPayload, parseJsonPayload } from './json-payload.js';

/**
 * Grow-only counter: each peer counts in its own slot, the value is the sum,
 * and merge takes the maximum per slot. The smallest useful CRDT; it shows
 * the channel contract and is what the simulation tests count with.
 *
 * Payload: `{"c":{"<peer id>":<count>,...}}`, counts non-negative safe integers.
 */
export class GCounterData implements GossipData<GCounterData> {
  constructor(readonly counts: ReadonlyMap<PeerId, number>) {}

  encode(): Uint8Array[] {
    return [jsonPayload({ c: Object.fromEntries(this.counts) })];
  }

  merge(other: GCounterData): GCounterData {
    const m = new Map(this.counts);
    for (const [p, n] of other.counts) if ((m.get(p) ?? -1) < n) m.set(p, n);
    return new GCounterData(m);
  }

  static decode(payload: Uint8Array): GCounterData {
    const v = parseJsonPayload(payload, 'g-counter');
    if (!isPlainObject(v)) throw new MeshMalformedError('g-counter: not an object');
    exactKeys(v, ['c'], 'g-counter');
    const c = v['c'];
    if (!isPlainObject(c)) throw new MeshMalformedError('g-counter: "c" is not an object');
    const m = new Map<PeerId, number>();
    for (const [k, n] of Object.entries(c)) {
      if (!isPeerId(k) || typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new MeshMalformedError(`g-counter: bad slot ${k}`);
      m.set(k, n);
    }
    return new GCounterData(m);
  }
}

export class GCounter implements GossipChannelState<GCounterData> {
  private readonly counts = new Map<PeerId, number>();
  private sender: GossipSender<GCounterData> | undefined;

  constructor(private readonly self: PeerId) {}

  setSender(sender: GossipSender<GCounterData>): void {
    this.sender = sender;
  }

  increment(by = 1): void {
    const n = (this.counts.get(this.self) ?? 0) + by;
    this.counts.set(this.self, n);
    this.sender?.gossipBroadcast(new GCounterData(new Map([[this.self, n]])));
  }

  value(): number {
    let s = 0;
    for (const n of this.counts.values()) s += n;
    return s;
  }

  /** Merges and returns the slots that grew, or undefined. */
  mergeData(d: GCounterData): GCounterData | undefined {
    const grew = new Map<PeerId, number>();
    for (const [p, n] of d.counts) {
      if ((this.counts.get(p) ?? -1) < n) {
        this.counts.set(p, n);
        grew.set(p, n);
      }
    }
    return grew.size > 0 ? new GCounterData(grew) : undefined;
  }

  gossip(): GCounterData | undefined {
    return this.counts.size > 0 ? new GCounterData(new Map(this.counts)) : undefined;
  }

  onGossip(payload: Uint8Array): GCounterData | undefined {
    return this.mergeData(GCounterData.decode(payload));
  }

  onGossipBroadcast(_src: PeerId, payload: Uint8Array): void {
    this.mergeData(GCounterData.decode(payload));
  }

  onGossipUnicast(_src: PeerId, payload: Uint8Array): void {
    this.mergeData(GCounterData.decode(payload));
  }
}
