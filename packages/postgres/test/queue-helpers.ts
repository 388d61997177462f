/**
 * What the queue tests share: a message, a transport on PGlite or in a schema of its own on the
 * server, and a subscription that records its deliveries.
 */
import type { IncomingMessage, OutgoingMessage, SubscriptionSpec, Transport } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import type { SqlDriver } from '../src/driver.ts';
import { pgDriver } from '../src/pg-driver.ts';
import { openPglite, pgliteDriver } from '../src/pglite-driver.ts';
import { type QueueTransportOptions, queueTransport } from '../src/queue-transport.ts';
import { freshSchema, POSTGRES_URL } from './server.ts';

const body = new TextEncoder().encode('{}');

export const message = (id: string, topic = 't'): OutgoingMessage => ({
  topic,
  id,
  headers: { specversion: '1.0', type: 't.happened', source: 'test', id },
  body,
});

export const spec = (overrides: Partial<SubscriptionSpec> = {}): SubscriptionSpec => ({
  topic: 't',
  group: 'g',
  from: 'latest',
  maxInFlight: 10,
  ordering: 'none',
  leaseMs: 30_000,
  ...overrides,
});

/** A database driver for the queue: PGlite in memory, or a pool in a fresh schema of the server. */
export async function openDriver(kind: 'pglite' | 'server'): Promise<SqlDriver> {
  if (kind === 'pglite') return pgliteDriver(await openPglite(), { owns: true });
  const { poolOptions } = await freshSchema('ew_queue_test');
  const pg = (await import('pg')).default;
  return pgDriver(new pg.Pool({ connectionString: POSTGRES_URL, ...poolOptions }), { ownsPool: true });
}

export async function openTransport(
  driver: SqlDriver,
  options: QueueTransportOptions = {},
): Promise<Transport> {
  const transport = queueTransport(driver, options);
  await transport.connect();
  return transport;
}

/** Subscribes and keeps every delivery, in arrival order. */
export async function record(transport: Transport, overrides: Partial<SubscriptionSpec> = {}) {
  const deliveries: IncomingMessage[] = [];
  const subscription = await transport.subscribe(spec(overrides), (m) => deliveries.push(m));
  return {
    deliveries,
    subscription,
    /** Waits for the `n`th delivery (1-based) and returns it. */
    nth: (n: number, timeoutMs = 10_000) => waitFor(() => deliveries[n - 1], { timeoutMs }),
  };
}
