import assert from 'node:assert/strict';
import type { WeftError } from '../../src/core/errors.js';

/** Asserts `fn` throws exactly this error class with this message (string: equal; RegExp: match). */
export function fails(fn: () => unknown, cls: new (...a: never[]) => WeftError, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    if (typeof message === 'string') assert.equal((e as Error).message, message);
    else assert.match((e as Error).message, message);
    return true;
  });
}
