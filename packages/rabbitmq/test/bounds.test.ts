/**
 * Issue 16, item 2: with a broker that stops answering without closing the connection (a silent
 * partition, through silent-link.ts), publishes and closes are bounded by the adapter's own
 * deadlines instead of waiting for two missed heartbeats:
 *
 * - close({ drainMs }) returns within drainMs + 1 s (core's unwinding) + closeTimeoutMs, and the
 *   messages it held are not lost: the next consumer gets every one.
 * - a publish not confirmed within publishTimeoutMs rejects with a retryable TransportError.
 */
import { randomUUID } from 'node:crypto';
import { createBus, defineEvent, type OutgoingMessage, TransportError } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import amqp from 'amqplib';
import { afterEach, expect, test } from 'vitest';
import { z } from 'zod';
import { describeBroker, RABBITMQ_URL } from '../../../test/support/brokers.ts';
import { rabbitmq } from '../src/index.ts';
import { type SilentLink, silentLink } from './silent-link.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function link(): Promise<{ link: SilentLink; url: string }> {
  const broker = new URL(RABBITMQ_URL);
  const l = await silentLink({ host: broker.hostname, port: Number(broker.port || 5672) });
  cleanups.push(() => l.close());
  const url = new URL(RABBITMQ_URL);
  url.port = String(l.port);
  return { link: l, url: url.toString() };
}

async function deleteTopic(topic: string, groups: string[]): Promise<void> {
  const connection = await amqp.connect(RABBITMQ_URL);
  const channel = await connection.createChannel();
  for (const g of groups)
    for (const q of [`ew.${topic}/${g}`, `ew.${topic}/${g}.dlq`]) await channel.deleteQueue(q);
  await channel.deleteExchange(`ew.${topic}`);
  await connection.close();
}

describeBroker('rabbitmq', () => {
  test('close({ drainMs: 500 }) returns within drainMs + 1 s + closeTimeoutMs while the broker is silent; the held messages reach the next consumer', async () => {
    const { link: l, url } = await link();
    const topic = `ewtest-${randomUUID().slice(0, 8)}`;
    cleanups.push(() => deleteTopic(topic, ['g']));
    const Event = defineEvent({
      type: 'rabbit.item_recorded',
      version: 1,
      schema: z.object({ n: z.number() }),
      topic,
    });
    const closeTimeoutMs = 1_500;
    const consumer = await createBus({ source: 't', transport: rabbitmq({ url, closeTimeoutMs }) });
    const producer = await createBus({ source: 't', url: RABBITMQ_URL });
    cleanups.push(() => producer.close());
    await producer.transport.ensureGroup(topic, 'g', 'latest');
    const running = new Set<number>();
    consumer.subscribe(
      Event,
      async (e, ctx) => {
        running.add(e.data.n);
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        throw new Error('cut off');
      },
      { group: 'g', concurrency: 4 },
    );
    await consumer.start();
    const published = await producer.publishMany(
      Event,
      [1, 2, 3, 4].map((n) => ({ data: { n } })),
    );
    await waitFor(() => running.size === 4);

    l.silence();
    const drainMs = 500;
    const started = performance.now();
    await consumer.close({ drainMs });
    expect(performance.now() - started).toBeLessThan(drainMs + 1_000 + closeTimeoutMs + 1_000);
    // The consumer's sockets are gone; the link closes their broker side, as a kernel would.
    await l.close();

    const next = await createBus({ source: 't', url: RABBITMQ_URL });
    cleanups.push(() => next.close());
    const seen = new Map<string, number>();
    next.subscribe(Event, (e, ctx) => void seen.set(e.id, ctx.attempt), { group: 'g', concurrency: 8 });
    await next.start();
    await waitFor(() => seen.size === 4, { timeoutMs: 30_000, message: () => `${seen.size}/4 redelivered` });
    expect(new Set(seen.keys())).toEqual(new Set(published.map((e) => e.id)));
  }, 60_000);

  test('a publish not confirmed within publishTimeoutMs rejects with a retryable TransportError (ETIMEDOUT)', async () => {
    const { link: l, url } = await link();
    const topic = `ewtest-${randomUUID().slice(0, 8)}`;
    cleanups.push(() => deleteTopic(topic, ['g']));
    const transport = rabbitmq({ url, publishTimeoutMs: 700, closeTimeoutMs: 300 });
    cleanups.push(() => transport.close());
    await transport.connect();
    await transport.ensureGroup(topic, 'g', 'latest');
    const message = (): OutgoingMessage => {
      const id = randomUUID();
      return {
        topic,
        id,
        headers: { specversion: '1.0', id, type: 't', source: 's' },
        body: Buffer.from('{}'),
      };
    };
    await transport.publish([message()]);
    l.silence();
    const started = performance.now();
    const error = await transport.publish([message(), message()]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(performance.now() - started).toBeLessThan(700 + 500);
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ retryable: true, driverCode: 'ETIMEDOUT' });
  }, 30_000);
});
