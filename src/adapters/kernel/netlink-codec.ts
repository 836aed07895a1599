/**
 * rtnetlink messages as bytes, both ways, for the in-process veth path
 * (netlink-attach.ts). Pure: no sockets, no namespaces; the unit tests feed
 * it bytes and read bytes back.
 *
 * The `netlink` package only moves messages (socket, sequence numbers,
 * multipart replies). Its IFLA_LINKINFO is an opaque Buffer, so veth
 * creation, bridge-port flags and the alias are encoded here, attribute by
 * attribute, the way ip(8) (iproute2 6.1) encodes the same commands: strings
 * that ip sends without a NUL (IFLA_INFO_KIND, IFLA_IFALIAS) are sent
 * without one here too, interface names with one.
 */
import { type Family, type Ip, formatIp } from '../../core/ip/addr.js';
import { formatCidr } from '../../core/ip/cidr.js';

// ---- constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h) ----

export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_GETROUTE = 26;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_ECHO = 0x8;
export const NLM_F_DUMP = 0x300;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

export const IFF_UP = 0x1;

export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
export const IFLA_LINKINFO = 18;
export const IFLA_IFALIAS = 20;
export const IFLA_NET_NS_FD = 28;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const IFLA_INFO_SLAVE_KIND = 4;
export const IFLA_INFO_SLAVE_DATA = 5;
export const VETH_INFO_PEER = 1;
/** IFLA_BRPORT_MODE: the bridge port's hairpin flag. */
export const IFLA_BRPORT_MODE = 4;

export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_F_NODAD = 0x02;

export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_TABLE = 15;
export const RT_TABLE_MAIN = 254;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_NOWHERE = 255;
export const RTN_UNICAST = 1;

const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;
const RTMSG_LEN = 12;

// ---- attributes ----

/** One attribute: 4-byte header (length, type), payload, padding to 4 bytes. */
export function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

export function attrU32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return attr(type, b);
}

export function attrU8(type: number, v: number): Buffer {
  return attr(type, Buffer.from([v & 0xff]));
}

/** A string attribute; `nul` adds the terminating NUL (ip sends one with names, none with kinds and aliases). */
export function attrStr(type: number, s: string, nul: boolean): Buffer {
  return attr(type, Buffer.from(nul ? `${s}\0` : s, 'utf8'));
}

/** A nested attribute (no NLA_F_NESTED bit, as iproute2 sends IFLA_LINKINFO). */
export function nested(type: number, children: readonly Buffer[]): Buffer {
  return attr(type, Buffer.concat(children));
}

