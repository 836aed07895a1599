/**
 * Virtual time: a binary heap of callbacks ordered by (time, insertion
 * order), so equal times run first-in first-out and a run is reproducible.
 */
export class EventQueue {
  private heap: { t: number; seq: number; fn: () => void }[] = [];
  private seq = 0;
  private clock = 0;

  get now(): number {
    return this.clock;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Runs `fn` at virtual time `t` (not before now). */
  at(t: number, fn: () => void): void {
    const item = { t: Math.max(t, this.clock), seq: this.seq++, fn };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  peekTime(): number | undefined {
    return this.heap[0]?.t;
  }

  /** Runs the earliest event; false when none is left. */
  step(): boolean {
    const h = this.heap;
    const top = h[0];
    if (!top) return false;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    this.clock = top.t;
    top.fn();
    return true;
  }

  /** Moves the clock forward with nothing to run (time passes in a quiet network). */
  advanceTo(t: number): void {
    if (t > this.clock) this.clock = t;
  }
}

function less(a: { t: number; seq: number }, b: { t: number; seq: number }): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}
