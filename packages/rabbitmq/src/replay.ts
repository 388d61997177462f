/**
 * Replay from the start (opt-in `replay` option). Queues keep nothing from before they existed,
 * so each topic also feeds a RabbitMQ stream, `<prefix>.<topic>.log`, which retains its events
 * for `maxAge`. When a group that does not exist yet asks for `from: 'beginning'`, its queue is
 * declared and bound first (so new events flow in from then on), then the stream is read from
 * its first offset and every retained event is copied into the queue, up to a marker this call
 * appended to the stream. Events published around the binding may arrive twice (allowed: at
 * least once); none is missed.
 */
import { randomUUID } from 'node:crypto';
import { TransportError } from '@eventwire/core/transport';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { ConnectionManager } from './connection.ts';
import { rabbitError } from './errors.ts';
import type { ResolvedOptions } from './options.ts';
import type { Publisher } from './publisher.ts';
import { copyProperties } from './subscription.ts';
import { type GroupNames, logName } from './topology.ts';
import { withoutBrokerHeaders } from './wire.ts';

/** Header of the end marker a copy appends to the stream; group queues never see it. */
const MARKER_HEADER = 'ewreplaymarker';

/** True when the queue exists (checked on a throwaway channel: a 404 closes the channel). */
export async function queueExists(connection: ConnectionManager, queue: string): Promise<boolean> {
  const channel = await connection.require().createChannel();
  channel.on('error', () => {});
  try {
    await channel.checkQueue(queue);
    return true;
  } catch (error) {
    if ((error as { code?: number }).code === 404) return false;
    throw error;
  } finally {
    await channel.close().catch(() => {});
  }
}

/** Copies the topic's retained events into a new group's queue. Resolves with the number copied. */
export async function copyRetained(
  connection: ConnectionManager,
  publisher: Publisher,
  options: ResolvedOptions,
  topic: string,
  names: GroupNames,
): Promise<number> {
  const log = logName(options, topic);
  const marker = randomUUID();
  await publisher.sendWithin('', log, Buffer.alloc(0), {
    persistent: true,
    headers: { [MARKER_HEADER]: marker },
  });
  const channel: Channel = await connection.require().createChannel();
  channel.on('error', () => {});
  const copies: Promise<void>[] = [];
  try {
    // Streams need a prefetch and manual acks; acks only move the consumer's window.
    await channel.prefetch(1000);
    await new Promise<void>((resolve, reject) => {
      channel.on('close', () => reject(new TransportError(`replay stream ${log} closed while copying`)));
      const onMessage = (message: ConsumeMessage | null) => {
        if (message === null)
          return reject(new TransportError(`replay stream ${log} consumer was cancelled`));
        channel.ack(message);
        const headers = message.properties.headers ?? {};
        if (headers[MARKER_HEADER] !== undefined) {
          if (String(headers[MARKER_HEADER]) === marker) resolve();
          return;
        }
        copies.push(
          publisher.sendWithin(
            '',
            names.queue,
            message.content,
            copyProperties(message, withoutBrokerHeaders(headers)),
          ),
        );
      };
      channel
        .consume(log, onMessage, { noAck: false, arguments: { 'x-stream-offset': 'first' } })
        .catch(reject);
    });
    await Promise.all(copies);
    return copies.length;
  } catch (error) {
    throw rabbitError(`replay ${log} into ${names.queue}`, error);
  } finally {
    await channel.close().catch(() => {});
  }
}
