import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AF_INET,
  AF_INET6,
  IFA_ADDRESS,
  IFA_F_NODAD,
  IFA_LOCAL,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_BRPORT_MODE,
  IFLA_IFALIAS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_INFO_SLAVE_DATA,
  IFLA_INFO_SLAVE_KIND,
  IFLA_LINK,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_ECHO,
  NLM_F_EXCL,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_TABLE,
  RTM_DELLINK,
  RTM_GETLINK,
  NLMSG_ERROR,
  NLM_F_ACK,
  NLM_F_REQUEST,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTN_UNICAST,
  RTPROT_BOOT,
  RTPROT_KERNEL,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  VETH_INFO_PEER,
  appendRoute,
  attr,
  attrStr,
  attrU32,
  configureLink,
  decodeAddress,
  decodeErrno,
  decodeLink,
  decodeRoute,
  deleteLinkByName,
  dumpAddresses,
  encodeMessage,
  dumpRoutes,
  failureReason,
  formatLinkAddress,
  getLinkByName,
  globalAddresses,
  ifaceRoutes,
  ipBytes,
  ipFromBytes,
  nested,
  newAddress,
  newVeth,
  parseAttrs,
  splitMessages,
  strerror,
} from '../../src/adapters/kernel/netlink-codec.js';
import { parseIp } from '../../src/core/ip/addr.js';

const str = (b: Buffer | undefined): string => (b === undefined ? '<none>' : b.toString('latin1'));

test('attributes: 4-byte header, payload, padding to 4; parseAttrs reads them back', () => {
  const a = attr(7, Buffer.from([1, 2, 3]));
  assert.deepEqual([...a], [7, 0, 7, 0, 1, 2, 3, 0]); // len 7 (4 + 3), type 7, one pad byte
  assert.deepEqual([...attrU32(4, 1500)], [8, 0, 4, 0, 0xdc, 0x05, 0, 0]);
  assert.equal(str(attrStr(3, 'eth0', true).subarray(4, 9)), 'eth0\0');
  assert.equal(attrStr(1, 'veth', false).readUInt16LE(0), 8, 'no NUL: length 4 + 4');
  const stream = Buffer.concat([attrU32(4, 9000), attrStr(3, 'wv1', true), nested(18, [attrStr(1, 'veth', false)])]);
  const m = parseAttrs(stream);
  assert.equal(m.get(4)!.readUInt32LE(0), 9000);
  assert.equal(str(m.get(3)), 'wv1\0');
  assert.equal(str(parseAttrs(m.get(18)!).get(1)), 'veth');
  // NLA_F_NESTED / NLA_F_NET_BYTEORDER bits are masked off the type.
  const flagged = Buffer.from(attr(18, Buffer.alloc(0)));
  flagged.writeUInt16LE(18 | 0x8000, 2);
  assert.ok(parseAttrs(flagged).has(18));
  // A truncated attribute ends the walk instead of reading past the buffer.
  assert.equal(parseAttrs(Buffer.from([200, 0, 1, 0, 1])).size, 0);
});

test('addresses and MACs as bytes', () => {
  assert.deepEqual([...ipBytes(parseIp('10.77.0.5'))], [10, 77, 0, 5]);
  const v6 = ipBytes(parseIp('fd77::a'));
  assert.equal(v6.length, 16);
  assert.deepEqual([v6[0], v6[1], v6[15]], [0xfd, 0x77, 0x0a]);
  assert.deepEqual(ipFromBytes(v6), parseIp('fd77::a'));
  assert.deepEqual(ipFromBytes(Buffer.from([192, 0, 2, 1])), parseIp('192.0.2.1'));
  assert.equal(ipFromBytes(Buffer.alloc(5)), undefined);
  assert.equal(formatLinkAddress(Buffer.from([2, 0x77, 0, 0, 0, 0x10])), '02:77:00:00:00:10');
  assert.equal(formatLinkAddress(Buffer.from([0, 0, 0, 0])), '0.0.0.0', 'ipip/gre print as ip does');
});

