import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderNatRemoval, renderNatRuleset } from '../../src/core/dataplane/nat-ruleset.js';
import { InvalidConfigError } from '../../src/core/errors.js';

test('empty spec: still a complete, atomic table replace', () => {
  const t = renderNatRuleset({ masquerade: [], portMappings: [] });
  const lines = t.split('\n');
  assert.equal(lines[0], 'table inet weft {}');
  assert.equal(lines[1], 'delete table inet weft');
  assert.equal(lines[2], 'table inet weft {');
  assert.ok(t.endsWith('}\n'));
  assert.ok(!t.includes('jump portmaps'), 'no jump when there is nothing to map');
  // never mentions another table
  assert.deepEqual([...t.matchAll(/table (\S+ \S+)/g)].map((m) => m[1]), ['inet weft', 'inet weft', 'inet weft']);
});

test('masquerade per source CIDR, canonical, sorted, deduplicated, both families', () => {
  const t = renderNatRuleset({ masquerade: ['fd00::/64', '10.32.0.5/12', '10.32.0.0/12'], portMappings: [] });
  assert.ok(t.includes('    ip saddr 10.32.0.0/12 ip daddr != 10.32.0.0/12 masquerade\n    ip6 saddr fd00::/64 ip6 daddr != fd00::/64 masquerade\n'));
  assert.ok(t.includes('ct status dnat ip saddr 10.32.0.0/12 ip daddr 10.32.0.0/12 masquerade'));
  assert.equal(t.match(/ip saddr 10\.32\.0\.0\/12 ip daddr !=/g)?.length, 1);
  // Only what NAT needs: no filter chain, no DNAT chains without port mappings (each base chain is a hook every packet visits).
  assert.doesNotMatch(t, /\baccept$/m, 'no accept rules');
  assert.ok(!/hook forward|hook prerouting priority dstnat|chain portmaps/.test(t));
});

test('port mappings: any host address (fib local), specific hostIP, v6, udp/sctp', () => {
  const t = renderNatRuleset({
    masquerade: [],
    portMappings: [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp', containerIp: '10.32.0.5' },
      { hostPort: 53, containerPort: 5353, protocol: 'udp', hostIP: '192.0.2.1', containerIp: '10.32.0.6' },
      { hostPort: 8443, containerPort: 443, protocol: 'tcp', hostIP: '', containerIp: 'fd00::0005' },
      { hostPort: 9, containerPort: 9, protocol: 'sctp', hostIP: '0.0.0.0', containerIp: '10.32.0.7' },
    ],
  });
  assert.ok(t.includes('type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump portmaps'));
  assert.ok(t.includes('type nat hook output priority -100; policy accept;\n    fib daddr type local jump portmaps'));
  const chain = t.slice(t.indexOf('chain portmaps {'), t.lastIndexOf('}\n}'));
  assert.deepEqual(
    chain.split('\n').slice(1, -1).map((l) => l.trim()),
    [
      'meta nfproto ipv4 sctp dport 9 dnat ip to 10.32.0.7:9',
      'meta nfproto ipv4 tcp dport 8080 dnat ip to 10.32.0.5:80',
      'ip daddr 192.0.2.1 udp dport 53 dnat ip to 10.32.0.6:5353',
      'meta nfproto ipv6 tcp dport 8443 dnat ip6 to [fd00::5]:443',
    ],
  );
});

test('deterministic: same spec in another order renders the same text', () => {
  const a = { hostPort: 1, containerPort: 1, protocol: 'tcp' as const, containerIp: '10.0.0.1' };
  const b = { hostPort: 2, containerPort: 2, protocol: 'udp' as const, containerIp: '10.0.0.2' };
  assert.equal(
    renderNatRuleset({ masquerade: ['10.0.0.0/8', '172.16.0.0/12'], portMappings: [a, b, a] }),
    renderNatRuleset({ masquerade: ['172.16.0.0/12', '10.0.0.0/8'], portMappings: [b, a] }),
  );
});

