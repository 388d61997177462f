/**
 * Names and declarations of the RabbitMQ objects behind a topic and a group:
 *
 * - `<prefix>.<topic>`: durable topic exchange, one per topic; publishers send here.
 * - `<prefix>.<topic>/<group>`: the group's queue (quorum by default), bound with `#`.
 * - `<prefix>.<topic>/<group>.dlq`: the group's dead letters (classic, so it can be browsed
 *   in order with basic.get and requeue).
 * - `<prefix>.<topic>/<group>.retry.<ms>`: one TTL queue per delay bucket, created on first use;
 *   expired messages are dead-lettered back to the group's queue through the default exchange.
 * - `<prefix>.<topic>.log`: with the `replay` option only, a stream bound to the exchange that
 *   retains the topic's events for new groups that start from the beginning.
 *
 * Every declaration is idempotent (same name, same arguments), so any process can re-declare
 * at any time, e.g. after a reconnect or a broker restart.
 */
import { ConfigError } from '@eventwire/core/transport';
import type { Channel } from 'amqplib';
import type { ResolvedOptions } from './options.ts';

export interface GroupNames {
  exchange: string;
  queue: string;
  dlq: string;
}

const MAX_NAME_BYTES = 255;

function checked(name: string): string {
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new ConfigError(
      `RabbitMQ names are limited to ${MAX_NAME_BYTES} bytes: "${name.slice(0, 80)}..." is too long`,
    );
  }
  return name;
}

export function exchangeName(options: ResolvedOptions, topic: string): string {
  return checked(`${options.prefix}.${topic}`);
}

/** The replay stream of a topic (no `/`, so it never collides with a group's queue). */
export function logName(options: ResolvedOptions, topic: string): string {
  return checked(`${options.prefix}.${topic}.log`);
}

export function groupNames(options: ResolvedOptions, topic: string, group: string): GroupNames {
  const queue = checked(`${options.prefix}.${topic}/${group}`);
  return { exchange: exchangeName(options, topic), queue, dlq: checked(`${queue}.dlq`) };
}

/** The smallest bucket not shorter than `delayMs` (a retry must never come early). */
export function delayBucket(options: ResolvedOptions, delayMs: number): number {
  for (const bucket of options.delayBuckets) if (bucket >= delayMs) return bucket;
  return Math.ceil(delayMs / 60_000) * 60_000;
}

export function retryQueueName(names: GroupNames, bucketMs: number): string {
  return checked(`${names.queue}.retry.${bucketMs}`);
}

export async function declareExchange(channel: Channel, exchange: string): Promise<void> {
  await channel.assertExchange(exchange, 'topic', { durable: true });
}

/** The topic's exchange, and its replay stream when replay is on. */
export async function declareTopic(channel: Channel, options: ResolvedOptions, topic: string): Promise<void> {
  const exchange = exchangeName(options, topic);
  await declareExchange(channel, exchange);
  if (options.replayMaxAge === undefined) return;
  const log = logName(options, topic);
  await channel.assertQueue(log, {
    durable: true,
    arguments: { 'x-queue-type': 'stream', 'x-max-age': options.replayMaxAge },
  });
  await channel.bindQueue(log, exchange, '#');
}

/** Exchange (and replay stream), group queue bound to it, and the dead-letter queue. */
export async function declareGroup(
  channel: Channel,
  options: ResolvedOptions,
  topic: string,
  names: GroupNames,
): Promise<void> {
  await declareTopic(channel, options, topic);
  await channel.assertQueue(names.dlq, { durable: true, arguments: { 'x-queue-type': 'classic' } });
  const args: Record<string, unknown> = {
    'x-queue-type': options.queueType,
    // Only RabbitMQ itself dead-letters from the group queue (quorum delivery limit): into the DLQ.
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': names.dlq,
  };
  if (options.queueType === 'quorum') args['x-delivery-limit'] = options.deliveryLimit;
  if (options.singleActiveConsumer) args['x-single-active-consumer'] = true;
  await channel.assertQueue(names.queue, { durable: true, arguments: args });
  await channel.bindQueue(names.queue, names.exchange, '#');
}

/** The TTL queue of one delay bucket: messages wait `bucketMs`, then go back to the group queue. */
export async function declareRetryQueue(
  channel: Channel,
  options: ResolvedOptions,
  names: GroupNames,
  bucketMs: number,
): Promise<string> {
  const name = retryQueueName(names, bucketMs);
  const args: Record<string, unknown> = {
    'x-queue-type': options.queueType,
    'x-message-ttl': bucketMs,
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': names.queue,
  };
  if (options.queueType === 'quorum') {
    // At-least-once dead-lettering: the message leaves this queue only once the group queue has it.
    args['x-dead-letter-strategy'] = 'at-least-once';
    args['x-overflow'] = 'reject-publish';
  }
  await channel.assertQueue(name, { durable: true, arguments: args });
  return name;
}

/** Turns a declaration conflict (406) into a ConfigError that says what to do. */
export function declarationError(error: unknown, what: string): Error | undefined {
  const code = (error as { code?: number }).code;
  if (code === 406) {
    return new ConfigError(
      `${what} already exists with different arguments (queue type, delivery limit, single active consumer?): ${(error as Error).message}. Use the same options everywhere, or delete the old queue.`,
    );
  }
  return undefined;
}
