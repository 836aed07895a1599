/**
 * Summaries of timing samples. Percentiles use the nearest-rank rule on the
 * sorted samples (index round(q·(n-1))), the same as the reference-plugin
 * harness in the research notes, so numbers are comparable with those.
 */

export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[i]!;
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : Number.NaN;
  return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), min: s[0] ?? Number.NaN, max: s[s.length - 1] ?? Number.NaN, mean };
}

/** p50 of each quarter of the samples in the order they were taken (growth with the number of containers). */
export function quarterMedians(samples: readonly number[]): number[] {
  const k = Math.floor(samples.length / 4);
  if (k === 0) return [];
  return [0, 1, 2, 3].map((j) => quantile([...samples.slice(j * k, (j + 1) * k)].sort((a, b) => a - b), 0.5));
}

export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** One Prometheus histogram (one label set), cumulative bucket counts by upper bound. */
export interface Histogram {
  readonly buckets: { le: number; count: number }[];
  readonly sum: number;
  readonly count: number;
}

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

/** Extracts histogram `name` restricted to the samples whose labels include `match`. */
export function parseHistogram(exposition: string, name: string, match: Record<string, string>): Histogram {
  const buckets = new Map<number, number>();
  let sum = 0;
  let count = 0;
  for (const line of exposition.split('\n')) {
    const m = /^(\w+)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || !m[1]!.startsWith(name)) continue;
    const labels = parseLabels(m[2] ?? '');
    if (!Object.entries(match).every(([k, v]) => labels[k] === v)) continue;
    const v = Number(m[3]);
    if (m[1] === `${name}_bucket`) buckets.set(labels.le === '+Inf' ? Infinity : Number(labels.le), v);
    else if (m[1] === `${name}_sum`) sum = v;
    else if (m[1] === `${name}_count`) count = v;
  }
  return { buckets: [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([le, c]) => ({ le, count: c })), sum, count };
}

/** after − before, bucket by bucket (the requests made between two scrapes). */
export function histogramDelta(after: Histogram, before: Histogram): Histogram {
  const prev = new Map(before.buckets.map((b) => [b.le, b.count]));
  return { buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (prev.get(b.le) ?? 0) })), sum: after.sum - before.sum, count: after.count - before.count };
}

/**
 * Quantile estimated from cumulative buckets by linear interpolation inside
 * the bucket that holds it (what Prometheus' histogram_quantile does).
 */
export function histogramQuantile(h: Histogram, q: number): number {
  if (h.count <= 0) return Number.NaN;
  const rank = q * h.count;
  let lower = 0;
  let below = 0;
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lower;
      const inBucket = b.count - below;
      return inBucket <= 0 ? b.le : lower + (b.le - lower) * ((rank - below) / inBucket);
    }
    lower = b.le;
    below = b.count;
  }
  return lower;
}
