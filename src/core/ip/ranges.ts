import { type Family, type Ip, formatIp, tryParseIp } from './addr.js';
import { cidrLast, tryParseCidr } from './cidr.js';

/** An inclusive interval of address values of one family. */
export interface Interval {
  readonly first: bigint;
  readonly last: bigint;
}

/**
 * Parses `IP`, `IP-IP` or `CIDR` into an interval; undefined when malformed
 * or when the family differs from `family`.
 */
export function tryParseInterval(s: string, family?: Family): { family: Family; interval: Interval } | undefined {
  if (typeof s !== 'string') return undefined;
  const dash = s.indexOf('-');
  if (dash > 0) {
    const a = tryParseIp(s.slice(0, dash).trim());
    const b = tryParseIp(s.slice(dash + 1).trim());
    if (!a || !b || a.family !== b.family || a.value > b.value) return undefined;
    if (family && a.family !== family) return undefined;
    return { family: a.family, interval: { first: a.value, last: b.value } };
  }
  if (s.includes('/')) {
    const c = tryParseCidr(s, true);
    if (!c || (family && c.family !== family)) return undefined;
    return { family: c.family, interval: { first: c.base, last: cidrLast(c) } };
  }
  const ip = tryParseIp(s);
  if (!ip || (family && ip.family !== family)) return undefined;
  return { family: ip.family, interval: { first: ip.value, last: ip.value } };
}

export function formatInterval(family: Family, i: Interval): string {
  const a = formatIp({ family, value: i.first });
  return i.first === i.last ? a : `${a}-${formatIp({ family, value: i.last })}`;
}

/** Sorts and merges overlapping or adjacent intervals. */
export function normalize(list: readonly Interval[]): Interval[] {
  const sorted = [...list].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const out: Interval[] = [];
  for (const i of sorted) {
    const prev = out[out.length - 1];
    if (prev && i.first <= prev.last + 1n) {
      if (i.last > prev.last) out[out.length - 1] = { first: prev.first, last: i.last };
    } else {
      out.push(i);
    }
  }
  return out;
}

/** `a` minus `b`; both normalized. */
export function subtract(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const x of a) {
    let pieces: Interval[] = [x];
    for (const y of b) {
      const next: Interval[] = [];
      for (const p of pieces) {
        if (y.last < p.first || y.first > p.last) { next.push(p); continue; }
        if (y.first > p.first) next.push({ first: p.first, last: y.first - 1n });
        if (y.last < p.last) next.push({ first: y.last + 1n, last: p.last });
      }
      pieces = next;
      if (pieces.length === 0) break;
    }
    out.push(...pieces);
  }
  return normalize(out);
}

export function intersect(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const x of a) for (const y of b) {
    const first = x.first > y.first ? x.first : y.first;
    const last = x.last < y.last ? x.last : y.last;
    if (first <= last) out.push({ first, last });
  }
  return normalize(out);
}

export function totalSize(list: readonly Interval[]): bigint {
  let n = 0n;
  for (const i of list) n += i.last - i.first + 1n;
  return n;
}

export function intervalsContain(list: readonly Interval[], v: bigint): boolean {
  for (const i of list) if (v >= i.first && v <= i.last) return true;
  return false;
}

export function intervalsOverlap(a: readonly Interval[], b: readonly Interval[]): boolean {
  return intersect(a, b).length > 0;
}

/**
 * Visits the values of `list` (normalized) in order starting at `from`
 * (wrapping around to the start), at most `limit` values. Generators keep the
 * allocator's scan lazy: a free subnet costs one step, not a walk.
 */
export function* walkFrom(list: readonly Interval[], from: bigint, limit?: bigint): Generator<bigint> {
  if (list.length === 0) return;
  let budget = limit ?? totalSize(list);
  let idx = list.findIndex((i) => from <= i.last);
  let v: bigint;
  if (idx < 0) { idx = 0; v = list[0]!.first; } else { v = from < list[idx]!.first ? list[idx]!.first : from; }
  while (budget > 0n) {
    yield v;
    budget--;
    const cur = list[idx]!;
    if (v < cur.last) { v++; continue; }
    idx = (idx + 1) % list.length;
    v = list[idx]!.first;
  }
}

export function ipsOf(family: Family, list: readonly Interval[], max = 1000): Ip[] {
  const out: Ip[] = [];
  for (const i of list) for (let v = i.first; v <= i.last && out.length < max; v++) out.push({ family, value: v });
  return out;
}
