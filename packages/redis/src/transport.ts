/**
 * The Redis Streams transport: a stream per topic, a consumer group per group.
 * See the package README for the semantics (ordering, delays, dead letters, trimming, rewind,
 * rate limits, limits).
 */

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type Capabilities,
  deliverAtOf,
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
} from '@eventwire/core/transport';
import { Redis, type RedisOptions } from 'ioredis';
import { Bounded } from './bounded.ts';
import { redisDeadLetters } from './dead-letters.ts';
import { toFields } from './fields.ts';
import { DEFAULT_PREFIX, keys as keyLayout } from './keys.ts';
import { checkOptions, type RedisTransportOptions } from './options.ts';
import { type RateLimitStore, redisRateLimitStore } from './rate-limit-store.ts';
import { rewindGroup } from './rewind.ts';
import { ScheduledMover } from './scheduled-mover.ts';
import { SCHEDULE, TRIM } from './scripts.ts';
import { StreamSubscription } from './subscription.ts';

const DEFAULT_URL = 'redis://127.0.0.1:6379';
const MiB = 1024 * 1024;
/** Defaults of the deadlines (see options.ts and the README, "Bounds"). */
const CONNECT_TIMEOUT_MS = 10_000;
const COMMAND_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 2_000;
/** health() says down when PING is not answered within this. */
const HEALTH_TIMEOUT_MS = 2_000;
const DELAY_POLL_MS = 1_000;

/**
 * Order key of a delayed publish (see SCHEDULE): fixed-width hex, increasing within this process
 * (microseconds since the epoch, or one more than the last), so that delayed events with the same
 * due time enter the stream in the order this process published them.
 */
let lastOrder = 0;
function nextOrderKey(): string {
  lastOrder = Math.max(lastOrder + 1, Date.now() * 1000);
  return lastOrder.toString(16).padStart(14, '0');
}

/** Creates a Redis Streams transport. Connections open on `connect()`. */
export function redis(options: RedisTransportOptions = {}): Transport {
  return new RedisTransport(options);
}

class RedisTransport implements Transport {
  readonly name = 'redis';
  readonly capabilities: Capabilities;
  readonly deadLetters;
  readonly rateLimitStore: RateLimitStore;
  readonly #options: RedisTransportOptions;
  readonly #keys;
  readonly #logger: Logger;
  readonly #where: string;
  readonly #ownsClient: boolean;
  readonly #url: string;
  readonly #bounded: Bounded;
  readonly #commandTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  /** The command client; an owned one is replaced after a failed connect (see connect()). */
  #client: Redis;
  /** This transport disconnected the owned client after a failed connect: the next connect needs a new one. */
  #abandoned = false;
  readonly #subscriptions = new Set<StreamSubscription>();
  readonly #trimTopics = new Map<string, number>();
  /** Movers of delayed publishes, per topic (see scheduled-mover.ts). */
  readonly #movers = new Map<string, ScheduledMover>();
  #trimTimer: NodeJS.Timeout | undefined;
  #lastError: string | undefined;
  /** The last error the client reported, whose text says more than ioredis's "Connection is closed.". */
  #lastClientError: unknown;
  #closed = false;

  constructor(options: RedisTransportOptions) {
    checkOptions(options);
    this.#options = options;
    this.#keys = keyLayout(options.prefix ?? DEFAULT_PREFIX);
    this.#logger = options.logger ?? jsonLogger();
    const url = options.url ?? DEFAULT_URL;
    this.#url = url;
    this.#where = options.client ? 'shared client' : redactUrl(url);
    this.#bounded = new Bounded(this.#where);
    this.#commandTimeoutMs = options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
    this.capabilities = {
      ordering: 'none',
      nativeDelay: true,
      replay: true,
      maxMessageBytes: options.maxMessageBytes ?? MiB,
      wireMode: 'binary',
      transactionalPublish: false,
      delayedPublish: true,
    };
    this.#ownsClient = !options.client;
    this.#client = this.#watch(options.client ?? this.#newClient());
    this.deadLetters = redisDeadLetters(
      () => this.#client,
      this.#keys,
      (what, work) => this.#wrap(what, work),
    );
    this.rateLimitStore = redisRateLimitStore(
      () => this.#client,
      this.#keys,
      (what, work) => this.#wrap(what, work),
    );
  }

