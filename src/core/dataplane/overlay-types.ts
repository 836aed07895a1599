/**
 * The cross-host data plane (docs/overlay.md) as data: what the daemon hands
 * the planner (OverlayInput), what the kernel should hold (OverlayState, the
 * same shape whether desired or read back), and the ordered changes between
 * the two (OverlayChange). Pure types; no I/O anywhere in overlay-*.ts of
 * src/core.
 */
import type { VxlanRole } from './names.js';

export type { VxlanRole } from './names.js';

/** IANA VXLAN port. */
export const VXLAN_PORT = 4789;
/** Outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8. */
export const VXLAN_OVERHEAD_V4 = 50;
/** Outer Ethernet 14 + IPv6 40 + UDP 8 + VXLAN 8. */
export const VXLAN_OVERHEAD_V6 = 70;
/** The relay VNI of a network is its VNI with this bit flipped. */
export const RELAY_VNI_BIT = 0x800000;
export const VNI_MAX = 0xffffff;
/** The FDB address of head-end replication entries (broadcast, multicast, unknown unicast). */
export const ZERO_MAC = '00:00:00:00:00:00';

// ---- planner input ----

export interface OverlayNetworkInput {
  /** weft network name; the VNI and device names derive from it. */
  readonly name: string;
  /** The network's bridge on this host (bridgeNameFor(name) in weft). */
  readonly bridge: string;
  /** Overrides the VNI derived from the name. Must be the same on every host. */
  readonly vni?: number;
  /** Container MTU of the network; the VXLAN devices get the same MTU. */
  readonly mtu: number;
}

export interface OverlayPeerInput {
  readonly peer: string;
  /** The peer's underlay (VTEP) address. */
  readonly ip: string;
  /**
   * Set when this host cannot reach the peer directly: the peer that relays
   * for us. It must itself be a direct peer that reaches `peer` directly
   * (one relay hop; docs/overlay.md "Relay").
   */
  readonly via?: string;
}

export interface OverlayEndpointInput {
  readonly network: string;
  /** Host the container runs on. Endpoints of the local peer are not programmed (they are on the bridge). */
  readonly peer: string;
  readonly mac: string;
  /** Container addresses, with or without prefix length. */
  readonly ips: readonly string[];
}

export interface OverlayInput {
  readonly localPeer: string;
  /** This host's underlay: VXLAN `local` and `dev`. */
  readonly underlay: { readonly ip: string; readonly dev: string };
  /** UDP port; default VXLAN_PORT. Must be the same on every host. */
  readonly port?: number;
  readonly networks: readonly OverlayNetworkInput[];
  readonly peers: readonly OverlayPeerInput[];
  readonly endpoints: readonly OverlayEndpointInput[];
}

export interface OverlayPlanOptions {
  /**
   * Program peers reached `via` a relay (needs relay devices and the
   * `bridge weft` nftables table). Default true; the adapter turns it off
   * when the kernel lacks nftables bridge filtering.
   */
  readonly relay?: boolean;
}

// ---- kernel state (desired or actual) ----

/** Bridge port settings of a VXLAN device. */
export interface BridgePortFlags {
  readonly hairpin: boolean;
  readonly learning: boolean;
  /** Unknown unicast. */
  readonly flood: boolean;
  readonly mcastFlood: boolean;
  readonly bcastFlood: boolean;
}

export interface VxlanDevice {
  readonly name: string;
  readonly network: string;
  readonly role: VxlanRole;
  readonly vni: number;
  readonly port: number;
  /** VXLAN `local`; null when the device has none. */
  readonly local: string | null;
  /** VXLAN `dev` (underlay device); null when the device has none. */
  readonly dev: string | null;
  readonly learning: boolean;
  readonly proxy: boolean;
  readonly mtu: number;
  /** Bridge it is enslaved to; null when none. */
  readonly master: string | null;
  readonly up: boolean;
  /** null when it is not a bridge port. */
  readonly portFlags: BridgePortFlags | null;
}

/** VXLAN FDB entry (`bridge fdb ... self`): frames to `mac` go to `dst`. */
export interface FdbEntry {
  readonly dev: string;
  readonly mac: string;
  readonly dst: string;
  /** State permanent and no per-entry vni/port/via: the form weft writes. */
  readonly permanent: boolean;
}

