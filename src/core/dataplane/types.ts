/**
 * What the daemon asks of the kernel, as data. The daemon computes these
 * specs from the store; a DataPlane implementation (src/adapters/kernel)
 * diffs them against what exists and applies the difference idempotently.
 */

/** A route as CNI describes it. `gw` absent means "via the interface's gateway" for default routes. */
export interface RouteSpec {
  readonly dst: string; // CIDR
  readonly gw?: string;
}

/** One Linux bridge per weft network, carrying the gateway address of each subnet it serves. */
export interface BridgeSpec {
  readonly name: string; // <= 15 chars
  readonly network: string; // weft/CNI network name, recorded as the link alias `weft:<network>` to mark ownership
  readonly mtu: number;
  readonly addresses: readonly string[]; // gateway addresses with prefix, e.g. 10.32.0.1/12
  /** Pins the bridge MAC (the gateway's MAC as containers see it). Absent: a random MAC chosen at creation. */
  readonly mac?: string;
}

/** What creating a veth pair needs, known before the addresses are allocated. */
export interface VethPrepareSpec {
  readonly netns: string;
  readonly ifname: string;
  readonly hostIfname: string;
  readonly bridge: string;
  readonly mtu: number;
  readonly mac?: string;
  readonly hairpin: boolean;
}

/** A pair prepareVeth started; discard() removes it unless an attachVeth consumed it (waiting for the creation to finish first). */
export interface PreparedVeth {
  readonly hostIfname: string;
  discard(): Promise<void>;
}

export interface VethAttachSpec {
  readonly netns: string; // path to the container's netns
  readonly ifname: string; // name inside the container (CNI_IFNAME)
  readonly hostIfname: string; // name of the host end, <= 15 chars
  readonly bridge: string;
  readonly mtu: number;
  readonly mac?: string; // container side MAC, if requested
  readonly addresses: readonly string[]; // container addresses with prefix
  readonly gateways: readonly string[]; // gateways for default routes (one per family), may be empty
  readonly routes: readonly RouteSpec[];
  readonly hairpin: boolean;
}

export interface MacvlanAttachSpec {
  readonly netns: string;
  readonly ifname: string;
  readonly master: string; // parent device in the daemon's netns
  readonly mode: 'bridge' | 'private' | 'vepa' | 'passthru';
  readonly mtu: number;
  readonly mac?: string;
  readonly addresses: readonly string[];
  readonly gateways: readonly string[];
  readonly routes: readonly RouteSpec[];
}

export interface AttachResult {
  readonly containerMac: string;
  readonly hostMac?: string; // veth host end
  readonly bridgeMac?: string;
}

export interface PortMappingSpec {
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  readonly hostIP?: string;
  readonly containerIp: string;
}

/** The whole of weft's nftables table, rendered atomically. */
export interface NatSpec {
  readonly masquerade: readonly string[]; // source CIDRs to masquerade when leaving their own prefix
  readonly portMappings: readonly PortMappingSpec[];
  /**
   * Conntrack bypass: traffic between two addresses of one of these subnets,
   * neither of them its gateway, is not tracked (it is bridged, never NATed).
   */
  readonly untracked?: readonly UntrackedSubnet[];
  /** Conntrack bypass: the overlay's VXLAN packets to and from this host's underlay address are not tracked. */
  readonly tunnel?: TunnelSpec;
}

export interface UntrackedSubnet {
  readonly cidr: string;
  readonly gateway?: string;
}

export interface TunnelSpec {
  /** This host's underlay address. */
  readonly local: string;
  /** The VXLAN UDP port. */
  readonly port: number;
}

export interface ContainerIfaceState {
  readonly ifname: string;
  readonly mac: string;
  readonly up: boolean;
  readonly mtu: number;
  readonly addresses: readonly string[]; // with prefix
  readonly routes: readonly { dst: string; gw?: string }[];
}

export interface HostLinkState {
  readonly name: string;
  readonly master?: string;
  readonly up: boolean;
  readonly kind?: string;
  readonly mac: string;
  readonly alias?: string;
  readonly mtu?: number;
}

/** Kernel features weft may use; probed once at start and shown in `weft status`. */
export interface KernelFeatures {
  readonly bridge: boolean;
  readonly veth: boolean;
  readonly macvlan: boolean;
  readonly vxlan: boolean;
  readonly ipvlan: boolean;
  readonly vlan: boolean;
  readonly nftables: boolean;
}

/**
 * How veths are programmed: in process over rtnetlink, or by spawning ip(8)
 * (the fallback when the native pieces cannot load). Shown by `weft status`.
 */
export interface VethProgramming {
  readonly mode: 'netlink' | 'ip';
  /** Why the fallback is in use. */
  readonly reason?: string;
  /** netlink: the veth pair is created on libuv's thread pool while the address is allocated (prepareVeth). */
  readonly prepared?: boolean;
}

export interface DataPlane {
  probe(): Promise<KernelFeatures>;
  /** How veths are programmed (absent: the implementation does not say). */
  vethProgramming?(): VethProgramming;
  /** Turns on forwarding in the daemon's netns for the given families. */
  enableForwarding(families: readonly (4 | 6)[]): Promise<void>;
  ensureBridge(spec: BridgeSpec): Promise<{ mac: string }>;
  removeBridge(name: string): Promise<void>;
  /** Bridges (in the daemon's netns) that carry weft's ownership alias, with the network they serve and how many weft VXLAN ports they have. */
  listOwnedBridges(): Promise<{ name: string; network: string; overlayPorts: number }[]>;
  /** Host ends of veths (in the daemon's netns) that carry weft's port alias. */
  listOwnedPorts(): Promise<{ name: string; bridge: string; mac: string }[]>;
  /** Deletes such a host end (and so its container end) if it still has this MAC; false when it is gone, another veth, or not weft's. */
  removeOwnedPort(name: string, mac: string): Promise<boolean>;
  /** Creates the veth pair, configures both ends; on any failure undoes what it did and throws. */
  /**
   * Starts creating the veth pair of an attach ahead of it (off the main
   * thread, so the kernel's work overlaps with the caller's allocation).
   * Undefined when it cannot: attachVeth then creates the pair itself.
   */
  prepareVeth?(spec: VethPrepareSpec): PreparedVeth | undefined;
  /** `prepared`: from prepareVeth for the same names; consumed by this call. */
  attachVeth(spec: VethAttachSpec, prepared?: PreparedVeth): Promise<AttachResult>;
  /** Idempotent: succeeds when the netns or the links are already gone. */
  detachVeth(args: { netns?: string; ifname: string; hostIfname: string }): Promise<void>;
  attachMacvlan(spec: MacvlanAttachSpec): Promise<AttachResult>;
  detachMacvlan(args: { netns?: string; ifname: string }): Promise<void>;
  /** undefined when the netns is gone or the interface is absent. */
  inspectContainerIface(netns: string, ifname: string): Promise<ContainerIfaceState | undefined>;
  hostLink(name: string): Promise<HostLinkState | undefined>;
  listHostLinks(): Promise<HostLinkState[]>;
  /** True when `path` exists and is a network namespace. */
  isNetns(path: string): boolean;
  /** Replaces weft's nftables table when the rendered ruleset differs from the last one applied. */
  applyNat(spec: NatSpec): Promise<void>;
  removeNat(): Promise<void>;
  /** Forgets the last applied ruleset so the next applyNat rewrites the table even if unchanged (someone may have flushed it). */
  forgetAppliedNat(): void;
}
