/**
 * The ring's invariants as code. Returns the list of violations (empty when
 * the ring is sound); tests assert it after every step, decode relies on the
 * same rules.
 */
import { normalizeVotes } from './model.js';
import { resolvePeer, segments } from './resolve.js';
import type { Ring } from './types.js';

export function ringViolations(ring: Ring): string[] {
  const v: string[] = [];
  const es = ring.entries;
  if (es.length === 0) v.push('no tokens');
  else if (es[0]!.start !== ring.first) v.push('first token does not start the range');
  for (let i = 0; i < es.length; i++) {
    const e = es[i]!;
    if (e.start < ring.first || e.start > ring.last) v.push(`token ${i} outside the range`);
    if (i > 0 && es[i - 1]!.start >= e.start) v.push(`tokens ${i - 1} and ${i} not strictly sorted`);
    if (!ring.peers.has(e.owner)) v.push(`token ${i} owned by unknown peer ${e.owner}`);
    if (!Number.isSafeInteger(e.version) || e.version < 0) v.push(`token ${i} has a bad version`);
    // free may exceed the span after a merge inserted a token behind it (advisory; readers clamp).
    if (e.free < 0n || e.free > ring.last - ring.first + 1n) v.push(`token ${i} free count ${e.free} exceeds the range`);
  }
  for (const [id, rec] of ring.peers) {
    if (rec.retired && !ring.peers.has(rec.retired.heir)) v.push(`peer ${id} retired to unknown heir ${rec.retired.heir}`);
    if (rec.retired && rec.retired.heir === id) v.push(`peer ${id} is its own heir`);
  }
  if (normalizeVotes(ring.peers, ring.votes) !== ring.votes) v.push('votes not normalized');
  // Exactly-once coverage, checked on the resolved spans.
  let expect = ring.first;
  for (const s of segments(ring)) {
    if (s.first !== expect) v.push(`span at ${s.first} leaves a gap or overlap (expected ${expect})`);
    if (s.last < s.first) v.push(`empty span at ${s.first}`);
    if (resolvePeer(ring, s.owner).owner !== s.owner) v.push(`span at ${s.first} not resolved`);
    expect = s.last + 1n;
  }
  if (es.length > 0 && expect !== ring.last + 1n) v.push('spans do not end at the end of the range');
  return v;
}
