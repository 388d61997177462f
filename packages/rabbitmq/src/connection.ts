/**
 * One AMQP connection that heals itself: when it drops (broker restart, network), it is
 * re-opened with exponential backoff and full jitter, and every `onConnect` listener runs again
 * so the publisher re-creates its confirm channel and each subscription re-declares its
 * topology and re-consumes. While it is down, `health()` says so with the reason.
 */
import { redactText, TransportError } from '@eventwire/core';
import amqp, { type ChannelModel } from 'amqplib';
import type { ResolvedOptions } from './options.ts';

export class ConnectionManager {
  readonly #options: ResolvedOptions;
  #model: ChannelModel | undefined;
  #opening: Promise<ChannelModel> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #closed = false;
  #lastError: string | undefined = 'not connected yet';
  readonly #listeners = new Set<(model: ChannelModel) => void>();

  constructor(options: ResolvedOptions) {
    this.#options = options;
  }

  /** The open connection, or undefined while (re)connecting. */
  get current(): ChannelModel | undefined {
    return this.#model;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Why the connection is down (no credentials), or undefined when it is up. */
  get downReason(): string | undefined {
    return this.#model ? undefined : (this.#lastError ?? 'not connected');
  }

  /** Opens the first connection. Rejects with a TransportError when the broker does not answer. */
  async connect(): Promise<ChannelModel> {
    if (this.#closed) throw new TransportError('rabbitmq transport is closed');
    if (this.#model) return this.#model;
    try {
      return await this.#open();
    } catch (error) {
      throw new TransportError(`cannot connect to RabbitMQ: ${this.#lastError ?? describe(error)}`);
    }
  }

  /** The connection, or a TransportError saying why there is none. */
  require(): ChannelModel {
    if (this.#model) return this.#model;
    throw new TransportError(`RabbitMQ is not connected: ${this.downReason}`);
  }

  /** Runs `listener` on every (re)connection after this call. Returns the unsubscribe function. */
  onConnect(listener: (model: ChannelModel) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#listeners.clear();
    const model = this.#model ?? (await this.#opening?.catch(() => undefined));
    this.#model = undefined;
    this.#lastError = 'transport closed';
    if (model) await model.close().catch(() => {});
  }

  #open(): Promise<ChannelModel> {
    this.#opening ??= (async () => {
      try {
        const model = await amqp.connect(this.#options.url, this.#options.socketOptions);
        if (this.#closed) {
          await model.close().catch(() => {});
          throw new TransportError('rabbitmq transport is closed');
        }
        // Without an 'error' listener, an EventEmitter error would crash the process.
        model.on('error', (error: Error) => {
          this.#lastError = describe(error);
        });
        model.on('close', (error?: Error) => this.#lost(model, error));
        model.on('blocked', (reason: string) => {
          this.#lastError = `broker blocked publishing: ${reason}`;
        });
        this.#model = model;
        this.#lastError = undefined;
        this.#attempt = 0;
        for (const listener of [...this.#listeners]) {
          try {
            listener(model);
          } catch {
            // A listener's failure is its own business (it reschedules itself).
          }
        }
        return model;
      } catch (error) {
        this.#lastError = describe(error);
        throw error;
      } finally {
        this.#opening = undefined;
      }
    })();
    return this.#opening;
  }

  #lost(model: ChannelModel, error?: Error): void {
    if (this.#model !== model) return;
    this.#model = undefined;
    this.#lastError = error ? describe(error) : 'connection closed';
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#timer) return;
    const { initialMs, maxMs } = this.#options.reconnect;
    const ceiling = Math.min(maxMs, initialMs * 2 ** this.#attempt++);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      this.#open().catch(() => this.#schedule());
    }, delay);
  }
}

/** An error as a short, credential-free sentence. */
export function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const message = redactText(error.message || error.name);
    return code !== undefined && !message.includes(String(code)) ? `${message} (${String(code)})` : message;
  }
  return redactText(String(error));
}
