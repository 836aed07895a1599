import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyedMutex } from '../../src/daemon/keyed-mutex.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

test('one key: calls run one at a time, in arrival order', async () => {
  const m = new KeyedMutex();
  const events: string[] = [];
  let active = 0;
  let maxActive = 0;
  const job = (name: string, ms: number) => m.run('k', async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    events.push(`start ${name}`);
    await sleep(ms);
    events.push(`end ${name}`);
    active--;
    return name;
  });
  const results = await Promise.all([job('a', 15), job('b', 1), job('c', 5), job('d', 0)]);
  assert.deepEqual(results, ['a', 'b', 'c', 'd']);
  assert.equal(maxActive, 1);
  assert.deepEqual(events, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c', 'start d', 'end d']);
  assert.equal(m.size, 0, 'no key left behind');
});

test('different keys run concurrently', async () => {
  const m = new KeyedMutex();
  const gate = deferred();
  const started: string[] = [];
  const a = m.run('a', async () => { started.push('a'); await gate.promise; return 1; });
  const b = m.run('b', async () => { started.push('b'); await gate.promise; return 2; });
  await sleep(5);
  assert.deepEqual(started.sort(), ['a', 'b'], 'b did not wait for a');
  assert.equal(m.size, 2);
  gate.resolve();
  assert.deepEqual(await Promise.all([a, b]), [1, 2]);
  assert.equal(m.size, 0);
});

test('a second call on a key waits until the first settles', async () => {
  const m = new KeyedMutex();
  const gate = deferred();
  let secondStarted = false;
  const first = m.run('k', async () => { await gate.promise; return 'first'; });
  const second = m.run('k', async () => { secondStarted = true; return 'second'; });
  await sleep(10);
  assert.equal(secondStarted, false);
  gate.resolve();
  assert.equal(await first, 'first');
  assert.equal(await second, 'second');
  assert.equal(secondStarted, true);
});

test('a failing call releases the key and its error reaches only its caller', async () => {
  const m = new KeyedMutex();
  const order: string[] = [];
  const bad = m.run('k', async () => { order.push('bad'); await sleep(2); throw new Error('nope'); });
  const good = m.run('k', async () => { order.push('good'); return 42; });
  const syncThrow = m.run('k', () => { order.push('sync'); throw new Error('sync'); });
  const last = m.run('k', async () => { order.push('last'); return 'done'; });
  await assert.rejects(bad, /nope/);
  assert.equal(await good, 42);
  await assert.rejects(syncThrow, /sync/);
  assert.equal(await last, 'done');
  assert.deepEqual(order, ['bad', 'good', 'sync', 'last']);
  assert.equal(m.size, 0);
});

test('many keys and calls: per-key mutual exclusion holds under load', async () => {
  const m = new KeyedMutex();
  const active = new Map<string, number>();
  const counters = new Map<string, number>();
  let seed = 7;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const calls: Promise<void>[] = [];
  for (let i = 0; i < 300; i++) {
    const key = `k${Math.floor(rnd() * 5)}`;
    const ms = Math.floor(rnd() * 3);
    calls.push(m.run(key, async () => {
      assert.equal(active.get(key) ?? 0, 0, `overlap on ${key}`);
      active.set(key, 1);
      const before = counters.get(key) ?? 0;
      await sleep(ms);
      counters.set(key, before + 1); // a lost update would show if two ran at once
      active.set(key, 0);
    }));
  }
  await Promise.all(calls);
  assert.equal([...counters.values()].reduce((a, b) => a + b, 0), 300);
  assert.equal(m.size, 0);
});