test('newVeth: the peer is created inside the netns given by fd, with its own mtu and MAC; master on the host end', () => {
  const r = newVeth({ name: 'wv0123456789abc', mtu: 1450, master: 7, peer: { name: 'eth0', mtu: 1450, mac: '02:77:00:00:00:10', netnsFd: 42, netnsLabel: '/run/netns/x' } });
  assert.equal(r.type, RTM_NEWLINK);
  assert.equal(r.flags, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO, 'ECHO: the answer carries the new link and its peer index');
  assert.equal(r.body.readInt32LE(4), 0, 'ifindex 0: a new link');
  const top = parseAttrs(r.body, 16);
  assert.equal(str(top.get(IFLA_IFNAME)), 'wv0123456789abc\0');
  assert.equal(top.get(IFLA_MTU)!.readUInt32LE(0), 1450);
  assert.equal(top.get(IFLA_MASTER)!.readUInt32LE(0), 7);
  const info = parseAttrs(top.get(IFLA_LINKINFO)!);
  assert.equal(str(info.get(IFLA_INFO_KIND)), 'veth', 'kind without NUL, as ip sends it');
  const peerMsg = parseAttrs(info.get(IFLA_INFO_DATA)!).get(VETH_INFO_PEER)!;
  assert.equal(peerMsg.readInt32LE(4), 0, 'the peer starts with its own ifinfomsg');
  const peer = parseAttrs(peerMsg, 16);
  assert.equal(str(peer.get(IFLA_IFNAME)), 'eth0\0');
  assert.equal(peer.get(IFLA_MTU)!.readUInt32LE(0), 1450);
  assert.deepEqual([...peer.get(IFLA_ADDRESS)!], [2, 0x77, 0, 0, 0, 0x10]);
  assert.equal(peer.get(IFLA_NET_NS_FD)!.readUInt32LE(0), 42);
  assert.equal(r.what, 'link add name wv0123456789abc mtu 1450 master index 7 type veth peer name eth0 mtu 1450 address 02:77:00:00:00:10 netns /run/netns/x');
  // No MAC, no master: the attributes are absent, not zero.
  const plain = parseAttrs(newVeth({ name: 'a', mtu: 1500, peer: { name: 'b', mtu: 1500, netnsFd: 3, netnsLabel: 'p' } }).body, 16);
  assert.equal(plain.has(IFLA_MASTER), false);
  const plainPeer = parseAttrs(parseAttrs(parseAttrs(plain.get(IFLA_LINKINFO)!).get(IFLA_INFO_DATA)!).get(VETH_INFO_PEER)!, 16);
  assert.equal(plainPeer.has(IFLA_ADDRESS), false);
});

test('configureLink: alias (no NUL), hairpin as bridge slave data, and up, on one link by name or index', () => {
  const r = configureLink({ name: 'wv1', alias: 'weft-port:weft:hairpin', hairpin: true, up: true });
  assert.equal(r.type, RTM_NEWLINK);
  assert.equal(r.flags, 0, 'an existing link: no CREATE');
  assert.equal(r.body.readInt32LE(4), 0);
  assert.equal(r.body.readUInt32LE(8), IFF_UP);
  assert.equal(r.body.readUInt32LE(12), IFF_UP, 'change mask');
  const a = parseAttrs(r.body, 16);
  assert.equal(str(a.get(IFLA_IFNAME)), 'wv1\0');
  assert.equal(str(a.get(IFLA_IFALIAS)), 'weft-port:weft:hairpin');
  const info = parseAttrs(a.get(IFLA_LINKINFO)!);
  assert.equal(str(info.get(IFLA_INFO_SLAVE_KIND)), 'bridge');
  assert.deepEqual([...parseAttrs(info.get(IFLA_INFO_SLAVE_DATA)!).get(IFLA_BRPORT_MODE)!], [1]);
  assert.equal(info.has(IFLA_INFO_KIND), false, 'the link kind is not restated');
  assert.equal(r.what, 'link set dev wv1 alias weft-port:weft:hairpin type bridge_slave hairpin on up');

  const byIndex = configureLink({ index: 5, name: 'eth0', up: true });
  assert.equal(byIndex.body.readInt32LE(4), 5);
  assert.equal(parseAttrs(byIndex.body, 16).has(IFLA_IFNAME), false, 'by index: the name is only for messages');
  const noHairpin = parseAttrs(configureLink({ name: 'x', alias: 'a' }).body, 16);
  assert.equal(noHairpin.has(IFLA_LINKINFO), false);
  assert.equal(configureLink({ name: 'x', alias: 'a' }).body.readUInt32LE(12), 0, 'no up: flags untouched');
});

