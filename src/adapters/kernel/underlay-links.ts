/** Reads the router netns's links and global addresses for chooseUnderlay (src/core/cluster/underlay.ts). */
import type { UnderlayLink } from '../../core/cluster/underlay.js';
import { KernelError } from '../../core/errors.js';
import { runCommand } from './exec.js';

interface IpAddrJson {
  ifname?: unknown;
  flags?: unknown;
  mtu?: unknown;
  link_type?: unknown;
  linkinfo?: { info_kind?: unknown };
  addr_info?: { local?: unknown; scope?: unknown }[];
}

export function parseUnderlayLinks(json: string): UnderlayLink[] {
  const doc = JSON.parse(json) as unknown;
  if (!Array.isArray(doc)) return [];
  const out: UnderlayLink[] = [];
  for (const o of doc as IpAddrJson[]) {
    if (typeof o.ifname !== 'string') continue;
    const flags = Array.isArray(o.flags) ? (o.flags as unknown[]) : [];
    out.push({
      name: o.ifname,
      up: flags.includes('UP'),
      mtu: typeof o.mtu === 'number' ? o.mtu : 1500,
      loopback: o.link_type === 'loopback',
      ...(typeof o.linkinfo?.info_kind === 'string' ? { kind: o.linkinfo.info_kind } : {}),
      addresses: (o.addr_info ?? []).filter((a) => a.scope === 'global' && typeof a.local === 'string').map((a) => a.local as string),
    });
  }
  return out;
}

export async function readUnderlayLinks(): Promise<UnderlayLink[]> {
  const r = await runCommand('ip', ['-d', '-j', 'addr', 'show']);
  if (r.code !== 0) throw new KernelError(`ip addr show failed: ${r.stderr.trim()}`);
  return parseUnderlayLinks(r.stdout);
}
