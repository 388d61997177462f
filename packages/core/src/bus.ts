import { type BatchHandler, batchingHandler } from './batch-handler.ts';
import { decode } from './cloudevents.ts';
import { GroupConsumer } from './consumer.ts';
import type { EventDefinition } from './define-event.ts';
import type { Envelope } from './envelope.ts';
import { ClosedError, ConfigError, TransportError, UnsupportedError } from './errors.ts';
import type { ChildPublishOptions, ConsumerStats, Handler, SubscribeOptions } from './handler-types.ts';
import { jsonLogger, type Logger } from './logger.ts';
import type { Middleware } from './middleware.ts';
import { checkNumber } from './option-checks.ts';
import { type ChildEnvelopeFields, type Outbox, Publisher, type PublishOptions } from './publisher.ts';
import { resolveTransport } from './resolve-transport.ts';
import {
  type BatchSubscribeOptions,
  checkBatchShape,
  checkDrainMs,
  checkSubscribeOptions,
} from './subscribe-options.ts';
import { DeadlineError, withDeadline } from './timing.ts';
import { childTraceparent } from './trace-context.ts';
import type { DeadLetterRecord, Transport, TransportHealth } from './transport.ts';

export type { Outbox, PublishOptions } from './publisher.ts';

export interface BusOptions {
  /** Broker URL; the scheme picks the adapter. Default `pglite://.eventwire` (embedded). */
  url?: string;
  /** A ready transport instead of a URL, for options that do not fit in one. */
  transport?: Transport;
  /** The producing service, the CloudEvents `source`. Required. */
  source: string;
  /** Default: JSON lines on stderr at `warn`. */
  logger?: Logger;
  /** Interception points for tracing and metrics. */
  middleware?: Middleware[];
  /** Largest event this bus sends or accepts, in bytes. Default: the broker's limit. */
  maxMessageBytes?: number;
  /** Where `publish(..., { tx })` writes when the transport itself is not transactional. */
  outbox?: Outbox;
  /**
   * How long `close()` waits, after the drain time and the cut-off handlers' unwinding (1 s),
   * for the broker: closing subscriptions, flushing publishes, closing connections. Past it,
   * close rejects with a TransportError instead of hanging on a broker that does not answer.
   * Default 10 000 ms.
   */
  closeTimeoutMs?: number;
}

