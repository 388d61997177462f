/**
 * The consuming half of the bus for one (topic, group): decode, route by type, validate and
 * upcast, per-key ordering, concurrency, idempotency, handler timeout, then ack, retry or dead
 * letter. One transport subscription serves every handler of the group on that topic, so types
 * sharing a topic never compete for each other's messages.
 */
import { backoffDelay, DEFAULT_RETRY, type RetryPolicy } from './backoff.ts';
import { decode } from './cloudevents.ts';
import type { EventDefinition } from './define-event.ts';
import type { Envelope } from './envelope.ts';
import {
  DecodeError,
  HandlerTimeoutError,
  isRetryable,
  NonRetryableError,
  UnknownVersionError,
  ValidationError,
} from './errors.ts';
import type { IdempotencyStore } from './idempotency.ts';
import { type Logger, withFields } from './logger.ts';
import { compose, type Middleware, type ProcessInfo } from './middleware.ts';
import {
  type DeadLetterReason,
  FIRST_FAILURE_HEADER,
  type IncomingMessage,
  type StartFrom,
  TARGET_GROUP_HEADER,
  type Transport,
  type TransportSubscription,
} from './transport.ts';

/** What a handler gets besides the event. */
export interface HandlerContext {
  /** 1 on the first delivery, counted across redeliveries. */
  attempt: number;
  /** Fires on handler timeout and when the bus closes past its drain time. */
  signal: AbortSignal;
  topic: string;
  group: string;
  /** Publish a follow-up event: it inherits this event's correlation id, and its id as causation id. */
  publish: PublishFn;
  /** Logger whose entries carry event id, type, group and correlation id. */
  logger: Logger;
  /** The open transaction of an inbox that joins the handler's writes (Postgres inbox, `tx` mode). */
  tx?: unknown;
}

export type PublishFn = <T>(
  definition: EventDefinition<T>,
  data: T,
  options?: ChildPublishOptions,
) => Promise<Envelope<T>>;
export interface ChildPublishOptions {
  subject?: string;
  key?: string;
}

export type Handler<T> = (event: Envelope<T>, ctx: HandlerContext) => Promise<void> | void;

/** Options of `bus.subscribe`. */
export interface SubscribeOptions {
  /** Consumer group: each group gets every event once. Required. */
  group: string;
  /** Handlers running at once for this (topic, group). Default 1. */
  concurrency?: number;
  /** Messages held beyond `concurrency` (fetched, waiting). Default `concurrency`. Bounds memory. */
  prefetch?: number;
  /** `key`: one partition key never runs concurrently, keys run in parallel. Default `none`. */
  ordering?: 'key' | 'none';
  /** Retries before dead-lettering. */
  retry?: RetryPolicy;
  /** Inbox that makes effects happen once per (group, event id). */
  idempotency?: IdempotencyStore;
  /** Abort and retry a handler running longer than this. Default 30 s. */
  timeoutMs?: number;
  /** Where a new group starts. Default `latest`. */
  from?: StartFrom;
}

/** Counters a subscription exposes for tests and health. */
export interface ConsumerStats {
  /** Messages delivered by the transport and not settled yet (running + waiting). */
  held: number;
  /** Handlers running now. */
  running: number;
  /** The bound `held` must stay within: concurrency + prefetch. */
  maxHeld: number;
  /** The highest `held` seen. */
  peakHeld: number;
}

interface TypeRoute {
  definition: EventDefinition<any>;
  handler: Handler<any>;
  options: SubscribeOptions;
}

export interface ConsumerDeps {
  transport: Transport;
  logger: Logger;
  middleware: Middleware[];
  maxMessageBytes: number;
  publishChild: (
    parent: Envelope,
    definition: EventDefinition<any>,
    data: unknown,
    options?: ChildPublishOptions,
  ) => Promise<Envelope>;
}

interface Task {
  message: IncomingMessage;
  envelope: Envelope;
  route: TypeRoute;
  key: string | undefined;
}

const STACK_LIMIT = 4096;

