import { describe, expect, test } from 'vitest';
import { Credits } from '../src/flow-control.ts';

/** Whether `promise` has settled after the timers due within `ms` have run. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return settled;
}

describe('Credits.whenAvailable', () => {
  test('waits for `min` free credits; a give that reaches it resolves the wait', async () => {
    const credits = new Credits(4);
    credits.take(4);
    const wait = credits.whenAvailable(undefined, 2);
    credits.give();
    expect(await settledWithin(wait, 20)).toBe(false);
    credits.give();
    await wait;
    expect(credits.available()).toBe(2);
  });

  test('with maxWaitMs, resolves after that long with fewer than `min`, as long as one is free', async () => {
    const credits = new Credits(8);
    credits.take(7);
    const started = performance.now();
    await credits.whenAvailable(undefined, 4, 30);
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    expect(credits.available()).toBe(1);
  });

  test('with maxWaitMs and nothing free, it keeps waiting for a give past the deadline', async () => {
    const credits = new Credits(2);
    credits.take(2);
    const wait = credits.whenAvailable(undefined, 2, 5);
    expect(await settledWithin(wait, 40)).toBe(false);
    credits.give();
    await wait;
    expect(credits.available()).toBe(1);
  });

  test('an abort rejects the wait', async () => {
    const credits = new Credits(1);
    credits.take();
    const stop = new AbortController();
    const wait = credits.whenAvailable(stop.signal, 1, 10_000);
    stop.abort(new Error('stopped'));
    await expect(wait).rejects.toThrow('stopped');
  });
});
