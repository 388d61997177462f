/**
 * The Redis Streams transport: a stream per topic, a consumer group per group.
 * See the package README for the semantics (ordering, delays, dead letters, trimming, limits).
 */

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type Capabilities,
  jsonLogger,
  type Logger,
  type OutgoingMessage,
  PartialPublishError,
  redactText,
  redactUrl,
  type StartFrom,
  type SubscriptionSpec,
  type Transport,
  TransportError,
  type TransportHealth,
  type TransportSubscription,
} from '@eventwire/core';
import { Redis, type RedisOptions } from 'ioredis';
import { redisDeadLetters } from './dead-letters.ts';
import { toFields } from './fields.ts';
import { DEFAULT_PREFIX, keys as keyLayout } from './keys.ts';
import type { RedisTransportOptions } from './options.ts';
import { TRIM } from './scripts.ts';
import { StreamSubscription } from './subscription.ts';

const DEFAULT_URL = 'redis://127.0.0.1:6379';
const MiB = 1024 * 1024;

/** Creates a Redis Streams transport. Connections open on `connect()`. */
export function redis(options: RedisTransportOptions = {}): Transport {
  return new RedisTransport(options);
}

class RedisTransport implements Transport {
  readonly name = 'redis';
  readonly capabilities: Capabilities;
  readonly deadLetters;
  readonly #options: RedisTransportOptions;
  readonly #keys;
  readonly #logger: Logger;
  readonly #where: string;
  readonly #ownsClient: boolean;
  readonly #client: Redis;
  readonly #subscriptions = new Set<StreamSubscription>();
  readonly #trimTopics = new Map<string, number>();
  #trimTimer: NodeJS.Timeout | undefined;
  #lastError: string | undefined;
  #closed = false;

