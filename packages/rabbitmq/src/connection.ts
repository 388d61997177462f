/**
 * One AMQP connection that heals itself: when it drops (broker restart, network), it is
 * re-opened with exponential backoff and full jitter, and every `onConnect` listener runs again
 * so the publisher re-creates its confirm channel and each subscription re-declares its
 * topology and re-consumes. While it is down, `health()` says so with the reason.
 *
 * A first connect that fails leaves nothing behind: amqplib destroys its socket, and no
 * reconnect is scheduled (only a connection that was up and dropped is re-opened), so a process
 * that catches the error can exit (DESIGN.md section 13).
 */
import { redactUrl, TransportError, withDeadline } from '@eventwire/core/transport';
import amqp, { type ChannelModel } from 'amqplib';
import { describe, rabbitError } from './errors.ts';
import type { ResolvedOptions } from './options.ts';

export class ConnectionManager {
  readonly #options: ResolvedOptions;
  #model: ChannelModel | undefined;
  #opening: Promise<ChannelModel> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #closed = false;
  #lastError: string | undefined = 'not connected yet';
  /** A step of closing got no answer in time: the rest of closing does not wait for the broker. */
  #unresponsive = false;
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

  /**
   * Opens the first connection. Rejects with a TransportError when the broker refuses it or does
   * not complete the handshake within `connectTimeoutMs` (amqplib's socket timeout).
   */
  async connect(): Promise<ChannelModel> {
    if (this.#closed) throw new TransportError('rabbitmq: connect: the transport is closed');
    if (this.#model) return this.#model;
    try {
      return await this.#open();
    } catch (error) {
      throw rabbitError(`connect (${redactUrl(this.#options.url)})`, error);
    }
  }

  /** The connection, or a TransportError saying why there is none. */
  require(): ChannelModel {
    if (this.#model) return this.#model;
    throw new TransportError(`rabbitmq: not connected: ${this.downReason}`);
  }

  /**
   * Runs one step of closing (`what`) with the close deadline. When the broker does not answer in
   * time, the step is abandoned, and every later step too (it would only wait out another
   * deadline): the socket is destroyed at the end of close().
   */
  async closing(what: Promise<unknown>): Promise<void> {
    if (this.#unresponsive) {
      what.catch(() => {});
      return;
    }
    try {
      await withDeadline(what, this.#options.closeTimeoutMs, 'close step timed out');
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ETIMEDOUT') this.#unresponsive = true;
    }
  }

  /** Runs `listener` on every (re)connection after this call. Returns the unsubscribe function. */
  onConnect(listener: (model: ChannelModel) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Closes the connection (within the close deadline). A broker that does not answer gets its
   * socket destroyed: RabbitMQ then hands back what this connection's channels held as soon as it
   * notices (at once on a reset, within two heartbeats otherwise).
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#listeners.clear();
    const model = this.#model ?? (await this.#opening?.catch(() => undefined));
    this.#model = undefined;
    this.#lastError = 'transport closed';
    if (!model) return;
    await this.closing(model.close());
    if (this.#unresponsive) destroySocket(model);
  }

  #open(): Promise<ChannelModel> {
    this.#opening ??= (async () => {
      try {
        const model = await amqp.connect(this.#options.url, this.#options.socketOptions);
        if (this.#closed) {
          await model.close().catch(() => {});
          throw new TransportError('rabbitmq: connect: the transport is closed');
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

/**
 * Destroys the connection's socket. amqplib has no API for it (its close() waits for the broker's
 * answer), so this reaches for the stream it keeps on its connection.
 */
function destroySocket(model: ChannelModel): void {
  const stream = (model.connection as unknown as { stream?: { destroy(): void } }).stream;
  stream?.destroy();
}
