import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IncompatibleVersionError, InvalidConfigError, isWeftError } from '../../src/core/errors.js';
import { CURRENT_VERSION, SUPPORTED_VERSIONS, VERSION_JSON, compareVersions, isSupportedVersion, parseVersion, pickVersion, requireVersionFor } from '../../src/core/cni/versions.js';

function throwsCni(fn: () => unknown, cniCode: number, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isWeftError(e), `not a WeftError: ${String(e)}`);
    assert.equal(e.cniCode, cniCode, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    return true;
  });
}

test('supported versions and the VERSION answer', () => {
  assert.deepEqual([...SUPPORTED_VERSIONS], ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  assert.equal(CURRENT_VERSION, '1.1.0');
  assert.deepEqual(JSON.parse(VERSION_JSON), { cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  for (const v of SUPPORTED_VERSIONS) assert.ok(isSupportedVersion(v));
  for (const v of ['0.1.0', '0.2.0', '1.0', '1', '1.2.0', '', 1, null]) assert.ok(!isSupportedVersion(v), String(v));
});

test('parseVersion follows libcni (empty = 0.1.0, short forms padded)', () => {
  assert.deepEqual(parseVersion(''), [0, 1, 0]);
  assert.deepEqual(parseVersion('1'), [1, 0, 0]);
  assert.deepEqual(parseVersion('1.1'), [1, 1, 0]);
  assert.deepEqual(parseVersion('0.4.0'), [0, 4, 0]);
  for (const bad of ['1.0.0.0', 'a.b', '1..0', '-1.0.0', 'v1.0.0', '1.0.x']) assert.equal(parseVersion(bad), undefined, bad);
});

test('compareVersions orders numerically, not lexically', () => {
  assert.equal(compareVersions('0.3.1', '0.4.0'), -1);
  assert.equal(compareVersions('1.1.0', '1.0.0'), 1);
  assert.equal(compareVersions('0.10.0', '0.9.0'), 1);
  assert.equal(compareVersions('1.0', '1.0.0'), 0);
  assert.equal(compareVersions('', '0.1.0'), 0);
  assert.throws(() => compareVersions('x', '1.0.0'), RangeError);
});

test('pickVersion: plain cniVersion must be supported verbatim', () => {
  for (const v of SUPPORTED_VERSIONS) assert.equal(pickVersion({ cniVersion: v }), v);
  throwsCni(() => pickVersion({ cniVersion: '0.2.0' }), 1, '"0.2.0"', '0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0');
  throwsCni(() => pickVersion({ cniVersion: '1.0' }), 1, '"1.0"');
  throwsCni(() => pickVersion({ cniVersion: '2.0.0' }), 1, '"2.0.0"');
  throwsCni(() => pickVersion({}), 1, 'no cniVersion', '0.1.0');
  throwsCni(() => pickVersion({ cniVersion: '' }), 1, 'no cniVersion');
  assert.throws(() => pickVersion({ cniVersion: 1 }), (e: unknown) => e instanceof InvalidConfigError && e.message.startsWith('cniVersion:'));
  assert.throws(() => pickVersion({}), IncompatibleVersionError);
});

test('pickVersion: cniVersions picks the highest supported, like libcni', () => {
  assert.equal(pickVersion({ cniVersions: ['0.4.0', '1.0.0', '1.1.0'] }), '1.1.0');
  assert.equal(pickVersion({ cniVersions: ['1.0.0', '0.4.0'] }), '1.0.0');
  // Unknown/newer entries are skipped, not errors.
  assert.equal(pickVersion({ cniVersions: ['9.9.9', '1.0.0', 'bogus'] }), '1.0.0');
  // cniVersion joins the candidates.
  assert.equal(pickVersion({ cniVersion: '1.1.0', cniVersions: ['0.4.0'] }), '1.1.0');
  assert.equal(pickVersion({ cniVersion: '0.4.0', cniVersions: ['1.0.0'] }), '1.0.0');
  assert.equal(pickVersion({ cniVersion: '7.0.0', cniVersions: ['0.3.1'] }), '0.3.1');
  throwsCni(() => pickVersion({ cniVersions: ['0.2.0', '2.0.0'] }), 1, '0.2.0', '2.0.0', 'weft supports');
  throwsCni(() => pickVersion({ cniVersions: [] }), 1, 'weft supports');
  throwsCni(() => pickVersion({ cniVersions: '1.0.0' }), 7, 'cniVersions');
  throwsCni(() => pickVersion({ cniVersions: ['1.0.0', 2] }), 7, 'cniVersions[1]');
});

test('requireVersionFor: CHECK needs 0.4.0, GC and STATUS need 1.1.0', () => {
  const table: [string, string, boolean][] = [];
  for (const v of SUPPORTED_VERSIONS) {
    table.push(['ADD', v, true], ['DEL', v, true]);
    table.push(['CHECK', v, compareVersions(v, '0.4.0') >= 0]);
    table.push(['GC', v, v === '1.1.0'], ['STATUS', v, v === '1.1.0']);
  }
  for (const [cmd, v, allowed] of table) {
    const run = (): void => requireVersionFor(cmd as 'ADD', v as '1.1.0');
    if (allowed) assert.doesNotThrow(run, `${cmd} ${v}`);
    else throwsCni(run, 1, cmd, `"${v}"`);
  }
});