test('newAddress: IFA_LOCAL and IFA_ADDRESS, scope global, nodad for v6', () => {
  const v4 = newAddress({ ip: parseIp('10.77.0.10'), prefix: 24, index: 3, ifname: 'eth0', nodad: false });
  assert.equal(v4.type, RTM_NEWADDR);
  assert.equal(v4.flags, NLM_F_CREATE | NLM_F_EXCL);
  assert.deepEqual([v4.body[0], v4.body[1], v4.body[2], v4.body[3], v4.body.readUInt32LE(4)], [AF_INET, 24, 0, RT_SCOPE_UNIVERSE, 3]);
  const a = parseAttrs(v4.body, 8);
  assert.deepEqual([...a.get(IFA_LOCAL)!], [10, 77, 0, 10]);
  assert.deepEqual([...a.get(IFA_ADDRESS)!], [10, 77, 0, 10]);
  assert.equal(v4.what, 'addr add 10.77.0.10/24 dev eth0');
  const v6 = newAddress({ ip: parseIp('fd77::a'), prefix: 64, index: 3, ifname: 'eth0', nodad: true });
  assert.deepEqual([v6.body[0], v6.body[1], v6.body[2]], [AF_INET6, 64, IFA_F_NODAD]);
  assert.equal(v6.what, 'addr add fd77::a/64 dev eth0 nodad');
});

test('appendRoute: main table, proto boot, scope link without and universe with a gateway', () => {
  const viaGw = appendRoute({ family: 4, dst: parseIp('0.0.0.0'), dstLen: 0, via: parseIp('10.77.0.1'), index: 3, ifname: 'eth0' });
  assert.equal(viaGw.type, RTM_NEWROUTE);
  assert.equal(viaGw.flags, NLM_F_CREATE | NLM_F_APPEND);
  assert.deepEqual([...viaGw.body.subarray(0, 8)], [AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST]);
  const a = parseAttrs(viaGw.body, 12);
  assert.deepEqual([...a.get(RTA_DST)!], [0, 0, 0, 0]);
  assert.deepEqual([...a.get(RTA_GATEWAY)!], [10, 77, 0, 1]);
  assert.equal(a.get(RTA_OIF)!.readUInt32LE(0), 3);
  assert.equal(viaGw.gateway, true);
  assert.equal(viaGw.what, 'route append 0.0.0.0/0 via 10.77.0.1 dev eth0');

  const dev = appendRoute({ family: 6, dst: parseIp('fd00:1::'), dstLen: 48, index: 3, ifname: 'eth0' });
  assert.equal(dev.body[0], AF_INET6);
  assert.equal(dev.body[1], 48);
  assert.equal(dev.body[6], RT_SCOPE_LINK);
  assert.equal(parseAttrs(dev.body, 12).has(RTA_GATEWAY), false);
  assert.equal(dev.gateway, false);
  assert.equal(dev.what, 'route append fd00:1::/48 dev eth0');

});

test('get and dump requests', () => {
  const g = getLinkByName('eth0');
  assert.equal(g.type, RTM_GETLINK);
  assert.equal(g.flags, 0);
  assert.equal(str(parseAttrs(g.body, 16).get(IFLA_IFNAME)), 'eth0\0');
  assert.equal(dumpAddresses().flags, NLM_F_DUMP);
  assert.equal(dumpRoutes(6).body[0], AF_INET6);
  assert.equal(dumpRoutes(4).body[0], AF_INET);
});

/** A reply as the kernel sends it: ifinfomsg + attributes. */
function linkReply(args: { index: number; flags: number; attrs: Buffer[] }): Buffer {
  const h = Buffer.alloc(16);
  h.writeInt32LE(args.index, 4);
  h.writeUInt32LE(args.flags, 8);
  return Buffer.concat([h, ...args.attrs]);
}