/** Splits an attribute stream into (type, payload) pairs; the NLA_F_* bits are masked off the type. */
export function parseAttrs(buf: Buffer, offset = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = offset;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > buf.length) break;
    if (!out.has(type)) out.set(type, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

function cString(b: Buffer | undefined): string | undefined {
  if (b === undefined) return undefined;
  const z = b.indexOf(0);
  return b.toString('utf8', 0, z < 0 ? b.length : z);
}

function u32(b: Buffer | undefined): number | undefined {
  return b !== undefined && b.length >= 4 ? b.readUInt32LE(0) : undefined;
}

// ---- addresses as bytes ----

export function ipBytes(ip: Ip): Buffer {
  const n = ip.family === 4 ? 4 : 16;
  const b = Buffer.alloc(n);
  let v = ip.value;
  for (let i = n - 1; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

export function ipFromBytes(b: Buffer): Ip | undefined {
  if (b.length !== 4 && b.length !== 16) return undefined;
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return { family: b.length === 4 ? 4 : 6, value: v };
}

/** How ip(8) prints a link-layer address: colon hex; a 4-byte one (ipip, gre) as dotted quad. */
export function formatLinkAddress(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

// ---- fixed headers ----

function ifinfomsg(args: { family?: number; index?: number; flags?: number; change?: number } = {}): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(args.family ?? AF_UNSPEC, 0);
  b.writeInt32LE(args.index ?? 0, 4);
  b.writeUInt32LE((args.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((args.change ?? 0) >>> 0, 12);
  return b;
}

function ifaddrmsg(args: { family: number; prefixlen: number; flags: number; scope: number; index: number }): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN);
  b.writeUInt8(args.family, 0);
  b.writeUInt8(args.prefixlen, 1);
  b.writeUInt8(args.flags, 2);
  b.writeUInt8(args.scope, 3);
  b.writeUInt32LE(args.index, 4);
  return b;
}

function rtmsg(args: { family: number; dstLen: number; table: number; protocol: number; scope: number; type: number }): Buffer {
  const b = Buffer.alloc(RTMSG_LEN);
  b.writeUInt8(args.family, 0);
  b.writeUInt8(args.dstLen, 1);
  b.writeUInt8(args.table, 4);
  b.writeUInt8(args.protocol, 5);
  b.writeUInt8(args.scope, 6);
  b.writeUInt8(args.type, 7);
  return b;
}

// ---- requests ----

/** One rtnetlink request: message type, NLM_F_* flags (REQUEST and ACK are added by the socket), payload, and what it does in ip(8) words (for errors). */
export interface NlRequest {
  readonly type: number;
  readonly flags: number;
  readonly body: Buffer;
  readonly what: string;
  /** A route with a next hop: its ENETUNREACH/EHOSTUNREACH means the gateway is not reachable on-link. */
  readonly gateway?: boolean;
}

const familyOf = (f: Family): number => (f === 4 ? AF_INET : AF_INET6);

/** RTM_GETLINK of one link by name (the kernel looks IFLA_IFNAME up when the index is 0). */
export function getLinkByName(name: string): NlRequest {
  return { type: RTM_GETLINK, flags: 0, body: Buffer.concat([ifinfomsg(), attrStr(IFLA_IFNAME, name, true)]), what: `link show dev ${name}` };
}

/** `link del dev NAME`. */
export function deleteLinkByName(name: string): NlRequest {
  return { type: RTM_DELLINK, flags: 0, body: Buffer.concat([ifinfomsg(), attrStr(IFLA_IFNAME, name, true)]), what: `link del dev ${name}` };
}

const NLMSG_HDRLEN = 16;

/**
 * A whole message: nlmsghdr (length, type, flags with REQUEST and ACK, seq,
 * port 0) and the body. The ACK is what ends a transaction (rtnl.c).
 */
export function encodeMessage(req: NlRequest, seq: number): Buffer {
  const h = Buffer.alloc(NLMSG_HDRLEN);
  h.writeUInt32LE(NLMSG_HDRLEN + req.body.length, 0);
  h.writeUInt16LE(req.type, 4);
  h.writeUInt16LE(req.flags | NLM_F_REQUEST | NLM_F_ACK, 6);
  h.writeUInt32LE(seq >>> 0, 8);
  return Buffer.concat([h, req.body]);
}

export interface NlMessage {
  readonly type: number;
  readonly seq: number;
  readonly data: Buffer;
}

/** Messages packed back to back (each padded to 4 bytes); stops at the first truncated or malformed header. */
export function splitMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push({ type: buf.readUInt16LE(off + 4), seq: buf.readUInt32LE(off + 8), data: buf.subarray(off + NLMSG_HDRLEN, off + len) });
    off += (len + 3) & ~3;
  }
  return out;
}

export function getLinkByIndex(index: number): NlRequest {
  return { type: RTM_GETLINK, flags: 0, body: ifinfomsg({ index }), what: `link show index ${index}` };
}

export interface VethSpecBytes {
  readonly name: string;
  readonly mtu: number;
  /** ifindex of the bridge the host end is enslaved to at creation. */
  readonly master?: number;
  readonly peer: { readonly name: string; readonly mtu: number; readonly mac?: string; readonly netnsFd: number; readonly netnsLabel: string };
}

/**
 * RTM_NEWLINK for a veth pair whose peer is created directly inside the
 * container's netns (IFLA_NET_NS_FD inside VETH_INFO_PEER): no move, so no
 * ~20 ms RCU wait. IFLA_MASTER on a new link is applied by the kernel right
 * after registration; if that fails the link is unregistered again, so the
 * request creates either everything or nothing.
 */
export function newVeth(v: VethSpecBytes): NlRequest {
  const peer = Buffer.concat([
    ifinfomsg(),
    attrStr(IFLA_IFNAME, v.peer.name, true),
    attrU32(IFLA_MTU, v.peer.mtu),
    ...(v.peer.mac !== undefined ? [attr(IFLA_ADDRESS, macBytes(v.peer.mac))] : []),
    attrU32(IFLA_NET_NS_FD, v.peer.netnsFd),
  ]);
  const linkinfo = nested(IFLA_LINKINFO, [attrStr(IFLA_INFO_KIND, 'veth', false), nested(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, peer)])]);
  const body = Buffer.concat([ifinfomsg(), attrStr(IFLA_IFNAME, v.name, true), attrU32(IFLA_MTU, v.mtu), ...(v.master !== undefined ? [attrU32(IFLA_MASTER, v.master)] : []), linkinfo]);
  const what = `link add name ${v.name} mtu ${v.mtu}${v.master !== undefined ? ` master index ${v.master}` : ''} type veth peer name ${v.peer.name} mtu ${v.peer.mtu}${v.peer.mac !== undefined ? ` address ${v.peer.mac}` : ''} netns ${v.peer.netnsLabel}`;
  // ECHO: recent kernels answer with the new link (its IFLA_LINK is the peer's index); older ones just ACK.
  return { type: RTM_NEWLINK, flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO, body, what };
}

