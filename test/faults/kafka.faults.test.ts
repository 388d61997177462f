import { privateKafka } from './support/private-brokers.ts';
import { defineFaultSuite } from './support/suite.ts';
import { KAFKA_REQUEST_TIMEOUT_MS } from './support/targets.ts';

const kafkajs = process.env.EVENTWIRE_KAFKA_CLIENT === 'kafkajs';

// A private single-node Kafka (the jars scripts/brokers/kafka.sh installed, free ports, a temp
// data dir) with one listener per proxy, each advertising the proxy's address: a client that
// bootstraps through a proxy gets metadata naming the proxy, so every connection (bootstrap,
// partition leader, group coordinator) goes through it. Children and direct buses use its plain
// listener. The shared Kafka is not used. EVENTWIRE_KAFKA_CLIENT=kafkajs runs the other client.
defineFaultSuite({
  broker: 'kafka',
  // No per-call publish deadline: a request is retried, (retries + 1) x requestTimeoutMs, with 3
  // retries on @platformatic/kafka and 5 on kafkajs (packages/kafka README, "Deadlines"); 5 s here.
  publishBoundMs: (kafkajs ? 6 : 4) * KAFKA_REQUEST_TIMEOUT_MS,
  // consumer.sessionTimeoutMs 6 s + rebalance.
  redeliveryMs: 30_000,
  privateBroker: () => privateKafka(2),
  brokerStartMs: 60_000,
  ...(kafkajs
    ? {
        knownDefects: {
          // kafkajs client (issue 16 item 3, not root-caused): events whose publish resolved are
          // never handled after connection resets. Measured with EVENTWIRE_KAFKA_CLIENT=kafkajs:
          // 5 and 6 of 2,000 resolved not handled within 45 s after the last of 4 resets (5 and
          // 6 duplicates), two runs; the default client loses none.
          reset: 'kafkajs: resolved events never handled after connection resets',
          // kafkajs client: no publish bound under a silent partition. Publishes sent into the
          // blackhole stay pending for all of it and settle only after the heal: slowest 23.2 s
          // in a 23 s blackhole, 33.2 s in a 33 s one (4 over the documented (5 + 1) x
          // requestTimeoutMs = 30 s); the default client rejects at 4 x requestTimeoutMs.
          'blackhole-bound': 'kafkajs: publish pending for the whole blackhole (no bound)',
        },
      }
    : {}),
});
