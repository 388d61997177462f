/**
 * The chosen client library is loaded when the transport connects, not when the package is
 * imported: `@platformatic/kafka` and `kafkajs` are both optional peers, and an application
 * installs only the one it uses. A missing one is an AdapterNotInstalledError naming it.
 */
import { loadOptional } from '@eventwire/core/transport';
import type { ClientGroupConsumer, GroupConsumerOptions, GroupHooks, KafkaClient } from './client.ts';
import type { ResolvedKafkaOptions } from './options.ts';

function load(options: ResolvedKafkaOptions): Promise<KafkaClient> {
  const neededFor = `@eventwire/kafka with client "${options.client}"`;
  return options.client === 'kafkajs'
    ? loadOptional(neededFor, async () => (await import('./clients/kafkajs.ts')).kafkajsClient(options))
    : loadOptional(neededFor, async () =>
        (await import('./clients/platformatic.ts')).platformaticClient(options),
      );
}

/** A KafkaClient whose implementation is loaded by the first `connect()`. */
export function lazyClient(options: ResolvedKafkaOptions): KafkaClient {
  let inner: KafkaClient | undefined;
  let loading: Promise<KafkaClient> | undefined;
  const loaded = (): Promise<KafkaClient> => {
    loading ??= load(options).then((client) => (inner = client));
    // A failed load (package missing) is tried again by the next call.
    loading.catch(() => {
      loading = undefined;
    });
    return loading;
  };
  const ready = (): KafkaClient => {
    if (!inner) throw new Error('kafka client used before connect()');
    return inner;
  };
  return {
    name: options.client,
    connect: async () => (await loaded()).connect(),
    produce: async (records) => (await loaded()).produce(records),
    createTopics: async (topics) => (await loaded()).createTopics(topics),
    partitionCount: async (topic) => (await loaded()).partitionCount(topic),
    offsets: async (topic, which) => (await loaded()).offsets(topic, which),
    offsetsForTime: async (topic, timestampMs) => (await loaded()).offsetsForTime(topic, timestampMs),
    committed: async (group, topic) => (await loaded()).committed(group, topic),
    commitInactiveGroup: async (group, topic, offsets) =>
      (await loaded()).commitInactiveGroup(group, topic, offsets),
    read: async (topic, partition, from, to) => (await loaded()).read(topic, partition, from, to),
    ping: async (timeoutMs) => (await loaded()).ping(timeoutMs),
    // Subscriptions start after connect(): the client is loaded by then.
    groupConsumer: (o: GroupConsumerOptions, hooks: GroupHooks): ClientGroupConsumer =>
      ready().groupConsumer(o, hooks),
    close: async (graceMs) => inner?.close(graceMs),
  };
}