/** Bridge FDB entry on a VXLAN port (`bridge fdb ... master`). */
export interface MasterFdbEntry {
  readonly dev: string;
  readonly mac: string;
  /** `static` (weft's form); false for learned or other entries. */
  readonly static: boolean;
}

/** Neighbour entry on a VXLAN device: what `proxy` answers ARP/ND from. */
export interface NeighEntry {
  readonly dev: string;
  readonly ip: string;
  readonly mac: string;
  readonly permanent: boolean;
}

/** weft's `bridge weft` nftables table, identified by a digest of its rendered text. */
export interface OverlayFilterState {
  readonly digest: string;
  readonly rules: number;
}

export interface OverlayState {
  readonly devices: readonly VxlanDevice[];
  readonly fdb: readonly FdbEntry[];
  readonly masterFdb: readonly MasterFdbEntry[];
  readonly neigh: readonly NeighEntry[];
  /** null: no table (desired: none needed). */
  readonly filter: OverlayFilterState | null;
}

export const EMPTY_OVERLAY_STATE: OverlayState = { devices: [], fdb: [], masterFdb: [], neigh: [], filter: null };

// ---- planner output ----

export type OverlayNoteCode =
  | 'PEER_INVALID'
  | 'PEER_DUPLICATE'
  | 'FAMILY_MISMATCH'
  | 'RELAY_INVALID'
  | 'RELAY_DISABLED'
  | 'PEER_UNKNOWN'
  | 'NETWORK_UNKNOWN'
  | 'ENDPOINT_INVALID'
  | 'DUPLICATE_MAC'
  | 'DUPLICATE_IP';

/** Something of the input that was not programmed, and why (shown by `weft status`, logged). */
export interface OverlayNote {
  readonly code: OverlayNoteCode;
  readonly message: string;
  readonly peer?: string;
  readonly network?: string;
  readonly mac?: string;
}

export interface OverlayPeerRoute {
  readonly peer: string;
  readonly ip: string;
  /** Where its frames go: its own underlay address, or the relay's. */
  readonly nextHop: string;
  readonly via?: string;
}

export interface OverlayPlan {
  readonly desired: OverlayState;
  readonly notes: readonly OverlayNote[];
  /** Peers programmed, direct and relayed. */
  readonly routes: readonly OverlayPeerRoute[];
  readonly endpoints: number;
}

// ---- changes ----

export type OverlayChange =
  | { readonly kind: 'filter-apply'; readonly script: string; readonly filter: OverlayFilterState }
  | { readonly kind: 'filter-remove' }
  | { readonly kind: 'device-delete'; readonly name: string; readonly reason: 'unwanted' | 'replace' }
  | { readonly kind: 'device-create'; readonly device: VxlanDevice }
  | {
      readonly kind: 'device-update';
      readonly name: string;
      readonly mtu?: number;
      /** null: release from its bridge. */
      readonly master?: string | null;
      readonly portFlags?: BridgePortFlags;
      readonly up?: true;
    }
  | { readonly kind: 'fdb-add' | 'fdb-replace' | 'fdb-del'; readonly entry: FdbEntry }
  | { readonly kind: 'master-add' | 'master-replace' | 'master-del'; readonly entry: MasterFdbEntry }
  | { readonly kind: 'neigh-add' | 'neigh-replace' | 'neigh-del'; readonly entry: NeighEntry };

export type OverlayChangeKind = OverlayChange['kind'];

// ---- adapter-facing ----

export interface OverlayFeatures {
  /** VXLAN devices with nolearning/proxy can be created. */
  readonly vxlan: boolean;
  /** nftables `bridge` family filtering on iif/oif and destination MAC (needed for relaying). */
  readonly bridgeNft: boolean;
  readonly reasons: { readonly vxlan?: string; readonly bridgeNft?: string };
}

// ---- path MTU ----

export interface PathMtuResult {
  readonly peer: string;
  /** Underlay address probed. */
  readonly address: string;
  readonly ok: boolean;
  /** Outer IP packet size probed (container MTU + encapsulation overhead). */
  readonly size: number;
  /** ms since the epoch (the router stamps it from a monotonic clock: the wall clock at its start plus the time since). */
  readonly checkedAt: number;
  readonly error?: string;
}
