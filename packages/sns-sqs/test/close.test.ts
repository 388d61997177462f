/**
 * Closing on SNS+SQS: what a closing subscription may still take from the queue, and what it
 * gives back. SQS counts every receive (ApproximateReceiveCount is the attempt), so a close that
 * receives a message only to hand it back uses up one of the event's attempts.
 */
import { randomUUID } from 'node:crypto';
import { createBus, defineEvent, type IncomingMessage, silentLogger, type Transport } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { afterEach, expect, test } from 'vitest';
import { z } from 'zod';
import { describeBroker, SNS_SQS_URL } from '../../../test/support/brokers.ts';
import { parseUrl, snsSqs } from '../src/index.ts';

describeBroker('sns-sqs', () => {
  const open: Transport[] = [];
  const transport = (extra: Parameters<typeof snsSqs>[0] = {}) => {
    const t = snsSqs({ ...parseUrl(SNS_SQS_URL), ...extra });
    open.push(t);
    return t;
  };
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((t) => t.close()));
  });
  const names = () => {
    const run = randomUUID().slice(0, 8);
    return { topic: `ewtest-${run}`, group: `g-${run}` };
  };
  const spec = (topic: string, group: string, leaseMs: number) => ({
    topic,
    group,
    from: 'latest' as const,
    maxInFlight: 10,
    ordering: 'none' as const,
    leaseMs,
  });
  const body = () =>
    Buffer.from(
      JSON.stringify({ specversion: '1.0', id: randomUUID(), type: 't.happened', source: 'test', data: {} }),
    );

  test('release gives a delivery back at once; SQS counts the receive, so it returns as the next attempt', async () => {
    const { topic, group } = names();
    const t = transport({ waitTimeSeconds: 1 });
    await t.ensureGroup(topic, group, 'latest');
    const got: IncomingMessage[] = [];
    // A lease of a minute: coming back within seconds can only be the release.
    const sub = await t.subscribe(spec(topic, group, 60_000), (m) => void got.push(m));
    await t.publish([{ topic, id: randomUUID(), headers: {}, body: body() }]);
    await waitFor(() => got.length === 1, { timeoutMs: 15_000 });
    const released = Date.now();
    await got[0]!.release!();
    await waitFor(() => got.length === 2, { timeoutMs: 15_000 });
    expect(Date.now() - released).toBeLessThan(5000);
    expect(got.map((m) => m.attempt)).toEqual([1, 2]);
    // The first delivery is settled: settling it again does nothing (no error, no second copy).
    await got[0]!.ack();
    await got[1]!.ack();
    await sub.close();
    expect(got).toHaveLength(2);
  });

  test('a restart during a retry wait does not use up an attempt: the retry arrives as attempt 2', async () => {
    const { topic, group } = names();
    const Happened = defineEvent({
      type: 'ewtest.happened',
      version: 1,
      topic,
      schema: z.object({ n: z.number() }),
    });
    const options = {
      group,
      // No jitter: the retry becomes visible 2 s after the failure, while the first bus closes.
      retry: { attempts: 5, backoff: { initialMs: 2000, jitter: 'none' as const } },
    };
    // A long poll (5 s) is in flight when the first bus closes: it covers the moment (2 s) the
    // retried message becomes visible again.
    const first = await createBus({
      source: 'test',
      logger: silentLogger,
      transport: transport({ waitTimeSeconds: 5 }),
    });
    const attempts: number[] = [];
    let failedAt = 0;
    first.subscribe(
      Happened,
      (_event, ctx) => {
        attempts.push(ctx.attempt);
        failedAt = Date.now();
        throw new Error('fails once');
      },
      options,
    );
    await first.start();
    await first.publish(Happened, { n: 1 });
    await waitFor(() => attempts.length === 1, { timeoutMs: 15_000 });
    // Let core's retry (ChangeMessageVisibility 2 s) reach SQS, then close during the wait.
    await new Promise((r) => setTimeout(r, 300));
    const closing = Date.now();
    await first.close({ drainMs: 1000 });
    const closeMs = Date.now() - closing;

    const second = await createBus({
      source: 'test',
      logger: silentLogger,
      transport: transport({ waitTimeSeconds: 1 }),
    });
    const retried: number[] = [];
    second.subscribe(Happened, (_event, ctx) => void retried.push(ctx.attempt), options);
    await second.start();
    await waitFor(() => retried.length > 0, { timeoutMs: 20_000 });
    await second.close({ drainMs: 1000 });

    expect(attempts).toEqual([1]);
    expect(retried[0]).toBe(2);
    // No earlier than the backoff; close waited for its poll (5 s at most), not for a lease.
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(2000);
    expect(closeMs).toBeLessThan(5000 + 1500);
  });
});
