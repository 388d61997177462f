import { ConfigError, redactUrl } from '@eventwire/core';
import {
  DEFAULT_DELAY_BUCKETS,
  type QueueType,
  type RabbitMqOptions,
  type ResolvedOptions,
} from './options.ts';

/** Query parameters eventwire reads from an `amqp://` URL (the rest go to amqplib). */
const OWN_PARAMS = [
  'queueType',
  'prefix',
  'deliveryLimit',
  'singleActiveConsumer',
  'replay',
  'maxMessageBytes',
  'delayBuckets',
] as const;

/**
 * Reads eventwire's options from an `amqp(s)://` URL: `?queueType=classic&prefix=app&deliveryLimit=20`
 * `&singleActiveConsumer=true&maxMessageBytes=1048576&delayBuckets=100,1000,10000&replay=7D`
 * (`replay=true` for the default retention).
 * They are removed from the URL handed to amqplib, which would not know them.
 */
export function optionsFromUrl(url: string): RabbitMqOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`invalid RabbitMQ URL "${redactUrl(url)}"`);
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    throw new ConfigError(`RabbitMQ URL must start with amqp:// or amqps://, got "${redactUrl(url)}"`);
  }
  const options: RabbitMqOptions = { url };
  const q = parsed.searchParams;
  const queueType = q.get('queueType');
  if (queueType !== null) options.queueType = queueType as QueueType;
  const prefix = q.get('prefix');
  if (prefix !== null) options.prefix = prefix;
  const deliveryLimit = q.get('deliveryLimit');
  if (deliveryLimit !== null) options.deliveryLimit = Number(deliveryLimit);
  const sac = q.get('singleActiveConsumer');
  if (sac !== null) options.singleActiveConsumer = sac === 'true' || sac === '1';
  const replay = q.get('replay');
  if (replay !== null && replay !== 'false' && replay !== '0') {
    options.replay = replay === 'true' || replay === '1' ? true : { maxAge: replay };
  }
  const maxBytes = q.get('maxMessageBytes');
  if (maxBytes !== null) options.maxMessageBytes = Number(maxBytes);
  const buckets = q.get('delayBuckets');
  if (buckets !== null) options.delayBuckets = buckets.split(',').map(Number);
  for (const name of OWN_PARAMS) q.delete(name);
  options.url = parsed.toString();
  return options;
}

/** Validates options and fills in defaults. Throws {@link ConfigError} naming the bad option. */
export function resolveOptions(options: RabbitMqOptions): ResolvedOptions {
  if (!options.url) throw new ConfigError('rabbitmq({ url }) needs a url');
  const queueType = options.queueType ?? 'quorum';
  if (queueType !== 'quorum' && queueType !== 'classic') {
    throw new ConfigError(`queueType must be "quorum" or "classic", got "${String(queueType)}"`);
  }
  const prefix = options.prefix ?? 'ew';
  if (!prefix || /\s/.test(prefix)) throw new ConfigError('prefix must be a non-empty name without spaces');
  const deliveryLimit = options.deliveryLimit ?? 50;
  if (!Number.isInteger(deliveryLimit) || deliveryLimit < 1)
    throw new ConfigError('deliveryLimit must be an integer >= 1');
  const delayBuckets = [...(options.delayBuckets ?? DEFAULT_DELAY_BUCKETS)].sort((a, b) => a - b);
  if (delayBuckets.length === 0 || delayBuckets.some((b) => !Number.isInteger(b) || b < 1)) {
    throw new ConfigError('delayBuckets must be a non-empty list of integers >= 1 (ms)');
  }
  const maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024;
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 1)
    throw new ConfigError('maxMessageBytes must be an integer >= 1');

  const replayMaxAge = options.replay
    ? ((typeof options.replay === 'object' ? options.replay.maxAge : undefined) ?? '7D')
    : undefined;
  if (replayMaxAge !== undefined && !/^\d+[YMDhms]$/.test(replayMaxAge)) {
    throw new ConfigError(
      `replay maxAge must be a RabbitMQ duration like 7D, 12h or 30m, got "${replayMaxAge}"`,
    );
  }

  // A heartbeat makes a crashed consumer's connection (and so its unacked messages) free quickly.
  const parsed = new URL(options.url);
  if (!parsed.searchParams.has('heartbeat'))
    parsed.searchParams.set('heartbeat', String(options.heartbeatSeconds ?? 10));
  return {
    url: parsed.toString(),
    socketOptions: options.socketOptions ?? {},
    queueType,
    prefix,
    deliveryLimit,
    delayBuckets,
    singleActiveConsumer: options.singleActiveConsumer ?? false,
    replayMaxAge,
    maxMessageBytes,
    reconnect: { initialMs: options.reconnect?.initialMs ?? 100, maxMs: options.reconnect?.maxMs ?? 5_000 },
  };
}