  constructor(options: RedisTransportOptions) {
    this.#options = options;
    this.#keys = keyLayout(options.prefix ?? DEFAULT_PREFIX);
    this.#logger = options.logger ?? jsonLogger();
    const url = options.url ?? DEFAULT_URL;
    this.#where = options.client ? 'redis (shared client)' : redactUrl(url);
    this.capabilities = {
      ordering: 'none',
      nativeDelay: true,
      nativeDeadLetter: true,
      replay: true,
      maxMessageBytes: options.maxMessageBytes ?? MiB,
      consumerGroups: true,
      wireMode: 'binary',
      transactionalPublish: false,
    };
    this.#ownsClient = !options.client;
    this.#client =
      options.client ??
      new Redis(url, {
        lazyConnect: true,
        enableAutoPipelining: true,
        // No ioredis commandTimeout: under auto-pipelining its timers leave unhandled rejections
        // behind. Publish has its own deadline; other commands give up after a few reconnects.
        maxRetriesPerRequest: 3,
        connectionName: 'eventwire',
        ...options.connection,
      });
    this.#client.on('error', (error: Error) => {
      this.#lastError = redactText(error.message);
    });
    this.#client.on('ready', () => {
      this.#lastError = undefined;
    });
    this.deadLetters = redisDeadLetters(
      () => this.#client,
      this.#keys,
      (what, work) => this.#wrap(what, work),
    );
  }

  async connect(): Promise<void> {
    await this.#wrap('connect', async () => {
      if (this.#client.status === 'wait') await this.#client.connect();
      await this.#client.ping();
    });
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    // One pipeline per call: every XADD goes out in one write, and each reply (in order) is the
    // server's acceptance of that event.
    const pipeline = this.#client.pipeline();
    for (const m of messages) pipeline.xadd(this.#keys.stream(m.topic), '*', ...toFields(m));
    const accepted = new Array<boolean>(messages.length).fill(false);
    let cause: unknown;
    const replies = pipeline.exec().then(
      (results) => {
        for (let i = 0; i < messages.length; i++) {
          const error = results?.[i]?.[0];
          if (results?.[i] && !error) accepted[i] = true;
          else cause ??= error ?? new Error('no reply');
        }
      },
      (error: unknown) => {
        cause ??= error;
      },
    );
    const timeoutMs = this.#options.publishTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        cause ??= new Error(`not confirmed within ${timeoutMs} ms (it may still be written)`);
        resolve();
      }, timeoutMs);
    });
    await Promise.race([replies, deadline]);
    clearTimeout(timer);
    const failed = accepted.flatMap((ok, i) => (ok ? [] : [i]));
    if (failed.length === 0) return;
    if (failed.length === messages.length) throw this.#error('publish', cause);
    throw new PartialPublishError(failed, this.#error('publish', cause));
  }

  async ensureGroup(topic: string, group: string, from: StartFrom): Promise<void> {
    await this.#wrap('create group', () => this.#ensureGroup(topic, group, from));
  }

  async #ensureGroup(topic: string, group: string, from: StartFrom): Promise<void> {
    try {
      await this.#client.xgroup(
        'CREATE',
        this.#keys.stream(topic),
        group,
        from === 'beginning' ? '0' : '$',
        'MKSTREAM',
      );
    } catch (error) {
      // An existing group resumes where it was: that is the contract, not a failure.
      if (!String((error as Error)?.message).includes('BUSYGROUP')) throw error;
    }
  }

  async subscribe(
    spec: SubscriptionSpec,
    onMessage: Parameters<Transport['subscribe']>[1],
  ): Promise<TransportSubscription> {
    if (this.#closed) throw new TransportError('the redis transport is closed');
    await this.ensureGroup(spec.topic, spec.group, spec.from);
    const consumer = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const blocking = this.#client.duplicate({
      lazyConnect: true,
      enableAutoPipelining: false,
      // A blocking read must never be cut short by a client-side timeout...
      commandTimeout: undefined,
      blockingTimeout: 0,
      // ...and waits for the connection to come back rather than fail while Redis restarts.
      maxRetriesPerRequest: null,
      // A read in flight when the connection drops is sent again after the reconnect (with
      // `false`, ioredis 6 silently drops it and its promise never settles).
      autoResendUnfulfilledCommands: true,
      connectionName: `eventwire:${spec.group}`,
    } satisfies RedisOptions);
    blocking.on('error', () => {});
    const leaseMs = Math.max(1000, spec.leaseMs);
    const subscription = new StreamSubscription(
      {
        command: this.#client,
        blocking,
        keys: this.#keys,
        logger: this.#logger,
        consumer,
        blockMs: this.#options.blockMs ?? 2000,
        claimIntervalMs:
          this.#options.claimIntervalMs ?? Math.min(10_000, Math.max(1000, Math.floor(leaseMs / 4))),
        delayPollMs: this.#options.delayPollMs ?? 1000,
        ensureGroup: () => this.#ensureGroup(spec.topic, spec.group, spec.from),
      },
      { ...spec, leaseMs },
      onMessage,
    );
    subscription.start();
    this.#subscriptions.add(subscription);
    this.#trackTrim(spec.topic, 1);
    return {
      close: async () => {
        if (!this.#subscriptions.delete(subscription)) return;
        this.#trackTrim(spec.topic, -1);
        await subscription.close();
      },
    };
  }

  async health(): Promise<TransportHealth> {
    const status = this.#client.status;
    if (status !== 'ready') {
      return {
        status: 'down',
        reason: `${this.#where}: connection ${status}${this.#lastError ? ` (${this.#lastError})` : ''}`,
      };
    }
    try {
      await withTimeout(this.#client.ping(), 2000, 'PING timed out');
      return { status: 'up' };
    } catch (error) {
      return {
        status: 'down',
        reason: `${this.#where}: ${redactText(String((error as Error)?.message ?? error))}`,
      };
    }
  }

  /** Entries not yet delivered to the group, plus those delivered and not acknowledged, plus parked retries. */
  async lag(topic: string, group: string): Promise<number | undefined> {
    return this.#wrap('read lag', async () => {
      const [groups, delayed] = await Promise.all([
        this.#client.xinfo('GROUPS', this.#keys.stream(topic)).catch(() => []) as Promise<unknown[][]>,
        this.#client.zcard(this.#keys.delayed(topic, group)),
      ]);
      for (const info of groups) {
        const fields = new Map<string, unknown>();
        for (let i = 0; i + 1 < info.length; i += 2) fields.set(String(info[i]), info[i + 1]);
        if (fields.get('name') !== group) continue;
        const lag = fields.get('lag');
        // Redis cannot tell the lag after some entries were deleted in the middle of the stream.
        if (lag === null || lag === undefined) return undefined;
        return Number(lag) + Number(fields.get('pending') ?? 0) + delayed;
      }
      return undefined;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#trimTimer);
    await Promise.allSettled([...this.#subscriptions].map((s) => s.close()));
    this.#subscriptions.clear();
    if (!this.#ownsClient) return;
    if (this.#client.status === 'ready') {
      // QUIT waits for the replies of commands already sent (acks, publishes).
      await withTimeout(this.#client.quit(), 2000, 'QUIT timed out').catch(() => this.#client.disconnect());
    } else {
      this.#client.disconnect();
    }
  }

  /** Topics this process consumes are trimmed by it, periodically (see README, "Trimming"). */
  #trackTrim(topic: string, delta: number): void {
    const trim = this.#options.trim ?? {};
    if (trim === false) return;
    const count = (this.#trimTopics.get(topic) ?? 0) + delta;
    if (count > 0) this.#trimTopics.set(topic, count);
    else this.#trimTopics.delete(topic);
    if (this.#trimTopics.size > 0 && !this.#trimTimer) {
      this.#trimTimer = setInterval(() => void this.trimNow(), trim.intervalMs ?? 60_000);
      this.#trimTimer.unref();
    } else if (this.#trimTopics.size === 0 && this.#trimTimer) {
      clearInterval(this.#trimTimer);
      this.#trimTimer = undefined;
    }
  }

  /** Runs the trim policy once on the topics this transport consumes (also used by tests). */
  async trimNow(topics: readonly string[] = [...this.#trimTopics.keys()]): Promise<void> {
    const trim = this.#options.trim ?? {};
    if (trim === false) return;
    for (const topic of topics) {
      try {
        const [, dropped] = (await TRIM.run(
          this.#client,
          [this.#keys.stream(topic)],
          [trim.maxLen ?? 0],
        )) as [number, number];
        if (dropped > 0) {
          this.#logger.warn(
            { topic, dropped, maxLen: trim.maxLen },
            'stream over maxLen: dropped entries that some group had not acknowledged',
          );
        }
      } catch (error) {
        this.#logger.warn(
          { topic, err: redactText(String((error as Error)?.message ?? error)) },
          'trim failed',
        );
      }
    }
  }

  async #wrap<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw this.#error(what, error);
    }
  }

  #error(what: string, error: unknown): TransportError {
    if (error instanceof TransportError) return error;
    const message = redactText(String((error as Error)?.message ?? error));
    return new TransportError(`redis ${what} failed (${this.#where}): ${message}`, { cause: error });
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