test('invalid mappings are config errors', () => {
  const base = { hostPort: 80, containerPort: 80, protocol: 'tcp' as const, containerIp: '10.0.0.1' };
  for (const bad of [{ hostPort: 0 }, { containerPort: 70000 }, { protocol: 'icmp' }, { containerIp: 'x' }, { hostIP: 'fd00::1' }, { hostIP: 'nope' }]) {
    assert.throws(() => renderNatRuleset({ masquerade: [], portMappings: [{ ...base, ...bad } as typeof base] }), InvalidConfigError, JSON.stringify(bad));
  }
  assert.throws(() => renderNatRuleset({ masquerade: ['10.0.0.0'], portMappings: [] }), InvalidConfigError);
});

test('removal only creates-then-deletes weft\'s table', () => {
  assert.equal(renderNatRemoval(), 'table inet weft {}\ndelete table inet weft\n');
});

test('conntrack bypass: intra-subnet traffic not to or from the gateway, and the VXLAN port, untracked at raw priority', () => {
  const t = renderNatRuleset({
    masquerade: ['10.32.0.0/12'], portMappings: [],
    untracked: [{ cidr: 'fd00::/64', gateway: 'fd00::0001' }, { cidr: '10.32.0.0/12', gateway: '10.32.0.1' }, { cidr: '10.40.0.0/24' }, { cidr: '10.32.0.0/12', gateway: '10.32.0.1' }],
    tunnel: { local: '192.0.2.1', port: 4789 },
  });
  const pre = t.slice(t.indexOf('chain bypass_prerouting {'), t.indexOf('chain bypass_output'));
  assert.deepEqual(pre.split('\n').slice(1, -2).map((l) => l.trim()), [
    'type filter hook prerouting priority raw; policy accept;',
    'ip saddr 10.32.0.0/12 ip daddr 10.32.0.0/12 ip saddr != 10.32.0.1 ip daddr != 10.32.0.1 notrack',
    'ip saddr 10.40.0.0/24 ip daddr 10.40.0.0/24 notrack',
    'ip6 saddr fd00::/64 ip6 daddr fd00::/64 ip6 saddr != fd00::1 ip6 daddr != fd00::1 notrack',
    'ip daddr 192.0.2.1 udp dport 4789 notrack',
  ]);
  const outChain = t.slice(t.indexOf('chain bypass_output {'), t.indexOf('chain postrouting'));
  assert.deepEqual(outChain.split('\n').slice(1, -2).map((l) => l.trim()), [
    'type filter hook output priority raw; policy accept;',
    'ip saddr 192.0.2.1 udp dport 4789 notrack',
  ]);
  // An IPv6 underlay, no subnets: only the tunnel rules.
  const v6 = renderNatRuleset({ masquerade: [], portMappings: [], untracked: [], tunnel: { local: '2001:db8::0002', port: 8472 } });
  assert.ok(v6.includes('    ip6 daddr 2001:db8::2 udp dport 8472 notrack\n'));
  assert.ok(v6.includes('    ip6 saddr 2001:db8::2 udp dport 8472 notrack\n'));
  // Off (no untracked, no tunnel): no raw chains at all.
  assert.ok(!renderNatRuleset({ masquerade: ['10.32.0.0/12'], portMappings: [] }).includes('notrack'));
  assert.ok(!renderNatRuleset({ masquerade: ['10.32.0.0/12'], portMappings: [], untracked: [{ cidr: '10.40.0.0/24' }] }).includes('bypass_output'));
});

test('conntrack bypass: bad input is refused, not rendered', () => {
  assert.throws(() => renderNatRuleset({ masquerade: [], portMappings: [], untracked: [{ cidr: '10.0.0.0/8', gateway: 'fd00::1' }] }), InvalidConfigError);
  assert.throws(() => renderNatRuleset({ masquerade: [], portMappings: [], untracked: [{ cidr: '10.0.0.0/33' }] }), InvalidConfigError);
  assert.throws(() => renderNatRuleset({ masquerade: [], portMappings: [], tunnel: { local: 'eth0', port: 4789 } }), InvalidConfigError);
  assert.throws(() => renderNatRuleset({ masquerade: [], portMappings: [], tunnel: { local: '192.0.2.1', port: 0 } }), InvalidConfigError);
});
