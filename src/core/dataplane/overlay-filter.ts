/**
 * weft's `bridge weft` nftables table: the loop guard of the relay design
 * (docs/overlay.md "Relay"). Frames that arrived from the overlay (any weft
 * VXLAN port) may leave through a VXLAN port only as unicast from a relay
 * port to a data port, so a frame crosses at most one relay and group-
 * addressed frames are never sent back into the overlay. Local traffic
 * costs one rule (the iifname set lookup).
 *
 * The table only exists while relay devices do; it is replaced atomically
 * (`table {}` + `delete table` + new table in one nft transaction) and is
 * recognised by a digest in its comment. Other tables are never touched, and
 * `inet weft` (NAT, nat-ruleset.ts) is a different table.
 */
import { createHash } from 'node:crypto';
import { assertIfname } from './names.js';
import type { OverlayFilterState, VxlanDevice } from './overlay-types.js';

export const OVERLAY_NFT_FAMILY = 'bridge';
export const OVERLAY_NFT_TABLE = 'weft';
const TABLE = `${OVERLAY_NFT_FAMILY} ${OVERLAY_NFT_TABLE}`;
const COMMENT_PREFIX = 'weft-overlay ';
/** Rules in the rendered table (forward: 1, from_overlay: 3). */
export const OVERLAY_FILTER_RULES = 4;

function nameSet(names: readonly string[]): string {
  return `{ ${names.map((n) => `"${n}"`).join(', ')} }`;
}

function body(overlay: readonly string[], relay: readonly string[]): string[] {
  return [
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    iifname ${nameSet(overlay)} jump from_overlay`,
    '  }',
    '  chain from_overlay {',
    // At most one relay hop: nothing that came from the overlay enters a relay device.
    `    oifname ${nameSet(relay)} counter drop`,
    // Broadcast/multicast from the overlay never goes back into it (no storms).
    `    oifname ${nameSet(overlay)} ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 counter drop`,
    // What is left is relayed unicast (relay port in, data port out); counted for status.
    `    oifname ${nameSet(overlay)} counter accept`,
    '  }',
  ];
}

/**
 * The table for these devices, or null when there is no relay device (then
 * no frame can go from the overlay back into it: data ports have hairpin
 * off, so no table is needed).
 */
export function renderOverlayFilter(devices: readonly VxlanDevice[]): { script: string; filter: OverlayFilterState } | null {
  const relay = devices.filter((d) => d.role === 'relay').map((d) => d.name).sort();
  if (relay.length === 0) return null;
  const overlay = devices.map((d) => d.name).sort();
  for (const n of overlay) assertIfname(n, 'vxlan device name');
  const lines = body(overlay, relay);
  const digest = createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
  const script = [`table ${TABLE} {}`, `delete table ${TABLE}`, `table ${TABLE} {`, `  comment "${COMMENT_PREFIX}${digest}"`, ...lines, '}', ''].join('\n');
  return { script, filter: { digest, rules: OVERLAY_FILTER_RULES } };
}

/** Removes weft's bridge table (and nothing else); succeeds when it does not exist. */
export function renderOverlayFilterRemoval(): string {
  return `table ${TABLE} {}\ndelete table ${TABLE}\n`;
}

/**
 * What `nft list table bridge weft` printed, as state: the digest from the
 * comment (empty when missing: someone else's table of that name, or an old
 * one) and the number of rules. undefined text (no table) gives null.
 */
export function parseOverlayFilterListing(text: string | undefined): OverlayFilterState | null {
  if (text === undefined) return null;
  const m = /comment "weft-overlay ([0-9a-f]+)"/.exec(text);
  let rules = 0;
  let inChain = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (/^chain \S+ \{$/.test(line)) inChain = true;
    else if (line === '}') inChain = false;
    else if (inChain && line !== '' && !line.startsWith('type ') && !line.startsWith('comment ') && !line.startsWith('policy ')) rules++;
  }
  return { digest: m?.[1] ?? '', rules };
}

export interface OverlayFilterCounters {
  /** Frames from the overlay that would have entered a relay device (a second relay hop, or a loop). */
  readonly relayLoopDrops: number;
  /** Group-addressed frames from the overlay that would have gone back into it. */
  readonly groupDrops: number;
  /** Unicast frames this host relayed (relay port in, data port out). */
  readonly relayed: number;
}

/** Packet counters of the table's three from_overlay rules, in order; zeros when absent. */
export function parseOverlayFilterCounters(text: string | undefined): OverlayFilterCounters {
  const counts = [...(text ?? '').matchAll(/counter packets (\d+) bytes \d+/g)].map((m) => Number(m[1]));
  return { relayLoopDrops: counts[0] ?? 0, groupDrops: counts[1] ?? 0, relayed: counts[2] ?? 0 };
}
