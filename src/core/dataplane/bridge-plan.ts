/**
 * Bridge reconciliation as data: given the desired BridgeSpec and what the
 * kernel reports, the list of changes that makes them equal. The adapter
 * renders the ops into one `ip -batch` run.
 *
 * Ownership: a bridge carries the alias `weft:<network>`. weft treats every
 * global-scope address on a bridge it owns as its own (iproute2 6.1 cannot tag
 * addresses with IFA_PROTO), so addresses no longer in the spec are removed.
 * A link with the bridge's name but without weft's alias for this network is
 * someone else's and is never modified.
 */
import { ConflictError } from '../errors.js';
import { assertIfname, networkFromAlias, ownerAlias, parsePortAlias } from './names.js';
import { assertBatchToken, assertMtu, canonicalAddress, canonicalMac } from './spec-checks.js';
import type { BridgeSpec, HostLinkState } from './types.js';

export type BridgeOp =
  | { readonly kind: 'create'; readonly name: string; readonly mtu: number; readonly mac?: string }
  | { readonly kind: 'set-alias'; readonly name: string; readonly alias: string }
  | { readonly kind: 'set-mtu'; readonly name: string; readonly mtu: number }
  | { readonly kind: 'set-mac'; readonly name: string; readonly mac: string }
  | { readonly kind: 'addr-del'; readonly name: string; readonly address: string }
  | { readonly kind: 'addr-add'; readonly name: string; readonly address: string }
  | { readonly kind: 'up'; readonly name: string };

export interface PlanBridgeOptions {
  /**
   * MAC for a bridge that has to be created when the spec names none. A bridge
   * created without an explicit address takes the lowest MAC of its ports and
   * changes it as containers come and go, which breaks the containers' ARP
   * entry for the gateway; an explicit address pins it.
   */
  readonly macForNewBridge?: string;
}

function isLinkLocalV6(text: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(text);
}

/** Desired addresses, canonical and de-duplicated, in spec order. */
function desiredAddresses(spec: BridgeSpec): string[] {
  const out: string[] = [];
  for (const a of spec.addresses) {
    const t = canonicalAddress(a, `bridge ${spec.name} address`).text;
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

export function checkBridgeSpec(spec: BridgeSpec): void {
  assertIfname(spec.name, 'bridge name');
  assertMtu(spec.mtu, `bridge ${spec.name} mtu`);
  assertBatchToken(ownerAlias(spec.network), 'network name');
  if (spec.mac !== undefined) canonicalMac(spec.mac, `bridge ${spec.name} mac`);
}

/**
 * @param observed the link named spec.name, or undefined when absent
 * @param observedAddrs its addresses with prefix (any form; link-local v6 is ignored)
 * @throws ConflictError when a link of that name exists but is not weft's bridge for spec.network
 */
export function planBridge(spec: BridgeSpec, observed: HostLinkState | undefined, observedAddrs: readonly string[], opts: PlanBridgeOptions = {}): BridgeOp[] {
  checkBridgeSpec(spec);
  const name = spec.name;
  const want = desiredAddresses(spec);
  const ops: BridgeOp[] = [];
  const mac = spec.mac !== undefined ? canonicalMac(spec.mac) : opts.macForNewBridge !== undefined ? canonicalMac(opts.macForNewBridge, 'new bridge mac') : undefined;

  if (observed === undefined) {
    ops.push({ kind: 'create', name, mtu: spec.mtu, ...(mac !== undefined ? { mac } : {}) });
    ops.push({ kind: 'set-alias', name, alias: ownerAlias(spec.network) });
    for (const address of want) ops.push({ kind: 'addr-add', name, address });
    ops.push({ kind: 'up', name });
    return ops;
  }

  if (observed.kind !== 'bridge') {
    throw new ConflictError(`link "${name}" exists but is a ${observed.kind ?? 'device of unknown kind'}, not a bridge`, {
      hint: `remove it or choose another network name; weft will not modify links it does not own`,
    });
  }
  const owner = networkFromAlias(observed.alias);
  if (owner !== spec.network) {
    throw new ConflictError(
      owner === undefined
        ? `bridge "${name}" exists but is not managed by weft (no "${ownerAlias(spec.network)}" alias)`
        : `bridge "${name}" belongs to weft network "${owner}", not "${spec.network}"`,
      { hint: owner === undefined ? `delete it (ip link del ${name}) or set its alias to ${ownerAlias(spec.network)} to hand it to weft` : 'two networks map to the same bridge name; rename one' },
    );
  }

  if (observed.mtu !== undefined && observed.mtu !== spec.mtu) ops.push({ kind: 'set-mtu', name, mtu: spec.mtu });
  if (spec.mac !== undefined && observed.mac.toLowerCase() !== canonicalMac(spec.mac)) ops.push({ kind: 'set-mac', name, mac: canonicalMac(spec.mac) });

  const have = new Set<string>();
  for (const a of observedAddrs) {
    const t = canonicalAddress(a, `observed address of ${name}`).text;
    if (isLinkLocalV6(t)) continue; // the kernel's own fe80:: address; never ours to remove
    have.add(t);
  }
  // Deletions first: moving a gateway between prefixes of the same address must not collide.
  for (const t of [...have].sort()) if (!want.includes(t)) ops.push({ kind: 'addr-del', name, address: t });
  for (const t of want) if (!have.has(t)) ops.push({ kind: 'addr-add', name, address: t });
  if (!observed.up) ops.push({ kind: 'up', name });
  return ops;
}

/** `ip -batch` lines for the ops (the adapter runs them in one process). */
export function renderBridgeOps(ops: readonly BridgeOp[]): string[] {
  return ops.map((op) => {
    switch (op.kind) {
      case 'create':
        return `link add name ${op.name}${op.mac !== undefined ? ` address ${op.mac}` : ''} mtu ${op.mtu} type bridge`;
      case 'set-alias':
        return `link set dev ${op.name} alias ${op.alias}`;
      case 'set-mtu':
        return `link set dev ${op.name} mtu ${op.mtu}`;
      case 'set-mac':
        return `link set dev ${op.name} address ${op.mac}`;
      case 'addr-del':
        return `addr del ${op.address} dev ${op.name}`;
      case 'addr-add':
        // nodad: a gateway must answer at once; DAD would leave it tentative for ~1 s.
        return `addr add ${op.address} dev ${op.name}${op.address.includes(':') ? ' nodad' : ''}`;
      case 'up':
        return `link set dev ${op.name} up`;
    }
  });
}

/**
 * `ip -batch` lines that put weft's veth host ends back on a bridge that was
 * re-created: deleting a bridge releases its ports, and the kernel does not
 * re-add them when a bridge of the same name comes back. Ports are found by
 * their `weft-port:<bridge>` alias.
 */
export function planPortReattach(bridge: string, links: readonly HostLinkState[]): string[] {
  const lines: string[] = [];
  for (const l of links) {
    const port = parsePortAlias(l.alias);
    if (port === undefined || port.bridge !== bridge || l.master === bridge || l.kind !== 'veth') continue;
    lines.push(`link set dev ${l.name} master ${bridge}`);
    if (port.hairpin) lines.push(`link set dev ${l.name} type bridge_slave hairpin on`);
    lines.push(`link set dev ${l.name} up`);
  }
  return lines;
}
