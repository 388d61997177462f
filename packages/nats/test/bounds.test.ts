/**
 * Giving back and bounds on the real server.
 *
 * - `release()` (the SPI's give-back, `nak` now): the message is redelivered at once, and
 *   JetStream counts that delivery (`num_delivered`): the next one reports attempt 2.
 * - `stop()`: no more pull requests, nothing more delivered; held messages still settle.
 * - With the server silent (issue 16, item 2; a relay that drops every byte, silent-link.ts),
 *   close({ drainMs }) returns within drainMs + 1 s (core's unwinding) + closeTimeoutMs, and a
 *   publish rejects after publishTimeoutMs with a retryable TransportError.
 */
import { randomUUID } from 'node:crypto';
import {
  createBus,
  defineEvent,
  type IncomingMessage,
  type OutgoingMessage,
  type SubscriptionSpec,
  silentLogger,
  TransportError,
} from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, afterEach, expect, test } from 'vitest';
import { z } from 'zod';
import { describeBroker, NATS_URL } from '../../../test/support/brokers.ts';
import { nats } from '../src/index.ts';
import { type SilentLink, silentLink } from './silent-link.ts';

const servers = NATS_URL.split(',').map((s) => (s.startsWith('nats://') ? s : `nats://${s}`));
const prefix = `ewb-${randomUUID().slice(0, 8)}`;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});
afterAll(async () => {
  const nc = await connect({ servers });
  const jsm = await jetstreamManager(nc, { timeout: 20_000 });
  for await (const name of jsm.streams.names())
    if (name.startsWith(`${prefix}_`)) await jsm.streams.delete(name).catch(() => {});
  await nc.close();
});

async function link(): Promise<{ link: SilentLink; servers: string[] }> {
  const target = new URL(servers[0]!);
  const l = await silentLink({ host: target.hostname, port: Number(target.port || 4222) });
  cleanups.push(() => l.close());
  return { link: l, servers: [`nats://127.0.0.1:${l.port}`] };
}

function message(topic: string): OutgoingMessage {
  const id = randomUUID();
  return { topic, id, headers: { specversion: '1.0', id, type: 't', source: 's' }, body: Buffer.from('{}') };
}

describeBroker('nats', () => {
  test('release(): redelivered at once, and JetStream counts it: attempt 2', async () => {
    const t = nats({ servers, prefix });
    cleanups.push(() => t.close());
    await t.connect();
    const topic = `release-${randomUUID()}`;
    await t.ensureGroup(topic, 'g', 'latest');
    const spec: SubscriptionSpec = {
      topic,
      group: 'g',
      from: 'latest',
      maxInFlight: 4,
      ordering: 'none',
      leaseMs: 30_000,
    };
    const seen: { message: IncomingMessage; at: number }[] = [];
    const sub = await t.subscribe(spec, (m) => seen.push({ message: m, at: performance.now() }));
    cleanups.push(() => sub.close());
    await t.publish([message(topic)]);
    await waitFor(() => seen.length === 1);
    expect(seen[0]!.message.attempt).toBe(1);
    const releasedAt = performance.now();
    await seen[0]!.message.release!();
    await waitFor(() => seen.length === 2, { timeoutMs: 5_000 });
    expect(seen[1]!.at - releasedAt).toBeLessThan(1_000);
    expect(seen[1]!.message.attempt).toBe(2);
    await seen[1]!.message.ack();
  });

  test('stop(): no pull request any more, nothing more delivered, held messages can still be acked and released', async () => {
    const t = nats({ servers, prefix });
    cleanups.push(() => t.close());
    await t.connect();
    const topic = `stop-${randomUUID()}`;
    await t.ensureGroup(topic, 'g', 'latest');
    const spec: SubscriptionSpec = {
      topic,
      group: 'g',
      from: 'latest',
      maxInFlight: 2,
      ordering: 'none',
      leaseMs: 30_000,
    };
    const seen: IncomingMessage[] = [];
    const sub = await t.subscribe(spec, (m) => seen.push(m));
    await t.publish([message(topic), message(topic)]);
    await waitFor(() => seen.length === 2);
    expect(typeof sub.stop).toBe('function');
    sub.stop!();
    await t.publish([message(topic)]);
    await seen[0]!.ack();
    await seen[1]!.release!();
    await new Promise((r) => setTimeout(r, 1_000));
    expect(seen).toHaveLength(2);
    await sub.close();
    const next: IncomingMessage[] = [];
    const again = await t.subscribe({ ...spec, maxInFlight: 4 }, (m) => next.push(m));
    cleanups.push(() => again.close());
    await waitFor(() => next.length === 2, { timeoutMs: 5_000 });
    // The released one and the one published after stop; not the acked one.
    const ids = next.map((m) => m.headers.id);
    expect(ids).toContain(seen[1]!.headers.id);
    expect(ids).not.toContain(seen[0]!.headers.id);
  });

  test('close({ drainMs: 500 }) returns within drainMs + 1 s + closeTimeoutMs while the server is silent; the held messages come back', async () => {
    const { link: l, servers: linked } = await link();
    const topic = `bounds-${randomUUID()}`;
    const Event = defineEvent({
      type: 'nats.item_recorded',
      version: 1,
      schema: z.object({ n: z.number() }),
      topic,
    });
    const closeTimeoutMs = 1_500;
    // A short lease: messages held by the silenced consumer come back within seconds if its
    // naks never reach the server.
    const transport = (s: string[]) => nats({ servers: s, prefix, closeTimeoutMs, leaseMs: 3_000 });
    const consumer = await createBus({ source: 't', transport: transport(linked), logger: silentLogger });
    const producer = await createBus({ source: 't', transport: transport(servers), logger: silentLogger });
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
    await l.close();

    const next = await createBus({ source: 't', transport: transport(servers), logger: silentLogger });
    cleanups.push(() => next.close());
    const seen = new Set<string>();
    next.subscribe(Event, (e) => void seen.add(e.id), { group: 'g', concurrency: 8 });
    await next.start();
    await waitFor(() => seen.size === 4, { timeoutMs: 20_000, message: () => `${seen.size}/4 redelivered` });
    expect(seen).toEqual(new Set(published.map((e) => e.id)));
  }, 60_000);

  test('a publish not acknowledged within publishTimeoutMs rejects with a retryable TransportError (ETIMEDOUT)', async () => {
    const { link: l, servers: linked } = await link();
    const t = nats({ servers: linked, prefix, publishTimeoutMs: 700, closeTimeoutMs: 300 });
    cleanups.push(() => t.close());
    await t.connect();
    const topic = `publish-${randomUUID()}`;
    await t.publish([message(topic)]);
    l.silence();
    const started = performance.now();
    const error = await t.publish([message(topic), message(topic)]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(performance.now() - started).toBeLessThan(700 + 500);
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ retryable: true, driverCode: 'ETIMEDOUT' });
    expect((error as Error).message).toMatch(/^nats: publish: /);
  }, 30_000);
});