/**
 * RTM_NEWLINK on an existing link (by index, or by name when index is 0):
 * alias, bridge-port hairpin (IFLA_INFO_SLAVE_DATA, what `type bridge_slave
 * hairpin on` sends) and IFF_UP in one request. The kernel applies the port
 * flags first, then the alias, then the flags.
 */
export function configureLink(args: { index?: number; name?: string; alias?: string; hairpin?: boolean; up?: boolean }): NlRequest {
  const attrs: Buffer[] = [];
  if ((args.index ?? 0) === 0 && args.name !== undefined) attrs.push(attrStr(IFLA_IFNAME, args.name, true));
  if (args.alias !== undefined) attrs.push(attrStr(IFLA_IFALIAS, args.alias, false));
  if (args.hairpin) attrs.push(nested(IFLA_LINKINFO, [attrStr(IFLA_INFO_SLAVE_KIND, 'bridge', false), nested(IFLA_INFO_SLAVE_DATA, [attrU8(IFLA_BRPORT_MODE, 1)])]));
  const body = Buffer.concat([ifinfomsg({ index: args.index ?? 0, ...(args.up ? { flags: IFF_UP, change: IFF_UP } : {}) }), ...attrs]);
  const dev = args.name ?? `index ${args.index ?? 0}`;
  const parts = [
    ...(args.alias !== undefined ? [`alias ${args.alias}`] : []),
    ...(args.hairpin ? ['type bridge_slave hairpin on'] : []),
    ...(args.up ? ['up'] : []),
  ];
  return { type: RTM_NEWLINK, flags: 0, body, what: `link set dev ${dev} ${parts.join(' ')}`.trimEnd() };
}

/** `addr add A/P dev X [nodad]`: IFA_LOCAL and IFA_ADDRESS both set, as ip does for a non-peer address. */
export function newAddress(args: { ip: Ip; prefix: number; index: number; ifname: string; nodad: boolean }): NlRequest {
  const a = ipBytes(args.ip);
  const body = Buffer.concat([
    ifaddrmsg({ family: familyOf(args.ip.family), prefixlen: args.prefix, flags: args.nodad ? IFA_F_NODAD : 0, scope: RT_SCOPE_UNIVERSE, index: args.index }),
    attr(IFA_LOCAL, a),
    attr(IFA_ADDRESS, a),
  ]);
  return { type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_EXCL, body, what: `addr add ${formatIp(args.ip)}/${args.prefix} dev ${args.ifname}${args.nodad ? ' nodad' : ''}` };
}

/**
 * `route append DST [via GW] dev X`: main table, proto boot, scope link for
 * a device route and universe with a gateway (ip's defaults), CREATE|APPEND.
 */
