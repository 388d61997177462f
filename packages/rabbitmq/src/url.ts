import { ConfigError, checkNumber, type NumericRange, redactUrl } from '@eventwire/core/transport';
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
  if (deliveryLimit !== null) options.deliveryLimit = urlNumber('deliveryLimit', deliveryLimit, { min: 1 });
  const sac = q.get('singleActiveConsumer');
  if (sac !== null) options.singleActiveConsumer = sac === 'true' || sac === '1';
  const replay = q.get('replay');
  if (replay !== null && replay !== 'false' && replay !== '0') {
    options.replay = replay === 'true' || replay === '1' ? true : { maxAge: replay };
  }
  const maxBytes = q.get('maxMessageBytes');
  if (maxBytes !== null) options.maxMessageBytes = urlNumber('maxMessageBytes', maxBytes, { min: 1 });
  const buckets = q.get('delayBuckets');
  if (buckets !== null)
    options.delayBuckets = buckets.split(',').map((b) => urlNumber('delayBuckets', b, BUCKET_RANGE));
  for (const name of OWN_PARAMS) q.delete(name);
  options.url = parsed.toString();
  return options;
}

/** Largest delay a Node timer takes (a longer one fires at once). */
const TIMER_MAX = 2 ** 31 - 1;
/** A delay bucket is a TTL in ms: RabbitMQ takes up to 2^32-1, Node timers (our own waits) 2^31-1. */
const BUCKET_RANGE: NumericRange = { min: 1, max: TIMER_MAX };
const MS: NumericRange = { min: 1, max: TIMER_MAX };

/** A numeric URL parameter, checked like the option it sets (a ConfigError naming it otherwise). */
function urlNumber(name: string, raw: string, range: NumericRange): number {
  // Number('') is 0: an empty value is as wrong as a word.
  const value = raw.trim() === '' ? Number.NaN : Number(raw);
  return checkNumber(`amqp URL parameter ${name}=${raw}`, value, range);
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
  const deliveryLimit = checkNumber('rabbitmq({ deliveryLimit })', options.deliveryLimit ?? 50, { min: 1 });
  const delayBuckets = [...(options.delayBuckets ?? DEFAULT_DELAY_BUCKETS)].sort((a, b) => a - b);
  if (delayBuckets.length === 0)
    throw new ConfigError('rabbitmq({ delayBuckets }) must be a non-empty list of delays (ms)');
  for (const bucket of delayBuckets) checkNumber('rabbitmq({ delayBuckets }) entry', bucket, BUCKET_RANGE);
  const maxMessageBytes = checkNumber(
    'rabbitmq({ maxMessageBytes })',
    options.maxMessageBytes ?? 16 * 1024 * 1024,
    {
      min: 1,
    },
  );
  // 0 turns heartbeats off (AMQP); the field is 16 bits.
  const heartbeatSeconds = checkNumber('rabbitmq({ heartbeatSeconds })', options.heartbeatSeconds ?? 10, {
    min: 0,
    max: 65_535,
  });
  const initialMs = checkNumber(
    'rabbitmq({ reconnect: { initialMs } })',
    options.reconnect?.initialMs ?? 100,
    MS,
  );
  const maxMs = checkNumber('rabbitmq({ reconnect: { maxMs } })', options.reconnect?.maxMs ?? 5_000, {
    min: initialMs,
    max: TIMER_MAX,
  });
  const connectTimeoutMs = checkNumber(
    'rabbitmq({ connectTimeoutMs })',
    options.connectTimeoutMs ?? 10_000,
    MS,
  );
  const publishTimeoutMs = checkNumber(
    'rabbitmq({ publishTimeoutMs })',
    options.publishTimeoutMs ?? 10_000,
    MS,
  );
  const closeTimeoutMs = checkNumber('rabbitmq({ closeTimeoutMs })', options.closeTimeoutMs ?? 2_000, MS);

  const replayMaxAge = options.replay
    ? ((typeof options.replay === 'object' ? options.replay.maxAge : undefined) ?? '7D')
    : undefined;
  if (replayMaxAge !== undefined && !/^\d+[YMDhms]$/.test(replayMaxAge)) {
    throw new ConfigError(
      `replay maxAge must be a RabbitMQ duration like 7D, 12h or 30m, got "${replayMaxAge}"`,
    );
  }

  // A heartbeat makes a crashed consumer's connection (and so its unacked messages) free quickly.
  let parsed: URL;
  try {
    parsed = new URL(options.url);
  } catch {
    throw new ConfigError(`invalid RabbitMQ URL "${redactUrl(options.url)}"`);
  }
  if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(heartbeatSeconds));
  return {
    url: parsed.toString(),
    // amqplib's socket timeout covers the whole handshake (it is cleared once the connection is
    // open): a broker that accepts the TCP connection and never answers fails the connect in time.
    socketOptions: { timeout: connectTimeoutMs, ...options.socketOptions },
    queueType,
    prefix,
    deliveryLimit,
    delayBuckets,
    singleActiveConsumer: options.singleActiveConsumer ?? false,
    replayMaxAge,
    maxMessageBytes,
    reconnect: { initialMs, maxMs },
    publishTimeoutMs,
    closeTimeoutMs,
  };
}
