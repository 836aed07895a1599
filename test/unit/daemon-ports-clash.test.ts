import assert from 'node:assert/strict';
import { test } from 'node:test';
import { portsClash } from '../../src/daemon/attachments.js';

const pm = (hostPort: number, protocol: 'tcp' | 'udp', hostIP?: string) => ({ hostPort, containerPort: 80, protocol, ...(hostIP !== undefined ? { hostIP } : {}) });

test('host ports clash on equal port and protocol when either side binds all addresses or both bind the same one', () => {
  assert.equal(portsClash(pm(8080, 'tcp'), pm(8080, 'tcp')), true);
  assert.equal(portsClash(pm(8080, 'tcp', ''), pm(8080, 'tcp', '0.0.0.0')), true, '"" and 0.0.0.0 both mean all addresses');
  assert.equal(portsClash(pm(8080, 'tcp', '0.0.0.0'), pm(8080, 'tcp', '198.51.100.1')), true, 'a wildcard covers a specific address');
  assert.equal(portsClash(pm(8080, 'tcp', '::'), pm(8080, 'tcp', '2001:db8::1')), true);
  assert.equal(portsClash(pm(8080, 'tcp', '2001:db8::1'), pm(8080, 'tcp', '2001:0db8:0::1')), true, 'compared as addresses, not text');
  assert.equal(portsClash(pm(8080, 'tcp', '198.51.100.1'), pm(8080, 'tcp', '198.51.100.2')), false);
  assert.equal(portsClash(pm(8080, 'tcp'), pm(8080, 'udp')), false);
  assert.equal(portsClash(pm(8080, 'tcp'), pm(8081, 'tcp')), false);
});
