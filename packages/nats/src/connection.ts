/**
 * The transport's one NATS connection: connecting within a deadline (and leaving nothing open
 * when that fails), following its status (the client reconnects by itself; health says why it
 * is down meanwhile, and the owner hears about each reconnect), and closing it within the close
 * deadline.
 */
import {
  DeadlineError,
  type Logger,
  redactUrl,
  TransportError,
  withDeadline,
} from '@eventwire/core/transport';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { natsError } from './errors.ts';
import type { NatsTransportOptions } from './options.ts';
import { probe } from './probe.ts';

/** Defaults of the deadlines (see options.ts and the README, "Bounds"). */
const CONNECT_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 2_000;

/** What the owner of the connection (the transport) hears from it. */
export interface ConnectionHooks {
  /** The connection is up for the first time (runs before `connect()` resolves). */
  connected(nc: NatsConnection): void;
  /** The client reconnected: the server may have restarted and forgotten pull requests. */
  reconnected(): void;
}

export class ConnectionManager {
  readonly #options: NatsTransportOptions;
  readonly #logger: Logger;
  readonly #hooks: ConnectionHooks;
  #nc: NatsConnection | undefined;
  #jsm: JetStreamManager | undefined;
  #connecting: Promise<void> | undefined;
  #connected = false;
  #downReason = 'not connected';
  #closed = false;
  /** A step of closing got no answer in time: the later steps do not wait for the server. */
  #unanswered = false;

  constructor(options: NatsTransportOptions, logger: Logger, hooks: ConnectionHooks) {
    this.#options = options;
    this.#logger = logger;
    this.#hooks = hooks;
  }

  /** The NATS connection (after `connect()`). */
  get current(): NatsConnection | undefined {
    return this.#nc;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Connected right now (not closed, not between a disconnect and a reconnect). */
  get connected(): boolean {
    return this.#connected && this.#nc !== undefined && !this.#nc.isClosed();
  }

  /** Why the connection is down, or undefined when it is up. */
  get downReason(): string | undefined {
    const nc = this.#nc;
    if (!nc) return this.#closed ? 'transport closed' : 'not connected';
    if (nc.isClosed()) return 'connection closed';
    return this.#connected ? undefined : this.#downReason;
  }

  /** The connection, or a TransportError saying why there is none. */
  require(): NatsConnection {
    if (!this.#nc || this.#closed)
      throw new TransportError(
        this.#closed ? 'nats: the transport is closed' : 'nats: not connected; call connect() first',
      );
    return this.#nc;
  }

  /** The JetStream manager of the connection, or a TransportError saying why there is none. */
  manager(): JetStreamManager {
    this.require();
    return this.#jsm!;
  }

  connect(): Promise<void> {
    if (this.#closed) return Promise.reject(new TransportError('nats: connect: the transport is closed'));
    this.#connecting ??= this.#connect().catch((error) => {
      this.#connecting = undefined;
      throw error;
    });
    return this.#connecting;
  }

  /**
   * Connects within `connectTimeoutMs`, then checks JetStream (`jetstream.timeout`). Whatever
   * fails, nothing is left open: the probe (probe.ts) keeps the client from ever holding a
   * socket to a server that does not answer, a connection that comes up after the deadline is
   * closed at once, and one without JetStream is closed before the error is thrown.
   */
  async #connect(): Promise<void> {
    const servers = this.#options.connection?.servers ?? this.#options.servers ?? 'nats://127.0.0.1:4222';
    const list = Array.isArray(servers) ? servers : [servers];
    const where = list.map((s) => redactUrl(s)).join(',');
    const timeoutMs = this.#options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    const started = Date.now();
    let nc: NatsConnection;
    let abandoned = false;
    try {
      await probe(list, timeoutMs, this.#options.connection?.tls?.handshakeFirst === true);
      const connecting = connect({
        name: 'eventwire',
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1_000,
        timeout: Math.max(1, timeoutMs - (Date.now() - started)),
        // Each request (every publish) would otherwise capture a stack trace up front: a
        // measurable share of publish CPU. Errors still carry the cause and the subject.
        noAsyncTraces: true,
        ...this.#options.connection,
        servers,
      });
      // Past the deadline the connection is not wanted any more, even if it comes up later.
      connecting.then(
        (late) => {
          if (abandoned) void late.close().catch(() => {});
        },
        () => {},
      );
      nc = await withDeadline(
        connecting,
        Math.max(1, timeoutMs - (Date.now() - started)),
        `no answer within ${timeoutMs} ms`,
      );
    } catch (error) {
      abandoned = true;
      throw natsError(`connect (${where})`, error);
    }
    let jsm: JetStreamManager;
    try {
      // Verifies that JetStream is enabled for this account (an account info request).
      // 15 s rather than the client's 5 s: a busy server answers API requests late, not never.
      const jsOptions = { timeout: 15_000, ...this.#options.jetstream };
      jsm = await jetstreamManager(nc, jsOptions);
    } catch (error) {
      await nc.close().catch(() => {});
      throw natsError(`JetStream is not available at ${where}`, error);
    }
    if (this.#closed) {
      // Closed while connecting: nobody will close this connection later.
      await nc.close().catch(() => {});
      throw new TransportError('nats: connect: the transport is closed');
    }
    this.#nc = nc;
    this.#jsm = jsm;
    this.#connected = true;
    this.#hooks.connected(nc);
    void this.#watch(nc);
  }

  /** Follows the connection: health, and telling the owner about reconnects. */
  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      switch (status.type) {
        case 'disconnect':
          this.#connected = false;
          this.#downReason = 'disconnected from the NATS server; reconnecting';
          this.#logger.warn({ system: 'nats' }, this.#downReason);
          break;
        case 'reconnect':
          this.#connected = true;
          this.#logger.info({ system: 'nats' }, 'reconnected to the NATS server');
          this.#hooks.reconnected();
          break;
        default:
          break;
      }
    }
    this.#connected = false;
    this.#downReason = 'connection closed';
  }

  /**
   * Closes the connection: from now on `require()` refuses, `first` closes what works on the
   * connection (the subscriptions: their last naks still go out), then what the client still
   * buffers is flushed and the connection closed, each step within `closeTimeoutMs` (the
   * client's close writes a last flush to the socket and waits for it, which a server that does
   * not answer never acknowledges).
   */
  async close(first: () => Promise<unknown>): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await first();
    const nc = this.#nc;
    if (nc && !nc.isClosed()) {
      // Flush acks and naks still in the client's buffer, unless the server is away.
      if (this.#connected) await this.closing(nc.flush());
      await this.closing(nc.close());
    }
  }

  /**
   * One step of closing, within `closeTimeoutMs`. Once a step got no answer, the later ones (of
   * the connection and its subscriptions) are not waited for: they would only wait out another
   * deadline, and the bound of close would grow with every step.
   */
  closing(work: Promise<unknown>): Promise<void> {
    if (this.#unanswered) {
      work.catch(() => {});
      return Promise.resolve();
    }
    return withDeadline(work, this.#options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS, '').then(
      () => {},
      (error: unknown) => {
        if (error instanceof DeadlineError) this.#unanswered = true;
      },
    );
  }
}