test('decodeLink reads name, state, MAC, mtu, master, alias, kind and peer index', () => {
  const l = decodeLink(linkReply({
    index: 12,
    flags: IFF_UP | 0x1000,
    attrs: [
      attrStr(IFLA_IFNAME, 'wv1', true),
      attrU32(IFLA_MTU, 1450),
      attr(IFLA_ADDRESS, Buffer.from([0x02, 0xab, 0xcd, 0xef, 0x01, 0x23])),
      attrU32(IFLA_MASTER, 7),
      attrU32(IFLA_LINK, 2),
      attrStr(IFLA_IFALIAS, 'weft-port:weft', true),
      nested(IFLA_LINKINFO, [attrStr(IFLA_INFO_KIND, 'veth', true), nested(IFLA_INFO_DATA, [])]),
    ],
  }));
  assert.deepEqual(l, { index: 12, name: 'wv1', flags: IFF_UP | 0x1000, up: true, mtu: 1450, mac: '02:ab:cd:ef:01:23', master: 7, alias: 'weft-port:weft', kind: 'veth', linkIndex: 2 });
  const lo = decodeLink(linkReply({ index: 1, flags: 0, attrs: [attrStr(IFLA_IFNAME, 'lo', true), attrU32(IFLA_MTU, 65536), attr(IFLA_ADDRESS, Buffer.alloc(6))] }));
  assert.deepEqual(lo, { index: 1, name: 'lo', flags: 0, up: false, mtu: 65536, mac: '00:00:00:00:00:00' });
  assert.throws(() => decodeLink(Buffer.alloc(8)), RangeError);
});

function addrReply(family: number, prefix: number, scope: number, index: number, local: string, onlyAddress = false): Buffer {
  const h = Buffer.from([family, prefix, 0, scope, 0, 0, 0, 0]);
  h.writeUInt32LE(index, 4);
  const b = ipBytes(parseIp(local));
  return Buffer.concat([h, attr(IFA_ADDRESS, b), ...(onlyAddress ? [] : [attr(IFA_LOCAL, b)])]);
}

test('globalAddresses: the link\'s global-scope addresses, as `addr show` lists them', () => {
  const addrs = [
    addrReply(AF_INET, 8, 254, 1, '127.0.0.1'), // lo, host scope
    addrReply(AF_INET, 24, 0, 3, '10.77.0.10'),
    addrReply(AF_INET, 24, 0, 4, '10.78.0.10'), // another link
    addrReply(AF_INET6, 64, 0, 3, 'fd77::a', true), // v6: IFA_ADDRESS only
    addrReply(AF_INET6, 64, 253, 3, 'fe80::1', true), // link scope
  ].map(decodeAddress);
  assert.deepEqual(globalAddresses(addrs, 3), ['10.77.0.10/24', 'fd77::a/64']);
  assert.equal(decodeAddress(addrReply(AF_INET, 24, 0, 3, '10.77.0.10')).local?.value, parseIp('10.77.0.10').value);
});

function routeReply(r: { family: number; dstLen: number; table: number; protocol: number; scope: number; type: number; dst?: string; gw?: string; oif?: number; tableAttr?: number }): Buffer {
  const h = Buffer.from([r.family, r.dstLen, 0, 0, r.table, r.protocol, r.scope, r.type, 0, 0, 0, 0]);
  return Buffer.concat([
    h,
    ...(r.tableAttr !== undefined ? [attrU32(RTA_TABLE, r.tableAttr)] : []),
    ...(r.dst !== undefined ? [attr(RTA_DST, ipBytes(parseIp(r.dst)))] : []),
    ...(r.gw !== undefined ? [attr(RTA_GATEWAY, ipBytes(parseIp(r.gw)))] : []),
    ...(r.oif !== undefined ? [attrU32(RTA_OIF, r.oif)] : []),
  ]);
}

