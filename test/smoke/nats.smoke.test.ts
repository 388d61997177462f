import { randomUUID } from 'node:crypto';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { expect, it } from 'vitest';
import { describeBroker, NATS_URL } from '../support/brokers.ts';

describeBroker('nats', () => {
  it('adds a JetStream stream, publishes to it and consumes the message', async () => {
    const nc = await connect({ servers: NATS_URL.split(','), timeout: 5000 });
    const name = `smoke_${randomUUID().replaceAll('-', '')}`;
    const subject = `smoke.${name}`;
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.add({ name, subjects: [subject] });
      const js = jetstream(nc);
      const ack = await js.publish(subject, new TextEncoder().encode('hello'), { msgID: name });
      expect(ack.stream).toBe(name);
      expect(ack.seq).toBe(1);

      await jsm.consumers.add(name, { durable_name: 'smoke', ack_policy: AckPolicy.Explicit });
      const consumer = await js.consumers.get(name, 'smoke');
      const msg = await consumer.next({ expires: 5000 });
      expect(msg).not.toBeNull();
      expect(msg!.subject).toBe(subject);
      expect(msg!.string()).toBe('hello');
      await msg!.ackAck();
    } finally {
      await jsm.streams.delete(name).catch(() => undefined);
      await nc.close();
    }
  });
});