/** Returned by {@link Bus.subscribe}. */
export interface Subscription {
  /** Resolves when the group exists and the subscription is receiving (after `bus.start()`). */
  readonly ready: Promise<void>;
  /** Flow-control counters of the (topic, group) consumer. */
  stats(): ConsumerStats;
  /** Stop this handler. The group's consumer closes when its last handler does. */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** Dead letters of one (event, group). */
export interface DeadLetters {
  list(options?: { limit?: number }): Promise<DeadLetterRecord[]>;
  show(id: string): Promise<DeadLetterRecord | undefined>;
  /** Replays to the failed group only. All entries when `ids` is omitted. */
  replay(ids?: readonly string[]): Promise<number>;
  purge(ids?: readonly string[]): Promise<number>;
}

export interface BusHealth {
  status: 'up' | 'down';
  transport: TransportHealth;
  consumers: { topic: string; group: string; lag?: number; stats: ConsumerStats }[];
}

export interface Bus {
  readonly transport: Transport;
  publish<T>(definition: EventDefinition<T>, data: T, options?: PublishOptions): Promise<Envelope<T>>;
  /** Publishes several events of one type in one broker call. */
  publishMany<T>(
    definition: EventDefinition<T>,
    items: readonly { data: T; options?: PublishOptions }[],
  ): Promise<Envelope<T>[]>;
  subscribe<T>(definition: EventDefinition<T>, handler: Handler<T>, options: SubscribeOptions): Subscription;
  /**
   * Handles events in batches of up to `maxBatch`, each settled on its own (see
   * {@link BatchSubscribeOptions} and batch-handler.ts): the handler fails single events with
   * `ctx.fail(event, error)`, or the whole batch by throwing.
   */
  subscribeBatch<T>(
    definition: EventDefinition<T>,
    handler: BatchHandler<T>,
    options: BatchSubscribeOptions,
  ): Subscription;
  /** Create groups and start every subscription. Subscriptions made later start at once. */
  start(): Promise<void>;
  /** Stop fetching, let in-flight handlers finish for `drainMs` (default 10 s), flush publishes, close. */
  close(options?: { drainMs?: number }): Promise<void>;
  health(): Promise<BusHealth>;
  deadLetters(definition: EventDefinition<any>, group: string): DeadLetters;
  /**
   * Moves `group` back so that it receives again every retained event of the definition's topic
   * published at or after `to` (`'beginning'`: all retained); other groups are untouched. Run it
   * while the group's consumers are stopped. Resolves to how many events the group receives
   * again (`dryRun`: would receive, nothing moves). Rejects with `UnsupportedError` where the
   * broker keeps no log (capability `replay` false: RabbitMQ, SQS).
   */
  rewind(definition: EventDefinition<any>, group: string, options: RewindOptions): Promise<number>;
}

/** Options of `bus.rewind`. */
export interface RewindOptions {
  /** The earliest publish time to deliver again, or `'beginning'` for every retained event. */
  to: Date | 'beginning';
  /** Count only. */
  dryRun?: boolean;
}

/** Creates a bus. See DESIGN.md section 5. */
export async function createBus(options: BusOptions): Promise<Bus> {
  if (!options.source) throw new ConfigError('createBus needs a `source`: the name of the producing service');
  checkNumber('createBus: closeTimeoutMs', options.closeTimeoutMs, { min: 0, max: 2 ** 31 - 1 });
  checkNumber('createBus: maxMessageBytes', options.maxMessageBytes, { min: 1 });
  const transport = options.transport ?? (await resolveTransport(options.url ?? 'pglite://.eventwire'));
  try {
    await transport.connect();
  } catch (error) {
    // Adapters close what a failed connect opened; this is the net behind them (DESIGN.md
    // section 13): a process that catches the error must be able to exit or retry.
    await withDeadline(transport.close(), 1_000, '').catch(() => {});
    throw error;
  }
  return new EventBus(transport, options);
}

class EventBus implements Bus {
  readonly transport: Transport;
  readonly #options: BusOptions;
  readonly #logger: Logger;
  readonly #middleware: Middleware[];
  readonly #maxBytes: number;
  readonly #publisher: Publisher;
  readonly #consumers = new Map<string, GroupConsumer>();
  readonly #publishing = new Set<Promise<unknown>>();
  #started = false;
  /** close() began: publishes from outside a handler are refused, handlers still publish. */
  #closing = false;
  /** The consumers drained: nothing is published any more. */
  #closed = false;