  #newClient(): Redis {
    return new Redis(this.#url, {
      lazyConnect: true,
      enableAutoPipelining: true,
      // No ioredis commandTimeout: under auto-pipelining its timers leave unhandled rejections
      // behind. Calls someone waits for have deadlines of their own (bounded.ts).
      maxRetriesPerRequest: 3,
      connectionName: 'eventwire',
      ...this.#options.connection,
    });
  }

  #watch(client: Redis): Redis {
    client.on('error', (error: Error) => {
      this.#lastClientError = error;
      this.#lastError = redactText(error.message);
    });
    client.on('ready', () => {
      this.#lastError = undefined;
    });
    return client;
  }

  /**
   * Connects and checks that Redis answers, within `connectTimeoutMs`. On failure the owned
   * client is disconnected: ioredis would otherwise keep reconnecting behind the caller's back
   * forever, and its socket and timers would keep the process alive (DESIGN.md section 13,
   * "connect failure cleans up"). A later connect() starts over with a new client (ioredis keeps
   * a "closed by hand" flag on the old one that would stop it reconnecting after a later drop).
   */
  async connect(): Promise<void> {
    if (this.#closed) throw new TransportError('redis: connect: the transport is closed');
    if (this.#abandoned) {
      this.#client = this.#watch(this.#newClient());
      this.#abandoned = false;
    }
    const client = this.#client;
    this.#lastClientError = undefined;
    const ready = (async () => {
      try {
        if (client.status === 'wait') await client.connect();
      } catch (error) {
        throw this.#lastClientError ?? error;
      }
      await client.ping();
    })();
    try {
      await this.#bounded.call('connect', this.#options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS, ready);
    } catch (error) {
      if (this.#ownsClient) {
        // disconnect() also stops the reconnect timer; ioredis destroys a socket that does not
        // close within its disconnectTimeout (2 s), so nothing outlives the failure for long.
        client.disconnect();
        this.#abandoned = true;
      }
      throw error;
    }
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    // One pipeline per call: every XADD (or SCHEDULE, for a delayed one) goes out in one write,
    // and each reply (in order) is the server's acceptance of that event.
    const pipeline = this.#client.pipeline();
    const now = Date.now();
    let delayed = false;
    for (const m of messages) {
      const stream = this.#keys.stream(m.topic);
      const at = deliverAtOf(m.headers);
      if (at === undefined || at <= now) {
        pipeline.xadd(stream, '*', ...toFields(m));
        continue;
      }
      delayed = true;
      // EVAL, not EVALSHA: inside a pipeline a NOSCRIPT reply could not be retried in place.
      pipeline.eval(
        SCHEDULE.lua,
        2,
        stream,
        this.#keys.scheduled(m.topic),
        at,
        nextOrderKey(),
        ...toFields(m),
      );
    }
    const accepted = new Array<boolean>(messages.length).fill(false);
    let cause: unknown;
    const replies = pipeline.exec().then(
      (results) => {
        for (let i = 0; i < messages.length; i++) {
          const error = results?.[i]?.[0];
          if (results?.[i] && !error) accepted[i] = true;
          else cause ??= error ?? new Error('no reply');
        }
        if (!delayed) return;
        // Parked ones: this transport moves them when due (also with no consumer running).
        for (let i = 0; i < messages.length; i++) {
          const wait = accepted[i] ? results?.[i]?.[1] : undefined;
          if (typeof wait === 'number' && wait > 0 && !this.#closed)
            this.#mover(messages[i]!.topic).parked(wait);
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
    const error = this.#bounded.error('publish', cause);
    if (failed.length === messages.length) throw error;
    throw new PartialPublishError(failed, error);
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
    if (this.#closed) throw new TransportError('redis: subscribe: the transport is closed');
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
    const leaseMs = Math.max(1000, this.#options.leaseMs ?? spec.leaseMs);
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
        delayPollMs: this.#options.delayPollMs ?? DELAY_POLL_MS,
        commandTimeoutMs: this.#commandTimeoutMs,
        closeTimeoutMs: this.#closeTimeoutMs,
        bounded: this.#bounded,
        ensureGroup: () => this.#ensureGroup(spec.topic, spec.group, spec.from),
      },
      { ...spec, leaseMs },
      onMessage,
    );
    subscription.start();
    this.#subscriptions.add(subscription);
    this.#trackTrim(spec.topic, 1);
    const mover = this.#mover(spec.topic);
    mover.hold();
    return {
      stop: () => subscription.stop(),
      close: async () => {
        if (!this.#subscriptions.delete(subscription)) return;
        this.#trackTrim(spec.topic, -1);
        mover.unhold();
        await subscription.close();
      },
    };
  }

  /** The mover of `topic`'s delayed publishes (one per topic while it has work). */
  #mover(topic: string): ScheduledMover {
    let mover = this.#movers.get(topic);
    if (!mover) {
      mover = new ScheduledMover(
        topic,
        { stream: this.#keys.stream(topic), scheduled: this.#keys.scheduled(topic) },
        {
          command: () => this.#client,
          bounded: this.#bounded,
          commandTimeoutMs: this.#commandTimeoutMs,
          pollMs: this.#options.delayPollMs ?? DELAY_POLL_MS,
          logger: this.#logger,
        },
        (idle) => {
          if (this.#movers.get(topic) === idle) this.#movers.delete(topic);
        },
      );
      this.#movers.set(topic, mover);
    }
    return mover;
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
      await this.#bounded.call('PING', HEALTH_TIMEOUT_MS, this.#client.ping());
      return { status: 'up' };
    } catch (error) {
      // The TransportError's text: masked, and it names the server.
      return { status: 'down', reason: (error as Error).message };
    }
  }

  /**
   * Entries not yet delivered to the group, plus those delivered and not acknowledged, plus
   * parked retries and the topic's delayed publishes not due yet.
   */
  async lag(topic: string, group: string): Promise<number | undefined> {
    return this.#wrap('read lag', async () => {
      const [groups, delayed] = await Promise.all([
        this.#client.xinfo('GROUPS', this.#keys.stream(topic)).catch(() => []) as Promise<unknown[][]>,
        this.#countDelayed(topic, group),
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

  /** Delayed publishes of the topic not due yet, plus the group's parked retries. */
  async delayed(topic: string, group: string): Promise<number | undefined> {
    return this.#wrap('count delayed', () => this.#countDelayed(topic, group));
  }

  async #countDelayed(topic: string, group: string): Promise<number> {
    const [scheduled, retries] = await Promise.all([
      this.#client.zcard(this.#keys.scheduled(topic)),
      this.#client.zcard(this.#keys.delayed(topic, group)),
    ]);
    return scheduled + retries;
  }

  /**
   * Moves `group` back to the last entry before `to` (XGROUP SETID; see rewind.ts and the README,
   * "Rewind"). Refuses while a consumer of the group was active in the last 10 s.
   */
  async rewind(
    topic: string,
    group: string,
    to: Date | 'beginning',
    options: { dryRun?: boolean } = {},
  ): Promise<number> {
    return rewindGroup(
      { client: () => this.#client, keys: this.#keys, call: (what, work) => this.#wrap(what, work) },
      topic,
      group,
      to,
      options.dryRun ?? false,
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#trimTimer);
    for (const mover of this.#movers.values()) mover.close();
    this.#movers.clear();
    await Promise.allSettled([...this.#subscriptions].map((s) => s.close()));
    this.#subscriptions.clear();
    if (!this.#ownsClient) return;
    if (this.#client.status === 'ready' && !this.#bounded.silent) {
      // QUIT waits for the replies of commands already sent (acks, publishes). Not when Redis
      // just missed a deadline: that would only wait out another one.
      await this.#bounded
        .call('close', this.#closeTimeoutMs, this.#client.quit())
        .catch(() => this.#client.disconnect());
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
        const [, dropped] = (await this.#bounded.call(
          'trim',
          this.#commandTimeoutMs,
          TRIM.run(this.#client, [this.#keys.stream(topic)], [trim.maxLen ?? 0, trim.retainMs ?? 0]),
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

  /** An admin call: its errors as TransportErrors, and a deadline of `commandTimeoutMs`. */
  #wrap<T>(what: string, work: () => Promise<T>): Promise<T> {
    let running: Promise<T>;
    try {
      running = work();
    } catch (error) {
      running = Promise.reject(error);
    }
    return this.#bounded.call(what, this.#commandTimeoutMs, running);
  }
}