test('ifaceRoutes: main-table unicast routes through the link that the kernel did not add', () => {
  const routes = [
    routeReply({ family: AF_INET, dstLen: 0, table: RT_TABLE_MAIN, protocol: RTPROT_BOOT, scope: 0, type: RTN_UNICAST, gw: '10.77.0.1', oif: 3 }),
    routeReply({ family: AF_INET, dstLen: 24, table: RT_TABLE_MAIN, protocol: RTPROT_KERNEL, scope: 253, type: RTN_UNICAST, dst: '10.77.0.0', oif: 3 }), // connected
    routeReply({ family: AF_INET, dstLen: 32, table: 255, protocol: RTPROT_KERNEL, scope: 254, type: 2, dst: '10.77.0.10', oif: 3 }), // local table
    routeReply({ family: AF_INET, dstLen: 16, table: RT_TABLE_MAIN, protocol: RTPROT_BOOT, scope: 253, type: RTN_UNICAST, dst: '10.99.0.0', oif: 3 }), // device route
    routeReply({ family: AF_INET, dstLen: 16, table: RT_TABLE_MAIN, protocol: RTPROT_BOOT, scope: 0, type: RTN_UNICAST, dst: '10.98.0.0', gw: '10.78.0.1', oif: 4 }), // other link
    routeReply({ family: AF_INET, dstLen: 8, table: 252, tableAttr: 1000, protocol: RTPROT_BOOT, scope: 0, type: RTN_UNICAST, dst: '10.0.0.0', gw: '10.77.0.1', oif: 3 }), // table 1000
    routeReply({ family: AF_INET6, dstLen: 0, table: RT_TABLE_MAIN, protocol: RTPROT_BOOT, scope: 0, type: RTN_UNICAST, gw: 'fd77::1', oif: 3 }),
    routeReply({ family: AF_INET6, dstLen: 0, table: RT_TABLE_MAIN, protocol: RTPROT_BOOT, scope: 0, type: RTN_UNICAST }), // multipath: no RTA_OIF
  ].map(decodeRoute);
  assert.deepEqual(ifaceRoutes(routes, 3), [{ dst: '0.0.0.0/0', gw: '10.77.0.1' }, { dst: '10.99.0.0/16' }, { dst: '::/0', gw: 'fd77::1' }]);
  assert.equal(routes[5]!.table, 1000, 'RTA_TABLE wins over the 8-bit rtm_table');
});

test('decodeErrno and the reasons printed for failures', () => {
  const err = Buffer.alloc(20);
  err.writeInt32LE(-17, 0);
  assert.equal(decodeErrno(err), 17);
  assert.equal(decodeErrno(Buffer.alloc(20)), 0, 'an ACK');
  const route = appendRoute({ family: 4, dst: parseIp('10.99.0.0'), dstLen: 16, via: parseIp('203.0.113.1'), index: 3, ifname: 'eth0' });
  assert.equal(failureReason(route, 'ENETUNREACH'), 'Nexthop has invalid gateway (ENETUNREACH)');
  assert.equal(failureReason(newAddress({ ip: parseIp('10.0.0.1'), prefix: 8, index: 1, ifname: 'x', nodad: false }), 'EEXIST'), 'File exists (EEXIST)');
  assert.equal(failureReason({}, 'ENETUNREACH'), 'Network is unreachable (ENETUNREACH)', 'only a route via a gateway gets the nexthop message');
  assert.equal(strerror('EWHATEVER', 'libuv text'), 'libuv text');
  assert.equal(strerror('ENODEV'), 'No such device');
});

test('deleteLinkByName, and whole messages: encodeMessage adds REQUEST|ACK and the sequence number, splitMessages reads them back', () => {
  const d = deleteLinkByName('wv0123');
  assert.equal(d.type, RTM_DELLINK);
  assert.equal(str(parseAttrs(d.body, 16).get(IFLA_IFNAME)), 'wv0123\0');
  const m = encodeMessage(d, 0xfffffffe);
  assert.equal(m.readUInt32LE(0), m.length);
  assert.equal(m.readUInt16LE(4), RTM_DELLINK);
  assert.equal(m.readUInt16LE(6), NLM_F_REQUEST | NLM_F_ACK);
  assert.equal(m.readUInt32LE(8), 0xfffffffe);
  assert.deepEqual(m.subarray(16), d.body);
  // An echo (odd length, padded) and an ACK, back to back, as rtnl.c collects them.
  const echo = encodeMessage({ type: RTM_NEWLINK, flags: 0, body: Buffer.from([1, 2, 3]), what: '' }, 7);
  const ack = encodeMessage({ type: NLMSG_ERROR, flags: 0, body: Buffer.alloc(4), what: '' }, 7);
  const both = Buffer.concat([echo, Buffer.alloc(1), ack]);
  assert.deepEqual(splitMessages(both).map((x) => [x.type, x.seq, x.data.length]), [[RTM_NEWLINK, 7, 3], [NLMSG_ERROR, 7, 4]]);
  // Truncated or nonsense headers end the walk instead of reading past the buffer.
  assert.deepEqual(splitMessages(both.subarray(0, both.length - 2)).length, 1);
  const bad = Buffer.from(ack);
  bad.writeUInt32LE(8, 0);
  assert.deepEqual(splitMessages(bad), []);
  assert.deepEqual(splitMessages(Buffer.alloc(0)), []);
});
