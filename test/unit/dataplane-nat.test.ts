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
  assert.ok(t.includes('    ip saddr 10.32.0.0/12 accept\n    ip daddr 10.32.0.0/12 accept\n'));
  assert.ok(t.includes('ip6 daddr fd00::/64 accept'));
  assert.ok(t.includes('type filter hook forward priority filter; policy accept;'));
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
  const chain = t.slice(t.indexOf('chain portmaps {'), t.indexOf('chain forward'));
  assert.deepEqual(
    chain.split('\n').slice(1, -2).map((l) => l.trim()),
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
