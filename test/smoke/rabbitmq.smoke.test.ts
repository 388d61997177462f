import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { expect, it } from 'vitest';
import { describeBroker, RABBITMQ_URL } from '../support/brokers.ts';

describeBroker('rabbitmq', () => {
  it('publishes with a publisher confirm and consumes the message', async () => {
    const connection = await amqp.connect(RABBITMQ_URL);
    try {
      const channel = await connection.createConfirmChannel();
      const queue = `smoke.${randomUUID()}`;
      await channel.assertQueue(queue, { durable: true, autoDelete: false });
      try {
        const body = `hello ${queue}`;
        await new Promise<void>((resolve, reject) => {
          channel.sendToQueue(queue, Buffer.from(body), { persistent: true, messageId: queue }, (err) =>
            err ? reject(err) : resolve(),
          );
        });
        await channel.waitForConfirms();

        const received = new Promise<amqp.ConsumeMessage>((resolve) => {
          void channel.consume(queue, (msg) => {
            if (msg) {
              channel.ack(msg);
              resolve(msg);
            }
          });
        });
        const msg = await received;
        expect(msg.content.toString()).toBe(body);
        expect(msg.properties.messageId).toBe(queue);
      } finally {
        await channel.deleteQueue(queue);
        await channel.close();
      }
    } finally {
      await connection.close();
    }
  });
});