export class GroupConsumer {
  readonly routes = new Map<string, TypeRoute>();
  readonly #deps: ConsumerDeps;
  readonly #options: SubscribeOptions;
  readonly #stats: ConsumerStats;
  readonly #processHooks: NonNullable<Middleware['process']>[];
  readonly #ready: Task[] = [];
  readonly #busyKeys = new Map<string, Task[]>();
  readonly #running = new Map<Task, TaskControl>();
  readonly #firstFailure = new Map<string, string>();
  #subscription: TransportSubscription | undefined;
  #stopping = false;
  #aborting = false;
  #idle: (() => void)[] = [];

  readonly topic: string;
  readonly group: string;

  constructor(topic: string, group: string, options: SubscribeOptions, deps: ConsumerDeps) {
    this.topic = topic;
    this.group = group;
    this.#options = options;
    this.#deps = deps;
    this.#processHooks = deps.middleware.flatMap((m) => (m.process ? [m.process.bind(m)] : []));
    const concurrency = options.concurrency ?? 1;
    this.#stats = {
      held: 0,
      running: 0,
      maxHeld: concurrency + (options.prefetch ?? concurrency),
      peakHeld: 0,
    };
  }

  get stats(): ConsumerStats {
    return { ...this.#stats };
  }

  get started(): boolean {
    return this.#subscription !== undefined;
  }

  async start(): Promise<void> {
    const timeoutMs = this.#options.timeoutMs ?? 30_000;
    this.#subscription = await this.#deps.transport.subscribe(
      {
        topic: this.topic,
        group: this.group,
        from: this.#options.from ?? 'latest',
        maxInFlight: this.#stats.maxHeld,
        ordering: this.#options.ordering ?? 'none',
        // Long enough for every held message to be handled one after another at the timeout.
        leaseMs: Math.max(30_000, timeoutMs * 2),
      },
      (message) => this.#receive(message),
    );
  }

  /**
   * Stop taking work, let running handlers finish for up to `drainMs`, then abort the rest and
   * leave their messages unsettled so the broker delivers them again.
   */
  async close(drainMs: number): Promise<void> {
    this.#stopping = true;
    if (this.#running.size > 0) {
      const drained = new Promise<void>((resolve) => this.#idle.push(resolve));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, drainMs);
      });
      await Promise.race([drained, deadline]);
      clearTimeout(timer);
    }
    this.#aborting = true;
    for (const controller of this.#running.values()) controller.abort(new Error('bus closed'));
    await this.#subscription?.close();
    this.#subscription = undefined;
  }

  #receive(message: IncomingMessage): void {
    this.#stats.held++;
    if (this.#stats.held > this.#stats.peakHeld) this.#stats.peakHeld = this.#stats.held;
    // While closing, take nothing new: it stays unsettled and the transport gives it back.
    if (this.#stopping) return;
    void this.#admit(message).catch((error) => {
      this.#deps.logger.error(
        { err: String(error), topic: this.topic, group: this.group },
        'could not settle a message',
      );
    });
  }

  async #admit(message: IncomingMessage): Promise<void> {
    const target = message.headers[TARGET_GROUP_HEADER];
    if (target !== undefined && target !== this.group) return this.#settle(() => message.ack());

    let envelope: Envelope;
    try {
      envelope = decode(message, { maxBytes: this.#deps.maxMessageBytes });
    } catch (error) {
      const reason: DeadLetterReason =
        error instanceof DecodeError && error.reason === 'oversize' ? 'oversize' : 'decode_error';
      return this.#deadLetter(message, undefined, reason, error);
    }
    const route = this.routes.get(envelope.type);
    if (!route) {
      // Another type on a shared topic that this group does not handle: not a failure.
      this.#deps.logger.debug(this.#fields(envelope), 'no handler for this type in this group; acknowledged');
      return this.#settle(() => message.ack());
    }
    const key = this.#options.ordering === 'key' ? envelope.partitionKey : undefined;
    const task: Task = { message, envelope, route, key };
    if (key !== undefined) {
      const queue = this.#busyKeys.get(key);
      if (queue) {
        queue.push(task);
        return;
      }
      this.#busyKeys.set(key, []);
    }
    this.#ready.push(task);
    this.#drain();
  }

  #drain(): void {
    const concurrency = this.#options.concurrency ?? 1;
    while (!this.#stopping && this.#running.size < concurrency && this.#ready.length > 0) {
      const task = this.#ready.shift()!;
      const controller = new TaskControl();
      this.#running.set(task, controller);
      this.#stats.running = this.#running.size;
      void this.#run(task, controller)
        .catch((error: unknown) => {
          // Settling failed (broker gone): the message stays unsettled and comes back after its lease.
          this.#deps.logger.error(
            { ...this.#fields(task.envelope), err: String(error) },
            'could not settle a message',
          );
        })
        .finally(() => {
          this.#running.delete(task);
          this.#stats.running = this.#running.size;
          this.#releaseKey(task);
          if (this.#running.size === 0) for (const wake of this.#idle.splice(0)) wake();
          this.#drain();
        });
    }
  }

  #releaseKey(task: Task): void {
    if (task.key === undefined) return;
    const next = this.#busyKeys.get(task.key)?.shift();
    if (next) this.#ready.push(next);
    else this.#busyKeys.delete(task.key);
  }

  async #run(task: Task, controller: TaskControl): Promise<void> {
    const { message, envelope, route } = task;
    const info = this.#info(message.attempt);
    let data: unknown;
    try {
      data = route.definition.read(envelope.version, envelope.data);
    } catch (error) {
      const reason = error instanceof UnknownVersionError ? 'unknown_version' : 'schema_invalid';
      return this.#deadLetter(message, envelope, reason, error);
    }
    const event: Envelope = { ...envelope, version: route.definition.version, data };
    const started = performance.now();
    let duplicate = false;
    try {
      const work = async () => {
        duplicate = await this.#invoke(route, event, message.attempt, controller);
      };
      await (this.#processHooks.length === 0 ? work() : compose(this.#processHooks, [event, info], work));
    } catch (error) {
      // Aborted by close: leave it unsettled so that it is delivered again.
      if (this.#aborting) return;
      return this.#fail(message, event, route, error);
    }
    if (this.#aborting && controller.aborted) return;
    await this.#settle(() => message.ack());
    this.#firstFailure.delete(envelope.id);
    const durationMs = performance.now() - started;
    for (const m of this.#deps.middleware) m.onHandled?.(event, { ...info, durationMs, duplicate });
  }

  /** Runs the handler (inside the inbox when there is one); true when the inbox found a duplicate. */
  async #invoke(
    route: TypeRoute,
    event: Envelope,
    attempt: number,
    controller: TaskControl,
  ): Promise<boolean> {
    const { options, handler } = route;
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? 30_000;
    const consumer = this;
    let logger: Logger | undefined;
    const call = async (scope: { tx?: unknown }) => {
      const ctx: HandlerContext = {
        attempt,
        // Built on first use, like the logger: an AbortController per event is costly.
        get signal() {
          return controller.signal;
        },
        topic: this.topic,
        group: this.group,
        // Built on first use: most handlers never log, and this runs per event.
        get logger() {
          logger ??= withFields(consumer.#deps.logger, consumer.#fields(event));
          return logger;
        },
        publish: (definition, data, childOptions) =>
          this.#deps.publishChild(event, definition, data, childOptions) as Promise<Envelope<any>>,
      };
      if (scope.tx !== undefined) ctx.tx = scope.tx;
      let work: Promise<void>;
      try {
        work = Promise.resolve(handler(event, ctx));
      } catch (error) {
        work = Promise.reject(error);
      }
      await controller.race(work, timeoutMs);
    };
    const inbox = options.idempotency ?? this.#options.idempotency;
    if (!inbox) {
      await call({});
      return false;
    }
    const result = await inbox.run({ group: this.group, id: event.id }, call);
    return result.duplicate;
  }

  async #fail(message: IncomingMessage, event: Envelope, route: TypeRoute, error: unknown): Promise<void> {
    const policy = route.options.retry ?? this.#options.retry ?? {};
    const attempts = policy.attempts ?? DEFAULT_RETRY.attempts;
    if (error instanceof NonRetryableError || error instanceof ValidationError || !isRetryable(error)) {
      return this.#deadLetter(message, event, 'non_retryable', error);
    }
    if (message.attempt >= attempts) return this.#deadLetter(message, event, 'max_attempts', error);
    if (!this.#firstFailure.has(event.id)) this.#firstFailure.set(event.id, new Date().toISOString());
    const delayMs = backoffDelay(policy, message.attempt);
    for (const m of this.#deps.middleware)
      m.onRetry?.(event, { ...this.#info(message.attempt), delayMs, error });
    this.#deps.logger.info(
      { ...this.#fields(event), attempt: message.attempt, delayMs, err: errorSummary(error).message },
      'handler failed; will retry',
    );
    await this.#settle(() => message.retry(delayMs));
  }

  async #deadLetter(
    message: IncomingMessage,
    envelope: Envelope | undefined,
    reason: DeadLetterReason,
    error: unknown,
  ): Promise<void> {
    const now = new Date().toISOString();
    const firstFailedAt =
      (envelope && this.#firstFailure.get(envelope.id)) ?? message.headers[FIRST_FAILURE_HEADER] ?? now;
    if (envelope) this.#firstFailure.delete(envelope.id);
    for (const m of this.#deps.middleware)
      m.onDeadLetter?.(envelope, { ...this.#info(message.attempt), reason, error });
    this.#deps.logger.warn(
      {
        ...(envelope ? this.#fields(envelope) : { topic: this.topic, group: this.group }),
        reason,
        err: errorSummary(error).message,
      },
      'dead-lettered',
    );
    await this.#settle(() =>
      message.deadLetter({
        topic: this.topic,
        group: this.group,
        reason,
        error: errorSummary(error),
        attempts: message.attempt,
        firstFailedAt,
        lastFailedAt: now,
      }),
    );
  }

  /** Counts the message as released before settling: the transport may deliver the next one synchronously. */
  async #settle(settle: () => Promise<void>): Promise<void> {
    this.#stats.held--;
    await settle();
  }

  #info(attempt: number): ProcessInfo {
    return { topic: this.topic, group: this.group, attempt, system: this.#deps.transport.name };
  }

  #fields(envelope: Envelope): Record<string, unknown> {
    return {
      eventId: envelope.id,
      type: envelope.type,
      group: this.group,
      correlationId: envelope.correlationId,
    };
  }
}

function errorSummary(error: unknown): { name: string; code?: string; message: string; stack?: string } {
  if (error instanceof Error) {
    const summary: { name: string; code?: string; message: string; stack?: string } = {
      name: error.name,
      message: error.message,
    };
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') summary.code = code;
    if (error.stack) summary.stack = error.stack.slice(0, STACK_LIMIT);
    return summary;
  }
  return { name: 'NonError', message: String(error) };
}

/**
 * Cancellation of one handler run. The AbortController behind `ctx.signal` is only created when
 * the handler reads it: most handlers never do, and creating one per event showed in profiles.
 */
class TaskControl {
  aborted = false;
  #reason: unknown;
  #controller: AbortController | undefined;
  #onAbort: ((reason: unknown) => void) | undefined;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#onAbort?.(reason);
  }

  /** Runs `work`, rejecting early when aborted or when `timeoutMs` passes (which aborts). */
  race(work: Promise<void>, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.abort(new HandlerTimeoutError(timeoutMs)), timeoutMs);
      this.#onAbort = (reason) => {
        clearTimeout(timer);
        reject(reason);
      };
      if (this.aborted) this.#onAbort(this.#reason);
      work.then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error ?? new Error('handler rejected without a reason'));
        },
      );
    });
  }
}
