/**
 * RabbitMQ-specific behaviour on the real broker, beyond the conformance suite: reconnect after
 * a broker restart without "unknown delivery tag" channel errors, the TTL retry queues, and the
 * quorum queue delivery limit as a safety net. Skipped when the broker is unreachable, failed
 * when EVENTWIRE_REQUIRE_BROKERS=all.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, OutgoingMessage, SubscriptionSpec, Transport } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import amqp from 'amqplib';
import { afterEach, expect, test } from 'vitest';
import { describeBroker, RABBITMQ_URL, restartBroker } from '../../../test/support/brokers.ts';
import { type RabbitMqOptions, rabbitmq } from '../src/index.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function setup(options: Partial<RabbitMqOptions> = {}) {
  const topic = `ewtest-${randomUUID().slice(0, 8)}`;
  const group = 'g';
  const transport: Transport = rabbitmq({
    url: RABBITMQ_URL,
    reconnect: { initialMs: 100, maxMs: 1000 },
    ...options,
  });
  await transport.connect();
  await transport.ensureGroup(topic, group, 'latest');
  cleanups.push(async () => {
    await transport.close();
    const connection = await amqp.connect(RABBITMQ_URL);
    const channel = await connection.createChannel();
    for (const q of [`ew.${topic}/g`, `ew.${topic}/g.dlq`, `ew.${topic}/g.retry.200`])
      await channel.deleteQueue(q);
    await channel.deleteExchange(`ew.${topic}`);
    await connection.close();
  });
  const spec: SubscriptionSpec = {
    topic,
    group,
    from: 'latest',
    maxInFlight: 4,
    ordering: 'none',
    leaseMs: 30_000,
  };
  const message = (n: number): OutgoingMessage => ({
    topic,
    id: randomUUID(),
    headers: { specversion: '1.0', id: `e${n}`, type: 't', source: 's', datacontenttype: 'application/json' },
    body: Buffer.from(JSON.stringify({ n })),
  });
  return { transport, spec, message };
}

describeBroker('rabbitmq', () => {
  test('retry waits in a TTL queue, at least the delay, and comes back as the next attempt', async () => {
    const { transport, spec, message } = await setup();
    const deliveries: { message: IncomingMessage; at: number }[] = [];
    const sub = await transport.subscribe(spec, (m) =>
      deliveries.push({ message: m, at: performance.now() }),
    );
    cleanups.push(() => sub.close());
    await transport.publish([message(1)]);
    await waitFor(() => deliveries.length === 1);
    const failedAt = performance.now();
    await deliveries[0]!.message.retry(150); // bucket 200 ms
    await waitFor(() => deliveries.length === 2, { timeoutMs: 10_000 });
    const second = deliveries[1]!;
    expect(second.at - failedAt).toBeGreaterThanOrEqual(195);
    expect(second.message.attempt).toBe(2);
    expect(second.message.headers.ewfirstfailure).toBeTruthy();
    expect(JSON.parse(Buffer.from(second.message.body).toString())).toEqual({ n: 1 });
    await second.message.ack();
  });

  test.each(['quorum', 'classic'] as const)(
    'release() on a %s queue: the message is back in the queue at once (nack + requeue), and the broker counts it: attempt 2',
    async (queueType) => {
      const { transport, spec, message } = await setup({ queueType });
      const deliveries: { message: IncomingMessage; at: number }[] = [];
      const sub = await transport.subscribe(spec, (m) =>
        deliveries.push({ message: m, at: performance.now() }),
      );
      cleanups.push(() => sub.close());
      await transport.publish([message(1)]);
      await waitFor(() => deliveries.length === 1);
      expect(deliveries[0]!.message.attempt).toBe(1);
      const releasedAt = performance.now();
      await deliveries[0]!.message.release!();
      // Back while this subscription is still open: not waiting for its channel to close.
      await waitFor(() => deliveries.length === 2, { timeoutMs: 5_000 });
      expect(deliveries[1]!.at - releasedAt).toBeLessThan(1_000);
      expect(deliveries[1]!.message.headers.id).toBe('e1');
      // Quorum queues count the return in x-delivery-count (RabbitMQ 3.10); classic queues set
      // `redelivered`, which counts as one. There is no way to give a message back uncounted
      // short of re-publishing a copy, which would move it behind its key's later events.
      expect(deliveries[1]!.message.attempt).toBe(2);
      await deliveries[1]!.message.ack();
    },
  );

  test('stop(): the consumer is cancelled, nothing more is delivered, held messages can still be acked and released', async () => {
    const { transport, spec, message } = await setup();
    const seen: IncomingMessage[] = [];
    const sub = await transport.subscribe({ ...spec, maxInFlight: 2 }, (m) => seen.push(m));
    cleanups.push(() => sub.close());
    await transport.publish([message(1), message(2)]);
    await waitFor(() => seen.length === 2);
    expect(typeof sub.stop).toBe('function');
    sub.stop!();
    await transport.publish([message(3)]);
    await seen[0]!.ack();
    await seen[1]!.release!();
    // Prefetch is free again, yet nothing more arrives on this subscription.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(seen).toHaveLength(2);
    await sub.close();
    const next: IncomingMessage[] = [];
    const again = await transport.subscribe(spec, (m) => next.push(m));
    cleanups.push(() => again.close());
    await waitFor(() => next.length === 2, { timeoutMs: 5_000 });
    expect(next.map((m) => m.headers.id).sort()).toEqual(['e2', 'e3']);
  });

  test('quorum delivery limit: a message that keeps coming back unsettled lands in the dead letters', async () => {
    const { transport, spec, message } = await setup({ deliveryLimit: 1 });
    await transport.publish([message(1)]);
    // Two consumers that "crash" (close without settling): the second return passes the limit.
    for (let round = 1; round <= 2; round++) {
      const seen: IncomingMessage[] = [];
      const sub = await transport.subscribe(spec, (m) => seen.push(m));
      await waitFor(() => seen.length === 1);
      expect(seen[0]!.attempt).toBe(round);
      await sub.close();
    }
    const records = await waitFor(async () => {
      const list = await transport.deadLetters.list(spec.topic, spec.group);
      return list.length === 1 ? list : undefined;
    });
    expect(records[0]).toMatchObject({ reason: 'max_attempts', error: { name: 'DeliveryLimitExceeded' } });
    expect(records[0]!.message.headers.id).toBe('e1');
    // Listing twice gives the same entry (ids are stable, nothing consumed by browsing).
    expect((await transport.deadLetters.list(spec.topic, spec.group))[0]!.id).toBe(records[0]!.id);
    expect(await transport.deadLetters.purge(spec.topic, spec.group, [records[0]!.id])).toBe(1);
    expect(await transport.deadLetters.list(spec.topic, spec.group)).toEqual([]);
  });

  test('broker restart: settles of the old channel are dropped safely, messages come back, publishing resumes', async () => {
    const { transport, spec, message } = await setup();
    const deliveries: IncomingMessage[] = [];
    const sub = await transport.subscribe(spec, (m) => deliveries.push(m));
    cleanups.push(() => sub.close());
    await transport.publish([message(1), message(2)]);
    await waitFor(() => deliveries.length === 2);
    const held = deliveries.splice(0);

    await restartBroker('rabbitmq');
    // Stale: the channel that delivered them is gone. No throw, no channel error.
    await held[0]!.ack();
    await held[1]!.retry(0);

    await waitFor(() => deliveries.length >= 2, { timeoutMs: 60_000 });
    expect(new Set(deliveries.map((d) => d.headers.id))).toEqual(new Set(['e1', 'e2']));
    for (const d of deliveries) expect(d.attempt).toBeGreaterThanOrEqual(2);
    for (const d of deliveries.splice(0)) await d.ack();

    await waitFor(
      async () => {
        try {
          await transport.publish([message(3)]);
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await waitFor(() => deliveries.some((d) => d.headers.id === 'e3'), { timeoutMs: 10_000 });
    expect(deliveries.find((d) => d.headers.id === 'e3')!.attempt).toBe(1);
    expect(await transport.health()).toEqual({ status: 'up' });
    // Nothing else comes back: the acks after the reconnect went through.
    expect(deliveries.filter((d) => d.headers.id !== 'e3')).toEqual([]);
  }, 120_000);

  test('a consumer killed with SIGKILL: its unsettled messages go to the next consumer, counted as attempt 2', async () => {
    const { transport, spec, message } = await setup();
    const script = fileURLToPath(new URL('./fixtures/crash-consumer.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--conditions=source', script, RABBITMQ_URL, spec.topic, spec.group],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    cleanups.push(async () => void child.kill('SIGKILL'));
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    await waitFor(() => output.includes('ready'), { timeoutMs: 20_000 });
    await transport.publish([message(1), message(2)]);
    await waitFor(() => output.includes('e1 1') && output.includes('e2 1'), { timeoutMs: 10_000 });
    child.kill('SIGKILL');

    const deliveries: IncomingMessage[] = [];
    const sub = await transport.subscribe(spec, (m) => deliveries.push(m));
    cleanups.push(() => sub.close());
    // The kernel closes the dead process's socket, so RabbitMQ requeues at once (no lease to wait out).
    await waitFor(() => deliveries.length === 2, { timeoutMs: 15_000 });
    expect(deliveries.map((d) => [d.headers.id, d.attempt]).sort()).toEqual([
      ['e1', 2],
      ['e2', 2],
    ]);
    for (const d of deliveries) await d.ack();
  });

  test('queue deleted under a live subscription: it re-declares and consumes again', async () => {
    const { transport, spec, message } = await setup();
    const deliveries: IncomingMessage[] = [];
    const sub = await transport.subscribe(spec, (m) => {
      deliveries.push(m);
      void m.ack();
    });
    cleanups.push(() => sub.close());
    const connection = await amqp.connect(RABBITMQ_URL);
    const channel = await connection.createChannel();
    await channel.deleteQueue(`ew.${spec.topic}/g`);
    await connection.close();
    // The subscription is back once its queue exists and is bound again.
    await waitFor(
      async () => {
        await transport.publish([message(deliveries.length + 100)]);
        return deliveries.length > 0;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(await transport.health()).toEqual({ status: 'up' });
  });

  test('replay stream: a new group from the beginning gets retained events once; an existing group is not refilled', async () => {
    const { transport, spec, message } = await setup({ replay: { maxAge: '1h' } });
    expect(transport.capabilities.replay).toBe(true);
    cleanups.push(async () => {
      const connection = await amqp.connect(RABBITMQ_URL);
      const channel = await connection.createChannel();
      for (const q of [`ew.${spec.topic}/late`, `ew.${spec.topic}/late.dlq`, `ew.${spec.topic}.log`])
        await channel.deleteQueue(q);
      await connection.close();
    });
    await transport.publish([message(1), message(2), message(3)]);
    const late = { ...spec, group: 'late', from: 'beginning' as const };
    await transport.ensureGroup(late.topic, late.group, 'beginning');
    // Asking again must not copy the history a second time.
    await transport.ensureGroup(late.topic, late.group, 'beginning');
    await transport.publish([message(4)]);
    const seen: IncomingMessage[] = [];
    const sub = await transport.subscribe(late, (m) => {
      seen.push(m);
      void m.ack();
    });
    cleanups.push(() => sub.close());
    await waitFor(() => seen.length >= 4);
    expect(seen.map((m) => m.headers.id)).toEqual(['e1', 'e2', 'e3', 'e4']);
    expect(seen.every((m) => m.attempt === 1)).toBe(true);
  });

  test('without the replay option a new group starts empty, as its capability says', async () => {
    const { transport, spec, message } = await setup();
    expect(transport.capabilities.replay).toBe(false);
    await transport.publish([message(1)]);
    cleanups.push(async () => {
      const connection = await amqp.connect(RABBITMQ_URL);
      const channel = await connection.createChannel();
      for (const q of [`ew.${spec.topic}/late`, `ew.${spec.topic}/late.dlq`]) await channel.deleteQueue(q);
      await connection.close();
    });
    await transport.ensureGroup(spec.topic, 'late', 'beginning');
    expect(await transport.lag?.(spec.topic, 'late')).toBe(0);
  });
});
