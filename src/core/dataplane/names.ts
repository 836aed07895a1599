/**
 * Names of the kernel objects weft creates. Linux caps interface names at 15
 * bytes (IFNAMSIZ - 1), so names derived from long ids are hashed; the hash is
 * stable so the daemon can find the host end of a veth again after a restart
 * from nothing but the container id and CNI_IFNAME.
 */
import { createHash } from 'node:crypto';
import { InvalidConfigError } from '../errors.js';

export const IFNAME_MAX = 15;
/** Every veth host end weft creates starts with this. */
export const HOST_VETH_PREFIX = 'wv';
/** Every bridge weft creates for a network other than `weft` starts with this. */
export const BRIDGE_PREFIX = 'wb';
/** The bridge of the default network keeps a readable name. */
export const DEFAULT_NETWORK = 'weft';
/** Link alias prefix that marks a link as weft's (bridges: `weft:<network>`). */
export const OWNER_ALIAS_PREFIX = 'weft:';

function hexHash(text: string, chars: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, chars);
}

/**
 * Host end of a container's veth: `wv` + 13 hex chars (52 bits) of
 * sha256(containerId/ifname). Two attachments collide with probability
 * ~n²/2⁵³, negligible for any realistic host.
 */
export function hostIfnameFor(containerId: string, ifname: string): string {
  return HOST_VETH_PREFIX + hexHash(`${containerId}/${ifname}`, IFNAME_MAX - HOST_VETH_PREFIX.length);
}

const HOST_IFNAME_RE = new RegExp(`^${HOST_VETH_PREFIX}[0-9a-f]{${IFNAME_MAX - HOST_VETH_PREFIX.length}}$`);

/** True for a name hostIfnameFor can make. */
export function isHostIfname(name: string): boolean {
  return HOST_IFNAME_RE.test(name);
}

/** `weft` for the default network, else `wb` + 12 hex chars of sha256(network). */
export function bridgeNameFor(network: string): string {
  if (network === DEFAULT_NETWORK) return DEFAULT_NETWORK;
  return BRIDGE_PREFIX + hexHash(`network/${network}`, 12);
}

export function ownerAlias(network: string): string {
  return OWNER_ALIAS_PREFIX + network;
}

/**
 * Alias of a veth host end: records which bridge it belongs on (and whether
 * hairpin was on), so a bridge that was deleted and re-created gets its ports
 * back without the daemon replaying every attachment.
 */
export const PORT_ALIAS_PREFIX = 'weft-port:';

export function portAlias(bridge: string, hairpin: boolean): string {
  return `${PORT_ALIAS_PREFIX}${bridge}${hairpin ? ':hairpin' : ''}`;
}

export function parsePortAlias(alias: string | undefined): { bridge: string; hairpin: boolean } | undefined {
  if (alias === undefined || !alias.startsWith(PORT_ALIAS_PREFIX)) return undefined;
  const [bridge, flag] = alias.slice(PORT_ALIAS_PREFIX.length).split(':');
  if (bridge === undefined || bridge === '') return undefined;
  return { bridge, hairpin: flag === 'hairpin' };
}

/** The network named by a `weft:<network>` alias, or undefined when the alias is not weft's. */
export function networkFromAlias(alias: string | undefined): string | undefined {
  if (alias === undefined || !alias.startsWith(OWNER_ALIAS_PREFIX)) return undefined;
  const network = alias.slice(OWNER_ALIAS_PREFIX.length);
  return network.length > 0 ? network : undefined;
}

/**
 * What the kernel accepts as an interface name (dev_valid_name): 1-15 bytes,
 * not `.`/`..`, no `/`, `:` or whitespace. We are stricter than the kernel
 * about printable ASCII because names end up in `ip -batch` lines.
 */
export function isValidIfname(name: string): boolean {
  if (typeof name !== 'string') return false;
  if (name.length === 0 || Buffer.byteLength(name) > IFNAME_MAX) return false;
  if (name === '.' || name === '..') return false;
  return /^[\x21-\x7e]+$/.test(name) && !/[/:"'\\#]/.test(name);
}

export function assertIfname(name: string, what: string): void {
  if (!isValidIfname(name)) {
    throw new InvalidConfigError(`${what} "${name}" is not a valid interface name`, {
      hint: 'interface names are 1-15 printable characters without "/", ":", quotes or whitespace',
    });
  }
}

// ---- overlay (VXLAN) devices: docs/overlay.md ----

/** Every VXLAN device weft creates for a network other than `weft` starts with this (data device). */
export const VXLAN_PREFIX = 'wx';
/** Relay VXLAN devices (the second VNI of a network, docs/overlay.md "Relay") start with this. */
export const VXLAN_RELAY_PREFIX = 'wr';
/** Link alias that marks a VXLAN device as weft's: `weft-vxlan:<role>:<network>`. */
export const VXLAN_ALIAS_PREFIX = 'weft-vxlan:';

export type VxlanRole = 'data' | 'relay';

/** `weft-vx` for the default network, else `wx` + 12 hex chars of sha256(network). */
export function vxlanNameFor(network: string): string {
  if (network === DEFAULT_NETWORK) return `${DEFAULT_NETWORK}-vx`;
  return VXLAN_PREFIX + hexHash(`vxlan/${network}`, 12);
}

/** `weft-vxr` for the default network, else `wr` + 12 hex chars of sha256(network). */
export function vxlanRelayNameFor(network: string): string {
  if (network === DEFAULT_NETWORK) return `${DEFAULT_NETWORK}-vxr`;
  return VXLAN_RELAY_PREFIX + hexHash(`vxlan-relay/${network}`, 12);
}

export function vxlanAlias(network: string, role: VxlanRole): string {
  return `${VXLAN_ALIAS_PREFIX}${role}:${network}`;
}

/** The network and role named by a `weft-vxlan:<role>:<network>` alias, or undefined when the alias is not one. */
export function parseVxlanAlias(alias: string | undefined): { network: string; role: VxlanRole } | undefined {
  if (alias === undefined || !alias.startsWith(VXLAN_ALIAS_PREFIX)) return undefined;
  const rest = alias.slice(VXLAN_ALIAS_PREFIX.length);
  const i = rest.indexOf(':');
  if (i < 0) return undefined;
  const role = rest.slice(0, i);
  const network = rest.slice(i + 1);
  if ((role !== 'data' && role !== 'relay') || network === '') return undefined;
  return { network, role };
}
