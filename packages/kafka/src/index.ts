/**
 * @eventwire/kafka: Kafka and Redpanda transport for eventwire.
 *
 * ```ts
 * const bus = await createBus({ url: 'kafka://localhost:9092', source: 'checkout' });
 * // or, with options that do not fit a URL:
 * const bus = await createBus({ transport: kafka({ brokers: ['localhost:9092'], client: 'kafkajs' }), source: 'checkout' });
 * ```
 */
import type { Transport } from '@eventwire/core/transport';
import { kafka } from './transport.ts';
import { optionsFromUrl } from './url.ts';

export type { KafkaClientName, KafkaOptions, KafkaSaslOptions } from './options.ts';
export { deadLetterTopic } from './topology.ts';
export { DEFAULT_CLIENT, kafka } from './transport.ts';
export { optionsFromUrl } from './url.ts';

/** `kafka://host:port[,host:port][?client=kafkajs&partitions=6...]`; used by `createBus({ url })`. */
export function transportFromUrl(url: string): Transport {
  return kafka(optionsFromUrl(url));
}
