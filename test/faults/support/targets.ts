/**
 * The brokers the fault suite runs against, and how to build a transport for each at a given
 * address (the broker itself, or a Toxiproxy proxy in front of it). Imported by the vitest files
 * and by the child processes (`child.ts`), so it must not import vitest.
 */
import {
  defineEvent,
  type EventDefinition,
  jsonLogger,
  type Logger,
  silentLogger,
  type Transport,
} from '@eventwire/core';
import { nats } from '@eventwire/nats';
import { postgres } from '@eventwire/postgres';
import { redis } from '@eventwire/redis';
import { z } from 'zod';
import type { Endpoint } from './toxiproxy.ts';

export type FaultBroker = 'redis' | 'nats' | 'postgres';

export const Item = z.object({
  /** Sequence number in the test. */
  n: z.number().int(),
  /** When its (first) publish started, ms since the epoch: events published after a heal tell recovery. */
  t: z.number(),
});
export type Item = z.infer<typeof Item>;

export function faultEvent(topic: string): EventDefinition<Item> {
  return defineEvent({
    type: 'faults.item_recorded',
    version: 1,
    schema: Item,
    topic,
    key: (d) => `k${d.n % 16}`,
  });
}

/** Logs of eventwire itself: silent unless EVENTWIRE_FAULTS_VERBOSE=1 (then warnings on stderr). */
export function faultLogger(): Logger {
  return process.env.EVENTWIRE_FAULTS_VERBOSE === '1' ? jsonLogger('warn') : silentLogger;
}

/** host:port of a broker URL. */
export function endpointOf(url: string): Endpoint {
  const parsed = new URL(url);
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port) };
}

/** The same URL pointing at another host:port (credentials, path and query kept). */
export function atEndpoint(url: string, endpoint: Endpoint): string {
  const parsed = new URL(url);
  parsed.hostname = endpoint.host;
  parsed.port = String(endpoint.port);
  return parsed.toString();
}

/**
 * A transport on the broker at `url`. `prefix` ([a-z0-9-]) keeps a run's streams and keys apart
 * from everyone else's on the shared brokers (Postgres' tables are shared; topic names differ).
 */
export function faultTransport(broker: FaultBroker, url: string, prefix: string): Transport {
  switch (broker) {
    case 'redis':
      return redis({ url, prefix: `${prefix}:`, logger: faultLogger() });
    case 'nats':
      return nats({ servers: url, prefix });
    case 'postgres':
      return postgres({ url, pollIntervalMs: 250 });
  }
}
