import assert from 'node:assert/strict';
import { test } from 'node:test';
import { containerIfaceState, jsonArray, parseGlobalAddresses, parseJsonDocuments, parseLinks, parseRoutes } from '../../src/core/dataplane/ip-json.js';
import { KernelError } from '../../src/core/errors.js';

// Captured from iproute2 6.1 on kernel 6.18.
const ADDR = `[{"ifindex":2,"link_index":3,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1400,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"02:AA:bb:cc:dd:ee","broadcast":"ff:ff:ff:ff:ff:ff","link_netnsid":0,"linkinfo":{"info_kind":"veth"},"ifalias":"weft:wv1","addr_info":[{"family":"inet","local":"10.8.0.5","prefixlen":24,"scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fd00::5","prefixlen":64,"scope":"global","nodad":true},{"family":"inet6","local":"fe80::aa:bbff:fecc:ddee","prefixlen":64,"scope":"link"}]}]`;
const R4 = `[{"dst":"default","gateway":"10.8.0.1","flags":[]},{"dst":"default","scope":"link","metric":5,"flags":[]},{"dst":"10.8.0.0/24","protocol":"kernel","scope":"link","prefsrc":"10.8.0.5","flags":[]},{"dst":"192.168.1.7","gateway":"10.8.0.1","flags":[]},{"type":"local","dst":"10.8.0.5","table":"local","protocol":"kernel","scope":"host","prefsrc":"10.8.0.5","flags":[]}]`;
const R6 = `[{"dst":"fd00::/64","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"fe80::/64","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"default","gateway":"fd00::1","metric":1024,"flags":[],"pref":"medium"},{"type":"multicast","dst":"ff00::/8","table":"local","protocol":"kernel","metric":256,"flags":[],"pref":"medium"}]`;

test('parseJsonDocuments splits back-to-back documents, even with brackets in strings', () => {
  const docs = parseJsonDocuments(`${ADDR}\n[]\n[{"ifname":"a]b","ifindex":1}]\n`);
  assert.equal(docs.length, 3);
  assert.deepEqual(docs[1], []);
  assert.equal(parseLinks(docs[2])[0]?.name, 'a]b');
  assert.deepEqual(parseJsonDocuments(''), []);
  assert.throws(() => parseJsonDocuments('[{"a":1}'), KernelError);
  assert.throws(() => jsonArray({}), KernelError);
});

test('parseLinks: kind, alias, master, admin state, lower-case mac', () => {
  const [l] = parseLinks(JSON.parse(ADDR));
  assert.ok(l);
  assert.equal(l.name, 'eth0');
  assert.equal(l.kind, 'veth');
  assert.equal(l.alias, 'weft:wv1');
  assert.equal(l.mac, '02:aa:bb:cc:dd:ee');
  assert.equal(l.mtu, 1400);
  assert.equal(l.up, true);
  assert.equal(l.linkIndex, 3);
  const [b] = parseLinks([{ ifindex: 5, ifname: 'wv1', flags: ['BROADCAST'], master: 'weft', address: '00:11:22:33:44:55' }]);
  assert.equal(b?.master, 'weft');
  assert.equal(b?.up, false);
  assert.equal(b?.kind, undefined);
});

test('parseGlobalAddresses skips link-local', () => {
  assert.deepEqual(parseGlobalAddresses(jsonArray(JSON.parse(ADDR))[0]!), ['10.8.0.5/24', 'fd00::5/64']);
});

test('parseRoutes: main-table, non-kernel routes; default and host routes as prefixes', () => {
  assert.deepEqual(parseRoutes(JSON.parse(R4), 4), [
    { dst: '0.0.0.0/0', gw: '10.8.0.1' },
    { dst: '0.0.0.0/0' },
    { dst: '192.168.1.7/32', gw: '10.8.0.1' },
  ]);
  assert.deepEqual(parseRoutes(JSON.parse(R6), 6), [{ dst: '::/0', gw: 'fd00::1' }]);
});

test('containerIfaceState assembles the CHECK view', () => {
  const s = containerIfaceState(jsonArray(JSON.parse(ADDR))[0]!, JSON.parse(R4), JSON.parse(R6));
  assert.equal(s.ifname, 'eth0');
  assert.equal(s.mtu, 1400);
  assert.equal(s.routes.length, 4);
  assert.deepEqual(s.addresses, ['10.8.0.5/24', 'fd00::5/64']);
});
