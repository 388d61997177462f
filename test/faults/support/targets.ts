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
import { kafka, optionsFromUrl } from '@eventwire/kafka';
import { nats } from '@eventwire/nats';
import { postgres } from '@eventwire/postgres';
import { rabbitmq } from '@eventwire/rabbitmq';
import { redis } from '@eventwire/redis';
import { snsSqs } from '@eventwire/sns-sqs';
import { z } from 'zod';
import type { Endpoint } from './toxiproxy.ts';

export type FaultBroker = 'redis' | 'nats' | 'postgres' | 'rabbitmq' | 'kafka' | 'sns-sqs';

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

/**
 * host:port of a broker URL. `sns-sqs://<region>?endpoint=http://host:port`: the endpoint's (the
 * HTTP server the SDK talks to, moto here).
 */
export function endpointOf(url: string): Endpoint {
  const parsed = new URL(url);
  if (parsed.protocol === 'sns-sqs:') return endpointOf(parsed.searchParams.get('endpoint')!);
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port) };
}

/** The same URL pointing at another host:port (credentials, path and query kept). */
export function atEndpoint(url: string, endpoint: Endpoint): string {
  const parsed = new URL(url);
  if (parsed.protocol === 'sns-sqs:') {
    parsed.searchParams.set('endpoint', atEndpoint(parsed.searchParams.get('endpoint')!, endpoint));
    return parsed.toString();
  }
  parsed.hostname = endpoint.host;
  parsed.port = String(endpoint.port);
  return parsed.toString();
}

/**
 * Kafka's per-request deadline in the fault suite. The adapter has no per-call publish deadline
 * (packages/kafka README, "Deadlines": about (retries + 1) x requestTimeoutMs, 4 x 30 s by
 * default on @platformatic/kafka); 5 s makes that bound 20 s, so a blackhole can outlast it.
 */
export const KAFKA_REQUEST_TIMEOUT_MS = 5_000;

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
    case 'rabbitmq':
      return rabbitmq({ url, prefix });
    case 'kafka':
      return kafka({
        ...optionsFromUrl(url),
        ...(process.env.EVENTWIRE_KAFKA_CLIENT === 'kafkajs' ? { client: 'kafkajs' as const } : {}),
        logger: faultLogger(),
        requestTimeoutMs: KAFKA_REQUEST_TIMEOUT_MS,
        topics: { partitions: 4, replicationFactor: 1 },
        // as the conformance suite: a crashed member's partitions move after ~6 s
        consumer: {
          sessionTimeoutMs: 6_000,
          heartbeatIntervalMs: 500,
          rebalanceTimeoutMs: 10_000,
          maxWaitMs: 200,
        },
      });
    case 'sns-sqs': {
      const parsed = new URL(url);
      return snsSqs({
        region: parsed.hostname || 'us-east-1',
        endpoint: parsed.searchParams.get('endpoint')!,
        waitTimeSeconds: 1,
      });
    }
  }
}
