/**
 * The outbox on a real Postgres: `publish(..., { tx })` records the send span around the outbox
 * write; the relay publishes the stored envelope as is, so the consumer's process span links to
 * the span of the transactional publish. And the relay's lag feeds `eventwire.outbox.lag`.
 */
import { randomUUID } from 'node:crypto';
import {
  createBus,
  defineEvent,
  memoryBroker,
  memoryTransport,
  parseTraceparent,
  silentLogger,
} from '@eventwire/core';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { describeBroker, POSTGRES_URL } from '../../../test/support/brokers.ts';
import { openTelemetry } from '../src/index.ts';
import { harness, waitFor } from './harness.ts';

const postgresAdapter: Record<string, unknown> = await import('@eventwire/postgres');
const ready = ['postgresOutbox', 'startRelay', 'migrate'].every(
  (name) => typeof postgresAdapter[name] === 'function',
);

describeBroker('postgres', () => {
  const schema = `ew_otel_outbox_${randomUUID().slice(0, 8)}`;
  let pool: pg.Pool | undefined;

  beforeAll(async () => {
    if (!ready) return;
    const admin = new pg.Pool({ connectionString: POSTGRES_URL });
    try {
      await admin.query(`create schema ${schema}`);
    } finally {
      await admin.end();
    }
    pool = new pg.Pool({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
  });

  afterAll(async () => {
    if (!pool) return;
    await pool.end();
    const admin = new pg.Pool({ connectionString: POSTGRES_URL });
    await admin.query(`drop schema ${schema} cascade`);
    await admin.end();
  });

  it.runIf(ready)(
    'outbox: the consumer links to the transactional send span; the relay lag is a gauge',
    async () => {
      const { postgresOutbox, startRelay } = postgresAdapter as typeof import('@eventwire/postgres');
      const h = harness();
      const otel = openTelemetry({ tracerProvider: h.tracerProvider, meterProvider: h.meterProvider });
      const Placed = defineEvent({
        type: 'otel.outbox.placed',
        version: 1,
        schema: z.object({ n: z.number() }),
      });
      // The memory transport cannot write inside a database transaction: `{ tx }` goes to the outbox.
      const bus = await createBus({
        transport: memoryTransport({ broker: memoryBroker(`otel-outbox-${schema}`) }),
        source: 'otel-outbox',
        outbox: postgresOutbox(pool!),
        logger: silentLogger,
        middleware: [otel],
      });
      bus.subscribe(Placed, async () => {}, { group: 'billing' });
      await bus.start();

      const client = await pool!.connect();
      let envelope: Awaited<ReturnType<typeof bus.publish<{ n: number }>>>;
      try {
        await client.query('begin');
        envelope = await bus.publish(Placed, { n: 1 }, { tx: client });
        await client.query('commit');
      } finally {
        client.release();
      }
      const send = h.spans().find((s) => s.name === 'send otel.outbox.placed')!;
      expect(parseTraceparent(envelope.traceparent)!.spanId).toBe(send.spanContext().spanId);

      const pushed: number[] = [];
      const relay = await startRelay({
        database: pool!,
        transport: bus.transport,
        logger: silentLogger,
        pollIntervalMs: 50,
        onLag: (ms) => {
          pushed.push(ms);
          otel.recordOutboxLag(ms / 1000, { 'eventwire.outbox.relay': 'push' });
        },
      });
      const stopObserving = otel.observeOutboxLag(async () => (await relay.lag()) / 1000, {
        'eventwire.outbox.relay': 'pull',
      });
      try {
        const proc = await waitFor(
          () => h.spans().find((s) => s.name === 'process otel.outbox.placed'),
          'the relayed event to be processed',
        );
        expect(proc.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
        expect(proc.attributes['messaging.message.id']).toBe(envelope.id);
        // The relay publishes stored rows through the transport: no second send span.
        expect(h.spans().filter((s) => s.name === 'send otel.outbox.placed')).toHaveLength(1);

        await waitFor(() => pushed.length > 0, 'a lag report from the relay');
        const points = await h.points('eventwire.outbox.lag');
        const byRelay = Object.fromEntries(
          points.map((p) => [p.attributes['eventwire.outbox.relay'], p.value as number]),
        );
        expect(Object.keys(byRelay).sort()).toEqual(['pull', 'push']);
        for (const value of Object.values(byRelay)) {
          expect(value).toBeGreaterThanOrEqual(0);
          expect(value).toBeLessThan(60);
        }
      } finally {
        stopObserving();
        await relay.stop();
        await bus.close({ drainMs: 500 });
        await h.shutdown();
      }
    },
  );
});
