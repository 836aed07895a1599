import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emit, type Io, parseFormat, table, UsageError } from '../../src/cli/output.js';

test('table: columns aligned to the widest cell, two spaces apart, last column unpadded', () => {
  const t = table(['NAME', 'CIDR', 'IN USE'], [['default', '10.32.0.0/12', 3], ['b', 'fd00::/64', 120]]);
  assert.equal(t, [
    'NAME     CIDR          IN USE',
    'default  10.32.0.0/12  3',
    'b        fd00::/64     120',
  ].join('\n'));
});

test('table: empty and undefined cells print as "-", no trailing spaces', () => {
  const t = table(['A', 'B', 'C'], [['x', undefined, ''], ['', 'long value', undefined], [0, '', 'z']]);
  assert.equal(t, [
    'A  B           C',
    'x  -           -',
    '-  long value  -',
    '0  -           z',
  ].join('\n'));
  for (const line of t.split('\n')) assert.equal(line, line.trimEnd());
});

test('table: headers only; wide header; short rows', () => {
  assert.equal(table(['NAME', 'STATE'], []), 'NAME  STATE');
  assert.equal(table(['A-VERY-LONG-HEADER', 'B'], [['x', 'y']]), 'A-VERY-LONG-HEADER  B\nx                   y');
  assert.equal(table(['A', 'B', 'C'], [['only']]), 'A     B  C\nonly');
});

test('parseFormat', () => {
  assert.equal(parseFormat(undefined), 'table');
  assert.equal(parseFormat('table'), 'table');
  assert.equal(parseFormat('wide'), 'table');
  assert.equal(parseFormat('json'), 'json');
  assert.throws(() => parseFormat('yaml'), (e: unknown) => e instanceof UsageError && e.name === 'UsageError' && e.message === 'unknown output format "yaml": use -o json or -o table');
  assert.throws(() => parseFormat(3), /unknown output format "3"/);
});

test('emit: JSON for programs, the human renderer for people', () => {
  const out: string[] = [];
  const io: Io = { out: (s) => out.push(s), err: () => assert.fail('nothing on stderr') };
  let rendered = 0;
  emit(io, 'json', { a: 1, b: [1n.toString()] }, () => { rendered++; return 'human'; });
  emit(io, 'table', { a: 1 }, () => { rendered++; return 'human'; });
  assert.deepEqual(out, ['{\n  "a": 1,\n  "b": [\n    "1"\n  ]\n}', 'human']);
  assert.equal(rendered, 1, 'the table is not rendered for JSON output');
});
