/**
 * `@eventwire/rabbitmq`: the RabbitMQ adapter (amqplib). `createBus({ url: 'amqp://...' })`
 * loads it by scheme; `createBus({ transport: rabbitmq({ ... }) })` takes every option.
 */
import type { Transport } from '@eventwire/core/transport';
import type { RabbitMqOptions } from './options.ts';
import { RabbitMqTransport } from './transport.ts';
import { optionsFromUrl } from './url.ts';

export { DEAD_LETTER_HEADER, DEAD_LETTER_ID_HEADER } from './dead-letters.ts';
export { DEFAULT_DELAY_BUCKETS, type QueueType, type RabbitMqOptions } from './options.ts';
export { delayBucket, exchangeName, type GroupNames, groupNames } from './topology.ts';
export { RabbitMqTransport } from './transport.ts';

/** A RabbitMQ transport with typed options (TLS and auth through `socketOptions`). */
export function rabbitmq(options: RabbitMqOptions): Transport {
  return new RabbitMqTransport(options);
}

/** `amqp://` / `amqps://` URL to transport; eventwire's options may ride in the query string. */
export function transportFromUrl(url: string): Transport {
  return new RabbitMqTransport(optionsFromUrl(url));
}
