import { privateKafka } from './support/private-brokers.ts';
import { defineFaultSuite } from './support/suite.ts';
import { KAFKA_REQUEST_TIMEOUT_MS } from './support/targets.ts';

// A private single-node Kafka (the jars scripts/brokers/kafka.sh installed, free ports, a temp
// data dir) with one listener per proxy, each advertising the proxy's address: a client that
// bootstraps through a proxy gets metadata naming the proxy, so every connection (bootstrap,
// partition leader, group coordinator) goes through it. Children and direct buses use its plain
// listener. The shared Kafka is not used. EVENTWIRE_KAFKA_CLIENT=kafkajs runs the other client.
defineFaultSuite({
  broker: 'kafka',
  // No per-call publish deadline: a request is retried, (3 retries + 1) x requestTimeoutMs on
  // @platformatic/kafka (packages/kafka README, "Deadlines"); 5 s here.
  publishBoundMs: 4 * KAFKA_REQUEST_TIMEOUT_MS,
  // consumer.sessionTimeoutMs 6 s + rebalance.
  redeliveryMs: 30_000,
  privateBroker: () => privateKafka(2),
  brokerStartMs: 60_000,
});
