import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidConfigError, NotAvailableError, SubnetExhaustedError, TryAgainError } from '../../src/core/errors.js';
import { cniErrorFromWeftError, detailsWithHint, renderCniError, toCniResponseError } from '../../src/core/cni/error-json.js';

test('renders {cniVersion, code, msg} and omits empty details', () => {
  const out = renderCniError(new TryAgainError('busy'), '1.0.0');
  assert.ok(out.endsWith('\n'));
  assert.equal(out.trim().split('\n').length, 1);
  assert.deepEqual(JSON.parse(out), { cniVersion: '1.0.0', code: 11, msg: 'busy' });
  assert.deepEqual(Object.keys(JSON.parse(out)), ['cniVersion', 'code', 'msg']);
});

test('details and hint are folded into details', () => {
  assert.deepEqual(cniErrorFromWeftError(new InvalidConfigError('mtu: bad', { details: 'got 1' }), '0.4.0'), { cniVersion: '0.4.0', code: 7, msg: 'mtu: bad', details: 'got 1' });
  assert.deepEqual(cniErrorFromWeftError(new SubnetExhaustedError('full', { hint: 'add a subnet' }), '1.1.0'), { cniVersion: '1.1.0', code: 100, msg: 'full', details: 'hint: add a subnet' });
  assert.equal(detailsWithHint('d', 'h'), 'd (hint: h)');
  assert.equal(detailsWithHint(undefined, undefined), undefined);
  assert.equal(detailsWithHint('', undefined), undefined);
});

test('the daemon-side response carries the same fields', () => {
  assert.deepEqual(toCniResponseError(new NotAvailableError('not ready', { details: 'peers: 0', hint: 'weft connect' })), {
    error: { cniCode: 50, code: 'NOT_AVAILABLE', message: 'not ready', details: 'peers: 0 (hint: weft connect)' },
  });
  assert.deepEqual(toCniResponseError(new TryAgainError('x')), { error: { cniCode: 11, code: 'TRY_AGAIN', message: 'x' } });
});
