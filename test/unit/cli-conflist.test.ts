import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderConflist } from '../../src/cli/conflist.js';
import { DEFAULT_SOCKET } from '../../src/core/cni/protocol.js';

test('renderConflist: defaults (one subnet, builtin ports, default socket)', () => {
  assert.deepEqual(renderConflist({ network: 'weft', subnets: ['default'], socket: DEFAULT_SOCKET, ipMasq: true, ports: 'builtin' }), {
    cniVersion: '1.0.0',
    cniVersions: ['0.4.0', '1.0.0', '1.1.0'],
    name: 'weft',
    plugins: [{ type: 'weft', subnet: 'default', ipMasq: true, capabilities: { ips: true, mac: true, dns: true, aliases: true, portMappings: true } }],
  });
});

test('renderConflist: custom socket, several subnets, MTU, portmap chaining', () => {
  const subnets = ['a', 'b6'];
  const c = renderConflist({ network: 'n2', subnets, socket: '/tmp/w.sock', ipMasq: false, mtu: 1400, ports: 'portmap' });
  assert.deepEqual(c, {
    cniVersion: '1.0.0',
    cniVersions: ['0.4.0', '1.0.0', '1.1.0'],
    name: 'n2',
    plugins: [
      { type: 'weft', socket: '/tmp/w.sock', subnet: ['a', 'b6'], ipMasq: false, mtu: 1400, capabilities: { ips: true, mac: true, dns: true, aliases: true } },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  });
  subnets.push('c');
  assert.deepEqual((c.plugins as { subnet: string[] }[])[0]!.subnet, ['a', 'b6'], 'the list is copied');
  // no subnet: the daemon's default applies; mtu 0 means unset
  const d = renderConflist({ network: 'n3', subnets: [], socket: DEFAULT_SOCKET, ipMasq: true, mtu: 0, ports: 'builtin' });
  assert.deepEqual((d.plugins as Record<string, unknown>[])[0], { type: 'weft', ipMasq: true, capabilities: { ips: true, mac: true, dns: true, aliases: true, portMappings: true } });
  // plain JSON: survives a round trip unchanged
  assert.deepEqual(JSON.parse(JSON.stringify(c)), c);
});
