/**
 * The router's donation block size (src/daemon/ring-service.ts blockSizeFor):
 * 64 addresses, or the largest power of two ≤ 1/16 of a range too small for
 * that, so a donor in a small range can give a block and keep one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCidr } from '../../src/core/ip/cidr.js';
import { blockSizeFor } from '../../src/daemon/ring-service.js';

test('blocks are 64 addresses, or 1/16 of a small range (a power of two, at least 1)', () => {
  const cases: [string, bigint][] = [
    ['10.32.0.0/12', 64n], ['10.0.0.0/22', 64n], ['10.0.0.0/23', 32n], ['10.0.0.0/24', 16n], ['10.0.0.0/25', 8n],
    ['10.0.0.0/26', 4n], ['10.0.0.0/28', 1n], ['10.0.0.0/30', 1n], ['10.0.0.0/32', 1n], ['fd00::/64', 64n], ['fd00::/120', 16n],
  ];
  for (const [cidr, want] of cases) assert.equal(blockSizeFor(parseCidr(cidr)), want, cidr);
});