export function appendRoute(args: { family: Family; dst: Ip; dstLen: number; via?: Ip; index: number; ifname: string }): NlRequest {
  const body = Buffer.concat([
    rtmsg({ family: familyOf(args.family), dstLen: args.dstLen, table: RT_TABLE_MAIN, protocol: RTPROT_BOOT, scope: args.via !== undefined ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK, type: RTN_UNICAST }),
    attr(RTA_DST, ipBytes(args.dst)),
    ...(args.via !== undefined ? [attr(RTA_GATEWAY, ipBytes(args.via))] : []),
    attrU32(RTA_OIF, args.index),
  ]);
  const what = `route append ${formatCidr({ family: args.family, base: args.dst.value, prefix: args.dstLen })}${args.via !== undefined ? ` via ${formatIp(args.via)}` : ''} dev ${args.ifname}`;
  return { type: RTM_NEWROUTE, flags: NLM_F_CREATE | NLM_F_APPEND, body, what, gateway: args.via !== undefined };
}

export function dumpAddresses(): NlRequest {
  return { type: RTM_GETADDR, flags: NLM_F_DUMP, body: ifaddrmsg({ family: AF_UNSPEC, prefixlen: 0, flags: 0, scope: 0, index: 0 }), what: 'addr show' };
}

export function dumpRoutes(family: Family): NlRequest {
  return { type: RTM_GETROUTE, flags: NLM_F_DUMP, body: rtmsg({ family: familyOf(family), dstLen: 0, table: 0, protocol: 0, scope: 0, type: 0 }), what: `route show table all (IPv${family})` };
}

// ---- replies ----

/** The errno (positive) of an NLMSG_ERROR payload; 0 is an ACK. */
export function decodeErrno(data: Buffer): number {
  return data.length >= 4 ? Math.abs(Math.min(0, data.readInt32LE(0))) : 0;
}

export interface NlLink {
  readonly index: number;
  readonly name: string;
  readonly flags: number;
  readonly up: boolean;
  readonly mtu: number;
  readonly mac: string;
  readonly master?: number;
  readonly alias?: string;
  readonly kind?: string;
  /** IFLA_LINK: the peer's (veth) or parent's index, possibly in another netns (the kernel omits it when equal to `index`). */
  readonly linkIndex?: number;
}

export function decodeLink(data: Buffer): NlLink {
  if (data.length < IFINFOMSG_LEN) throw new RangeError('short ifinfomsg');
  const index = data.readInt32LE(4);
  const flags = data.readUInt32LE(8);
  const a = parseAttrs(data, IFINFOMSG_LEN);
  const info = a.get(IFLA_LINKINFO);
  const kind = info !== undefined ? cString(parseAttrs(info).get(IFLA_INFO_KIND)) : undefined;
  const addr = a.get(IFLA_ADDRESS);
  const master = u32(a.get(IFLA_MASTER));
  const alias = cString(a.get(IFLA_IFALIAS));
  const linkIndex = u32(a.get(IFLA_LINK));
  return {
    index,
    name: cString(a.get(IFLA_IFNAME)) ?? '',
    flags,
    up: (flags & IFF_UP) !== 0,
    mtu: u32(a.get(IFLA_MTU)) ?? 0,
    mac: addr !== undefined ? formatLinkAddress(addr) : '',
    ...(master !== undefined && master !== 0 ? { master } : {}),
    ...(alias !== undefined && alias !== '' ? { alias } : {}),
    ...(kind !== undefined ? { kind } : {}),
    ...(linkIndex !== undefined ? { linkIndex } : {}),
  };
}

export interface NlAddress {
  readonly family: number;
  readonly prefixlen: number;
  readonly scope: number;
  readonly index: number;
  /** IFA_LOCAL, else IFA_ADDRESS: what ip prints as `local`. */
  readonly local?: Ip;
}

export function decodeAddress(data: Buffer): NlAddress {
  if (data.length < IFADDRMSG_LEN) throw new RangeError('short ifaddrmsg');
  const a = parseAttrs(data, IFADDRMSG_LEN);
  const raw = a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS);
  const local = raw !== undefined ? ipFromBytes(raw) : undefined;
  return { family: data.readUInt8(0), prefixlen: data.readUInt8(1), scope: data.readUInt8(3), index: data.readUInt32LE(4), ...(local ? { local } : {}) };
}

