import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { expect, it } from 'vitest';
import { describeBroker, KAFKA_URL, kafkaBrokers } from '../support/brokers.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

describeBroker('kafka', () => {
  it('produces a message and consumes it in a consumer group', async () => {
    const kafka = new Kafka({
      clientId: 'eventwire-smoke',
      brokers: kafkaBrokers(KAFKA_URL),
      logLevel: logLevel.WARN,
    });
    const topic = `smoke.${randomUUID()}`;
    const admin = kafka.admin();
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: `smoke-${randomUUID()}` });
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
        waitForLeaders: true,
      });
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'hello' }] });

      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const received = new Promise<{ key?: string; value?: string }>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => {
            resolve({ key: message.key?.toString(), value: message.value?.toString() });
          },
        });
      });
      expect(await received).toEqual({ key: 'k', value: 'hello' });
    } finally {
      await Promise.allSettled([consumer.disconnect(), producer.disconnect()]);
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