  constructor(transport: Transport, options: BusOptions) {
    this.transport = transport;
    this.#options = options;
    this.#logger = options.logger ?? jsonLogger();
    this.#middleware = options.middleware ?? [];
    this.#maxBytes = Math.min(
      options.maxMessageBytes ?? Number.POSITIVE_INFINITY,
      transport.capabilities.maxMessageBytes,
    );
    this.#publisher = new Publisher(transport, {
      source: options.source,
      middleware: this.#middleware,
      maxBytes: this.#maxBytes,
      outbox: options.outbox,
    });
  }

  publish<T>(definition: EventDefinition<T>, data: T, options: PublishOptions = {}): Promise<Envelope<T>> {
    return this.publishMany(definition, [{ data, options }]).then((envelopes) => envelopes[0]!);
  }

  publishMany<T>(
    definition: EventDefinition<T>,
    items: readonly { data: T; options?: PublishOptions }[],
  ): Promise<Envelope<T>[]> {
    if (this.#closing) return Promise.reject(new ClosedError());
    return this.#tracked(definition, items);
  }

  /** Every publish is tracked, so that close() can flush those in flight. */
  #tracked<T>(
    definition: EventDefinition<T>,
    items: readonly { data: T; options?: PublishOptions }[],
    child?: ChildEnvelopeFields,
  ): Promise<Envelope<T>[]> {
    const work = this.#publisher.publish(definition, items, child);
    this.#publishing.add(work);
    void work.catch(() => {}).finally(() => this.#publishing.delete(work));
    return work;
  }

  #publishChild = (
    parent: Envelope,
    definition: EventDefinition<any>,
    data: unknown,
    options: ChildPublishOptions = {},
  ) => {
    const child: ChildEnvelopeFields = {
      causationId: parent.id,
      traceparent: childTraceparent(parent.traceparent),
    };
    if (parent.tracestate !== undefined) child.tracestate = parent.tracestate;
    // A handler keeps its publish while close() drains it; only after the drain is it refused.
    if (this.#closed) return Promise.reject(new ClosedError());
    const publishOptions: PublishOptions = { ...options, correlationId: parent.correlationId };
    return this.#tracked(definition, [{ data, options: publishOptions }], child).then(
      (envelopes) => envelopes[0]!,
    );
  };

  subscribeBatch<T>(
    definition: EventDefinition<T>,
    handler: BatchHandler<T>,
    options: BatchSubscribeOptions,
  ): Subscription {
    const { maxBatch, maxWaitMs, ...rest } = options;
    const shape = checkBatchShape(definition.type, { maxBatch, maxWaitMs });
    const batches =
      checkNumber(`subscribeBatch(${definition.type}): concurrency`, rest.concurrency, { min: 1 }) ?? 1;
    // Every event of a running batch holds a handler slot while it waits for the batch.
    const concurrency = shape.maxBatch * batches;
    return this.subscribe(definition, batchingHandler(handler, shape), { ...rest, concurrency });
  }

  subscribe<T>(definition: EventDefinition<T>, handler: Handler<T>, options: SubscribeOptions): Subscription {
    if (this.#closing) throw new ClosedError();
    checkSubscribeOptions(definition.type, options);
    const id = `${definition.topic}\u0000${options.group}`;
    const existing = this.#consumers.get(id);
    if (existing?.routes.has(definition.type)) {
      throw new ConfigError(`${definition.type} already has a handler in group "${options.group}"`);
    }
    const consumer =
      existing ??
      new GroupConsumer(definition.topic, options.group, {
        transport: this.transport,
        logger: this.#logger,
        middleware: this.#middleware,
        maxMessageBytes: this.#maxBytes,
        publishChild: this.#publishChild,
      });
    // Throws on conflicting group settings, before anything is registered.
    consumer.addRoute({ definition, handler: handler as Handler<any>, options });
    this.#consumers.set(id, consumer);
    const owner = consumer;
    const live = () => this.#consumers.get(id) === owner && owner.routes.size > 0;
    const ready = this.#started
      ? this.#startConsumer(owner)
      : new Promise<void>((resolve, reject) => {
          this.#pendingStarts.push(async () => {
            // Closed before start: no consumer runs for it (one without handlers would
            // acknowledge the group's backlog as "no handler").
            if (live()) await this.#startConsumer(owner).then(resolve, reject);
            else reject(new ClosedError('subscription'));
          });
        });
    ready.catch(() => {});
    const subscription: Subscription = {
      ready,
      stats: () => owner.stats,
      close: async ({ drainMs = 10_000 } = {}) => {
        checkDrainMs('subscription.close', drainMs);
        owner.routes.delete(definition.type);
        if (owner.routes.size > 0 || this.#consumers.get(id) !== owner) return;
        this.#consumers.delete(id);
        // Never started: nothing to drain or close, and nothing to wait for.
        if (!this.#starting.has(owner)) return;
        await ready.catch(() => {});
        await owner.close(drainMs);
      },
    };
    return subscription;
  }

  #pendingStarts: (() => Promise<void>)[] = [];
  #starting = new Map<GroupConsumer, Promise<void>>();

  #startConsumer(consumer: GroupConsumer): Promise<void> {
    let starting = this.#starting.get(consumer);
    if (!starting) {
      starting = (async () => {
        await this.transport.ensureGroup(consumer.topic, consumer.group, consumer.from);
        await consumer.start();
      })();
      this.#starting.set(consumer, starting);
    }
    return starting;
  }

  async start(): Promise<void> {
    if (this.#closing) throw new ClosedError();
    this.#started = true;
    await Promise.all(this.#pendingStarts.splice(0).map((start) => start()));
  }

  async close({ drainMs = 10_000 } = {}): Promise<void> {
    checkDrainMs('bus.close', drainMs);
    if (this.#closing) return this.#closingDone;
    this.#closing = true;
    // Drain time, the cut-off handlers' unwinding, then the broker's share.
    const bound = drainMs + 1_000 + (this.#options.closeTimeoutMs ?? 10_000);
    this.#closingDone = withDeadline(this.#close(drainMs), bound, '').catch((error: unknown) => {
      if (!(error instanceof DeadlineError)) throw error;
      this.#logger.error({ system: this.transport.name, boundMs: bound }, 'close did not finish in time');
      throw new TransportError(
        `${this.transport.name}: close did not finish within ${bound} ms (drainMs ${drainMs} + 1000 + closeTimeoutMs): the broker did not answer; deliveries left unsettled come back after their lease`,
      );
    });
    return this.#closingDone;
  }

  #closingDone: Promise<void> = Promise.resolve();

  async #close(drainMs: number): Promise<void> {
    const consumers = [...this.#consumers.values()];
    this.#consumers.clear();
    await Promise.all(
      consumers.map(async (c) => {
        const starting = this.#starting.get(c);
        if (!starting) return;
        await starting.catch(() => {});
        await c.close(drainMs);
      }),
    );
    this.#closed = true;
    // Handlers published follow-ups while draining: flush every accepted publish.
    await Promise.allSettled([...this.#publishing]);
    await this.transport.close();
  }

  async health(): Promise<BusHealth> {
    const transport = await this.transport.health().catch((error: unknown) => ({
      status: 'down' as const,
      reason: error instanceof Error ? error.message : String(error),
    }));
    const consumers = await Promise.all(
      [...this.#consumers.values()].map(async (c) => {
        const lag =
          transport.status === 'up'
            ? await this.transport.lag?.(c.topic, c.group).catch(() => undefined)
            : undefined;
        return { topic: c.topic, group: c.group, stats: c.stats, ...(lag === undefined ? {} : { lag }) };
      }),
    );
    return { status: transport.status, transport, consumers };
  }

  async rewind(definition: EventDefinition<any>, group: string, options: RewindOptions): Promise<number> {
    const at = `rewind(${definition.type}, ${JSON.stringify(group)})`;
    if (typeof group !== 'string' || group === '') throw new ConfigError(`${at} needs a group`);
    const to = options?.to;
    if (to !== 'beginning' && !(to instanceof Date && Number.isFinite(to.getTime())))
      throw new ConfigError(`${at}: to must be a valid Date or 'beginning'`);
    const { transport } = this;
    if (!transport.capabilities.replay)
      throw new UnsupportedError(
        'replay',
        `${at}: the ${transport.name} transport keeps no log to rewind (capability replay: false)`,
      );
    if (!transport.rewind)
      throw new UnsupportedError(
        'replay',
        `${at}: the ${transport.name} transport does not implement rewind (its replay capability only lets a new group start from the beginning)`,
      );
    return transport.rewind(definition.topic, group, to, { dryRun: options.dryRun ?? false });
  }

  deadLetters(definition: EventDefinition<any>, group: string): DeadLetters {
    const { topic } = definition;
    const store = this.transport.deadLetters;
    const withEnvelope = (record: DeadLetterRecord): DeadLetterRecord => {
      try {
        return { ...record, envelope: decode(record.message, { maxBytes: Number.POSITIVE_INFINITY }) };
      } catch {
        return record;
      }
    };
    return {
      list: async (options) => (await store.list(topic, group, options)).map(withEnvelope),
      show: async (id) => {
        const found = (await store.list(topic, group)).find((r) => r.id === id);
        return found && withEnvelope(found);
      },
      replay: (ids) => store.replay(topic, group, ids),
      purge: (ids) => store.purge(topic, group, ids),
    };
  }
}
