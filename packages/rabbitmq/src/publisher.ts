/**
 * Publishing with publisher confirms on one ConfirmChannel per connection. A publish resolves
 * only when the broker has confirmed (persisted, for durable queues) every message. The channel
 * is re-created on demand after it or the connection closed; exchanges and retry queues are
 * declared once per channel and remembered.
 *
 * A confirm that never comes (a silent partition) would keep a publish waiting until the
 * heartbeat declares the connection dead: `sendWithin` gives one send the publish deadline, and
 * the transport's publish gives a whole batch one deadline (one timer per batch, not per message).
 */
import { DeadlineError, TransportError, withDeadline } from '@eventwire/core/transport';
import type { ConfirmChannel, Options } from 'amqplib';
import type { ConnectionManager } from './connection.ts';
import { rabbitError } from './errors.ts';

export class Publisher {
  readonly #connection: ConnectionManager;
  readonly #timeoutMs: number;
  #channel: Promise<ConfirmChannel> | undefined;
  /** Names declared on the current channel's connection (exchanges, retry queues). */
  #declared = new Map<string, Promise<void>>();
  /** Set while the socket buffer is full: new publishes wait for 'drain'. */
  #drain: Promise<void> | undefined;

  constructor(connection: ConnectionManager, publishTimeoutMs: number) {
    this.#connection = connection;
    this.#timeoutMs = publishTimeoutMs;
  }

  /** The publish deadline, in ms. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** The error of a publish not confirmed within the deadline (it may still have been stored). */
  timeout(): TransportError {
    return new TransportError(
      `rabbitmq: publish: not confirmed within ${this.#timeoutMs} ms (it may still be stored)`,
      {
        driverCode: 'ETIMEDOUT',
      },
    );
  }

  /** {@link send} with the publish deadline. */
  sendWithin(exchange: string, routingKey: string, body: Buffer, options: Options.Publish): Promise<void> {
    return withDeadline(this.send(exchange, routingKey, body, options), this.#timeoutMs, '').catch(
      (error: unknown) => {
        throw error instanceof DeadlineError ? this.timeout() : error;
      },
    );
  }

  /** The confirm channel, created when needed. Rejects with a TransportError while disconnected. */
  channel(): Promise<ConfirmChannel> {
    if (this.#channel) return this.#channel;
    const model = this.#connection.require();
    const opening = model.createConfirmChannel().then((channel) => {
      channel.on('error', () => {});
      channel.on('close', () => {
        if (this.#channel === opening) this.#reset();
      });
      return channel;
    });
    this.#channel = opening;
    opening.catch(() => {
      if (this.#channel === opening) this.#reset();
    });
    return opening;
  }

  #reset(): void {
    this.#channel = undefined;
    this.#declared = new Map();
    this.#drain = undefined;
  }

  /**
   * Runs a declaration once per channel (`key` names it). A failed declaration is forgotten, so
   * it is tried again next time.
   */
  async declareOnce(key: string, declare: (channel: ConfirmChannel) => Promise<unknown>): Promise<void> {
    const channel = await this.channel();
    const declared = this.#declared;
    let pending = declared.get(key);
    if (!pending) {
      pending = declare(channel).then(() => undefined);
      declared.set(key, pending);
      pending.catch(() => {
        if (declared.get(key) === pending) declared.delete(key);
      });
    }
    await pending;
  }

  /**
   * Sends one message and resolves when the broker confirms it. `exchange` '' is the default
   * exchange (routing key = queue name).
   */
  async send(exchange: string, routingKey: string, body: Buffer, options: Options.Publish): Promise<void> {
    let channel: ConfirmChannel;
    try {
      channel = await this.channel();
    } catch (error) {
      throw rabbitError('open the confirm channel', error);
    }
    while (this.#drain) await this.#drain;
    await new Promise<void>((resolve, reject) => {
      let flowing: boolean;
      try {
        flowing = channel.publish(exchange, routingKey, body, options, (error: unknown) => {
          if (error) reject(rabbitError('publish not confirmed', error));
          else resolve();
        });
      } catch (error) {
        reject(rabbitError('publish', error));
        return;
      }
      if (!flowing && !this.#drain) {
        // The socket buffer is full: hold further publishes until it drains (or the channel dies).
        const drained = new Promise<void>((done) => {
          const finish = () => {
            channel.off('drain', finish);
            channel.off('close', finish);
            if (this.#drain === drained) this.#drain = undefined;
            done();
          };
          channel.on('drain', finish);
          channel.on('close', finish);
        });
        this.#drain = drained;
      }
    });
  }

  async close(): Promise<void> {
    const opening = this.#channel;
    this.#reset();
    const channel = await opening?.catch(() => undefined);
    // Closing waits for outstanding confirms to come back first (amqplib sends close after them),
    // within the close deadline.
    if (channel) await this.#connection.closing(channel.close());
  }
}