export interface NlRoute {
  readonly family: number;
  readonly dstLen: number;
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  readonly type: number;
  readonly dst?: Ip;
  readonly gateway?: Ip;
  readonly oif?: number;
}

export function decodeRoute(data: Buffer): NlRoute {
  if (data.length < RTMSG_LEN) throw new RangeError('short rtmsg');
  const a = parseAttrs(data, RTMSG_LEN);
  const dst = a.get(RTA_DST);
  const gw = a.get(RTA_GATEWAY);
  const dstIp = dst !== undefined ? ipFromBytes(dst) : undefined;
  const gwIp = gw !== undefined ? ipFromBytes(gw) : undefined;
  const oif = u32(a.get(RTA_OIF));
  return {
    family: data.readUInt8(0),
    dstLen: data.readUInt8(1),
    table: u32(a.get(RTA_TABLE)) ?? data.readUInt8(4),
    protocol: data.readUInt8(5),
    scope: data.readUInt8(6),
    type: data.readUInt8(7),
    ...(dstIp ? { dst: dstIp } : {}),
    ...(gwIp ? { gateway: gwIp } : {}),
    ...(oif !== undefined ? { oif } : {}),
  };
}

// ---- the state views the DataPlane reports (same rules as ip-json.ts applies to `ip -j`) ----

/** Global-scope addresses of one link, `10.32.0.5/12`, in dump order. */
export function globalAddresses(addrs: readonly NlAddress[], index: number): string[] {
  return addrs.filter((a) => a.index === index && a.scope === RT_SCOPE_UNIVERSE && a.local !== undefined).map((a) => `${formatIp(a.local!)}/${a.prefixlen}`);
}

/**
 * What `ip route show table all dev X` filtered like ip-json's parseRoutes
 * yields: main-table unicast routes through the link that the kernel did not
 * add by itself. A multipath route has no RTA_OIF, so `dev X` does not list it.
 */
export function ifaceRoutes(routes: readonly NlRoute[], index: number): { dst: string; gw?: string }[] {
  const out: { dst: string; gw?: string }[] = [];
  for (const r of routes) {
    if (r.oif !== index || r.table !== RT_TABLE_MAIN || r.type !== RTN_UNICAST || r.protocol === RTPROT_KERNEL) continue;
    const family: Family = r.family === AF_INET ? 4 : 6;
    if (r.family !== AF_INET && r.family !== AF_INET6) continue;
    const base = r.dst?.value ?? 0n;
    const dst = formatCidr({ family, base, prefix: r.dstLen });
    out.push(r.gateway !== undefined ? { dst, gw: formatIp(r.gateway) } : { dst });
  }
  return out;
}

// ---- errors in words ----

/** strerror(3) texts (what ip prints) for the errnos rtnetlink answers with in practice. */
const STRERROR: Readonly<Record<string, string>> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EBADF: 'Bad file descriptor',
  ENOMEM: 'Cannot allocate memory',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  EINVAL: 'Invalid argument',
  ERANGE: 'Numerical result out of range',
  ENOBUFS: 'No buffer space available',
  EOPNOTSUPP: 'Operation not supported',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ENETDOWN: 'Network is down',
  ENETUNREACH: 'Network is unreachable',
  EHOSTUNREACH: 'No route to host',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EMSGSIZE: 'Message too long',
  EXFULL: 'Exchange full',
};

export function strerror(errno: string, fallback?: string): string {
  return STRERROR[errno] ?? fallback ?? errno;
}

/**
 * The reason to print for a failed request. netlink 0.3.0 does not turn on
 * NETLINK_EXT_ACK, so the kernel's own message never arrives; for the one
 * failure users meet in practice (a route via a gateway that is not on-link)
 * this repeats the kernel's message, else it is the errno's description.
 */
export function failureReason(req: Pick<NlRequest, 'gateway'>, errno: string, fallback?: string): string {
  if (req.gateway && (errno === 'ENETUNREACH' || errno === 'EHOSTUNREACH')) return `Nexthop has invalid gateway (${errno})`;
  return `${strerror(errno, fallback)} (${errno})`;
}
