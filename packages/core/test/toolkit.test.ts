import { describe, expect, test } from 'vitest';
import {
  ATTEMPT_HEADER,
  carriedAttempt,
  FIRST_FAILURE_HEADER,
  Fifo,
  replayCopyHeaders,
  retryCopyHeaders,
  settleOnce,
  TARGET_GROUP_HEADER,
} from '../src/transport-toolkit.ts';

describe('settleOnce', () => {
  const failure = {} as never;
  function recorder() {
    const calls: string[] = [];
    let finish!: () => void;
    const settle = {
      ack: () => {
        calls.push('ack');
        return new Promise<void>((resolve) => (finish = resolve));
      },
      retry: async () => void calls.push('retry'),
      deadLetter: async () => void calls.push('deadLetter'),
    };
    return { calls, settle, finish: () => finish() };
  }

  test('only the first settle runs; onSettled runs once, after it completes', async () => {
    const { calls, settle, finish } = recorder();
    let given = 0;
    const once = settleOnce(settle, () => given++);
    const first = once.ack();
    await once.retry(5);
    await once.deadLetter(failure);
    expect(given).toBe(0);
    finish();
    await first;
    expect(calls).toEqual(['ack']);
    expect(given).toBe(1);
  });

  test("with when: 'called', onSettled runs as the settle is called, before the broker answers", async () => {
    const { settle, finish } = recorder();
    let given = 0;
    const once = settleOnce(settle, () => given++, { when: 'called' });
    const first = once.ack();
    expect(given).toBe(1);
    finish();
    await first;
    await once.ack();
    expect(given).toBe(1);
  });

  test('a settle that throws synchronously still gives back, once, and rejects', async () => {
    let given = 0;
    const once = settleOnce(
      {
        ack: () => {
          throw new Error('boom');
        },
        retry: async () => {},
        deadLetter: async () => {},
      },
      () => given++,
    );
    await expect(once.ack()).rejects.toThrow('boom');
    expect(given).toBe(1);
  });
});

describe('Fifo', () => {
  test('keeps order across push, shift, unshift and compaction', () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 5000; i++) fifo.push(i);
    for (let i = 0; i < 3000; i++) expect(fifo.shift()).toBe(i);
    fifo.unshift(2999);
    fifo.unshift(2997, 2998);
    expect(fifo.length).toBe(2003);
    expect(fifo.first()).toBe(2997);
    const rest: number[] = [];
    for (let item = fifo.shift(); item !== undefined; item = fifo.shift()) rest.push(item);
    expect(rest).toEqual(Array.from({ length: 2003 }, (_, i) => 2997 + i));
  });

  test('insertInOrder puts an item back by its sequence', () => {
    const fifo = new Fifo<number>();
    fifo.push(1, 3, 5);
    fifo.insertInOrder(4, (n) => n);
    fifo.insertInOrder(0, (n) => n);
    expect([fifo.shift(), fifo.shift(), fifo.shift(), fifo.shift(), fifo.shift()]).toEqual([0, 1, 3, 4, 5]);
  });
});

describe('retry and replay headers', () => {
  test('a retry copy counts one more attempt and keeps the first failure time', () => {
    const first = retryCopyHeaders({ a: '1' }, 1, 'email');
    expect(first).toMatchObject({ a: '1', [ATTEMPT_HEADER]: '2', [TARGET_GROUP_HEADER]: 'email' });
    expect(Date.parse(first[FIRST_FAILURE_HEADER] as string)).not.toBeNaN();
    const second = retryCopyHeaders({ ...first, [FIRST_FAILURE_HEADER]: '2026-01-01T00:00:00.000Z' }, 2);
    expect(second[ATTEMPT_HEADER]).toBe('3');
    expect(second[FIRST_FAILURE_HEADER]).toBe('2026-01-01T00:00:00.000Z');
    expect(carriedAttempt(second)).toBe(3);
  });

  test('a malformed or missing attempt header reads as the first attempt', () => {
    expect(carriedAttempt({})).toBe(1);
    expect(carriedAttempt({ [ATTEMPT_HEADER]: 'x' })).toBe(1);
    expect(carriedAttempt({ [ATTEMPT_HEADER]: '0' })).toBe(1);
    expect(carriedAttempt({ [ATTEMPT_HEADER]: '2.5' })).toBe(1);
  });

  test('a replayed dead letter is a first attempt for its group only', () => {
    const headers = replayCopyHeaders(
      { [ATTEMPT_HEADER]: '5', [FIRST_FAILURE_HEADER]: 'x', id: '1' },
      'billing',
    );
    expect(headers).toEqual({ id: '1', [TARGET_GROUP_HEADER]: 'billing' });
  });
});
