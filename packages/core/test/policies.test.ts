import { describe, expect, test } from 'vitest';
import { backoffDelay, memoryInbox, redactText, redactUrl } from '../src/index.ts';

describe('backoff', () => {
  const policy = { backoff: { initialMs: 200, maxMs: 1000 } };
  test('grows exponentially from the floor, capped', () => {
    const none = { backoff: { ...policy.backoff, jitter: 'none' as const } };
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(none, a))).toEqual([200, 400, 800, 1000, 1000]);
  });
  test('full jitter stays between the floor and the ceiling', () => {
    expect(backoffDelay(policy, 3, () => 0)).toBe(200);
    expect(backoffDelay(policy, 3, () => 1)).toBe(800);
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(policy, 10);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });
});

describe('memoryInbox', () => {
  test('runs once per (group, id); a failure leaves no record', async () => {
    const inbox = memoryInbox();
    const key = { group: 'g', id: 'e1' };
    await expect(inbox.run(key, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await inbox.run(key, async () => 1)).toEqual({ duplicate: false, value: 1 });
    expect(await inbox.run(key, async () => 2)).toEqual({ duplicate: true });
    expect(await inbox.run({ group: 'other', id: 'e1' }, async () => 3)).toEqual({
      duplicate: false,
      value: 3,
    });
  });
  test('a concurrent duplicate waits for the first instead of running', async () => {
    const inbox = memoryInbox();
    let runs = 0;
    const work = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 10));
    };
    const results = await Promise.all([1, 2, 3].map(() => inbox.run({ group: 'g', id: 'x' }, work)));
    expect(runs).toBe(1);
    expect(results.filter((r) => r.duplicate)).toHaveLength(2);
  });
});

describe('redaction', () => {
  test('removes credentials from URLs and free text', () => {
    expect(redactUrl('postgres://user:s3cret@db:5432/app')).toBe('postgres://***@db:5432/app');
    expect(redactUrl('sns-sqs://us-east-1?endpoint=http://x&secretAccessKey=abc')).not.toContain('abc');
    expect(redactText('connect failed: amqp://guest:guest@127.0.0.1:5672 refused')).toBe(
      'connect failed: amqp://***@127.0.0.1:5672 refused',
    );
  });
});

describe('transportError', () => {
  test('masks credentials, keeps the driver code, and names the innermost nested error', async () => {
    const { transportError, TransportError } = await import('../src/index.ts');
    const inner = new Error('Connection to 127.0.0.1:9092 failed');
    const middle = new AggregateError([inner], 'all brokers failed');
    const outer = Object.assign(new Error('connect failed for redis://u:pw@host:1', { cause: middle }), {
      code: 'ECONNREFUSED',
    });
    const wrapped = transportError('kafka', 'connect', outer);
    expect(wrapped).toBeInstanceOf(TransportError);
    expect(wrapped.message).toBe(
      'kafka: connect: connect failed for redis://***@host:1 (Connection to 127.0.0.1:9092 failed)',
    );
    expect((wrapped as InstanceType<typeof TransportError>).driverCode).toBe('ECONNREFUSED');
    expect(wrapped.retryable).toBe(true);
    const named = transportError('sns-sqs', 'publish', new Error('x'), {
      driverCode: 'QueueDoesNotExist',
      retryable: false,
    });
    expect((named as InstanceType<typeof TransportError>).driverCode).toBe('QueueDoesNotExist');
    expect(named.retryable).toBe(false);
  });
});
