/**
 * The consuming half of the bus for one (topic, group): decode, route by type, validate and
 * upcast, per-key ordering, concurrency, idempotency, handler timeout, then ack, retry or dead
 * letter. One transport subscription serves every handler of the group on that topic, so types
 * sharing a topic never compete for each other's messages.
 */
import { backoffDelay, DEFAULT_RETRY, type RetryPolicy } from './backoff.ts';
import { decode } from './cloudevents.ts';
import { Deadlines } from './deadlines.ts';
import type { EventDefinition } from './define-event.ts';
import type { Envelope } from './envelope.ts';
import {
  DecodeError,
  isRetryable,
  NonRetryableError,
  UnknownVersionError,
  ValidationError,
} from './errors.ts';
import { EventContext, eventLogFields, type PublishChild } from './handler-context.ts';
import type { IdempotencyStore } from './idempotency.ts';
import type { Logger } from './logger.ts';
import { compose, type Middleware, type ProcessInfo } from './middleware.ts';
import { Task } from './task.ts';
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

/** The handler of one event type in a (topic, group) consumer. */
export interface TypeRoute {
  definition: EventDefinition<any>;
  handler: Handler<any>;
  options: SubscribeOptions;
}

export interface ConsumerDeps {
  transport: Transport;
  logger: Logger;
  middleware: Middleware[];
  maxMessageBytes: number;
  publishChild: PublishChild;
}

const STACK_LIMIT = 4096;
const RESOLVED: Promise<void> = Promise.resolve();

/*
 * Per-event cost matters here: every adapter's consume throughput is bounded by it (see
 * bench/core-consume.bench.ts). So the success path of one event allocates one Task, one handler
 * context and a few promises: decoding and routing run synchronously as the transport delivers,
 * handler timeouts share one timer per consumer (deadlines.ts), middleware and inbox layers are
 * only entered when configured, and objects that only hooks or logs need are built only for them.
 */
export class GroupConsumer {
  readonly routes = new Map<string, TypeRoute>();
  readonly #deps: ConsumerDeps;
  readonly #options: SubscribeOptions;
  readonly #concurrency: number;
  readonly #stats: ConsumerStats;
  readonly #processHooks: NonNullable<Middleware['process']>[];
  readonly #handledHooks: Middleware[];
  readonly #ready: Task[] = [];
  readonly #busyKeys = new Map<string, Task[]>();
  /** Tasks whose handler runs (or is about to): at most `concurrency`. */
  readonly #running = new Set<Task>();
  /** Tasks whose handler is done and whose settle call (ack, retry, dead letter) is in flight. */
  #settling = 0;
  #draining = false;
  readonly #deadlines = new Deadlines<Task>();
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
    this.#handledHooks = deps.middleware.filter((m) => m.onHandled);
    this.#concurrency = options.concurrency ?? 1;
    this.#stats = {
      held: 0,
      running: 0,
      maxHeld: this.#concurrency + (options.prefetch ?? this.#concurrency),
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
    if (this.#running.size > 0 || this.#settling > 0) {
      const drained = new Promise<void>((resolve) => this.#idle.push(resolve));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, drainMs);
      });
      await Promise.race([drained, deadline]);
      clearTimeout(timer);
    }
    this.#aborting = true;
    for (const task of this.#running) task.abort(new Error('bus closed'));
    this.#deadlines.clear();
    await this.#subscription?.close();
    this.#subscription = undefined;
  }

  /** Called by the transport for each delivery: decode and route now, run when a slot is free. */
  #receive(message: IncomingMessage): void {
    this.#stats.held++;
    if (this.#stats.held > this.#stats.peakHeld) this.#stats.peakHeld = this.#stats.held;
    // While closing, take nothing new: it stays unsettled and the transport gives it back.
    if (this.#stopping) return;

    const target = message.headers[TARGET_GROUP_HEADER];
    if (target !== undefined && target !== this.group) {
      this.#detached(this.#ack(message));
      return;
    }

    let envelope: Envelope;
    try {
      envelope = decode(message, { maxBytes: this.#deps.maxMessageBytes });
    } catch (error) {
      const reason: DeadLetterReason =
        error instanceof DecodeError && error.reason === 'oversize' ? 'oversize' : 'decode_error';
      this.#detached(this.#deadLetter(message, undefined, reason, error));
      return;
    }
    const route = this.routes.get(envelope.type);
    if (!route) {
      // Another type on a shared topic that this group does not handle: not a failure.
      this.#deps.logger.debug(this.#fields(envelope), 'no handler for this type in this group; acknowledged');
      this.#detached(this.#ack(message));
      return;
    }
    const key = this.#options.ordering === 'key' ? envelope.partitionKey : undefined;
    const task = new Task(message, envelope, route, key);
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

  /** Settling failed (broker gone): the message stays unsettled and comes back after its lease. */
  #detached(settling: Promise<void>): void {
    settling.catch(this.#onSettleError);
  }

  readonly #onSettleError = (error: unknown): void => {
    this.#deps.logger.error(
      { err: String(error), topic: this.topic, group: this.group },
      'could not settle a message',
    );
  };

  /**
   * Starts ready tasks while there are free slots. Not re-entrant: a task that releases its slot
   * synchronously (a synchronous handler) lets this same loop start the next one, rather than
   * nesting a call per task on the stack.
   */
  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (!this.#stopping && this.#running.size < this.#concurrency && this.#ready.length > 0) {
        this.#start(this.#ready.shift()!);
      }
    } finally {
      this.#draining = false;
    }
  }

  #start(task: Task): void {
    this.#running.add(task);
    this.#stats.running = this.#running.size;
    let running: Promise<void>;
    try {
      running = this.#run(task);
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then(
      () => this.#finished(task),
      (error: unknown) => {
        this.#deps.logger.error(
          { ...this.#fields(task.envelope), err: String(error) },
          'could not settle a message',
        );
        this.#finished(task);
      },
    );
  }

  /**
   * The handler is done and its message is being settled: free its slot and its key now, so the
   * next handler runs while the broker confirms (an ack is a round trip on most brokers).
   * `close` still waits for the settle to complete (see `#settling`).
   */
  #release(task: Task): void {
    if (!this.#running.delete(task)) return;
    this.#stats.running = this.#running.size;
    this.#settling++;
    this.#releaseKey(task);
    this.#drain();
  }

  /** The task's settle completed (or failed, or it was left unsettled on close). */
  #finished(task: Task): void {
    if (this.#running.has(task)) this.#release(task);
    this.#settling--;
    if (this.#running.size === 0 && this.#settling === 0) for (const wake of this.#idle.splice(0)) wake();
  }

  #releaseKey(task: Task): void {
    if (task.key === undefined) return;
    const next = this.#busyKeys.get(task.key)?.shift();
    if (next) this.#ready.push(next);
    else this.#busyKeys.delete(task.key);
  }

  /**
   * Validate, run the handler (inside middleware and inbox), then ack, retry or dead letter.
   * Written with plain promises rather than `async`: a synchronous handler then costs no
   * promise besides the transport's ack.
   */
  #run(task: Task): Promise<void> {
    const { message, envelope, route } = task;
    let data: unknown;
    try {
      data = route.definition.read(envelope.version, envelope.data);
    } catch (error) {
      const reason = error instanceof UnknownVersionError ? 'unknown_version' : 'schema_invalid';
      return this.#deadLetter(message, envelope, reason, error, task);
    }
    // The decoded envelope belongs to this task alone: it becomes the handler's event in place
    // (the version it was read as, validated and upcast data) instead of being copied.
    envelope.version = route.definition.version;
    envelope.data = data;
    if (this.#handledHooks.length > 0) task.started = performance.now();
    let handling: Promise<void> | undefined;
    try {
      handling =
        this.#processHooks.length === 0
          ? this.#invoke(task)
          : compose(
              this.#processHooks,
              [envelope, this.#info(message.attempt)],
              () => this.#invoke(task) ?? RESOLVED,
            );
    } catch (error) {
      return this.#failed(task, error);
    }
    if (handling === undefined) return this.#succeeded(task);
    return handling.then(
      () => this.#succeeded(task),
      (error: unknown) => this.#failed(task, error),
    );
  }

  #succeeded(task: Task): Promise<void> {
    // Aborted by close while finishing: leave it unsettled, it is delivered again.
    if (this.#aborting && task.aborted) return RESOLVED;
    const acked = this.#ack(task.message);
    this.#release(task);
    if (this.#firstFailure.size === 0 && this.#handledHooks.length === 0) return acked;
    return acked.then(() => {
      this.#firstFailure.delete(task.envelope.id);
      if (this.#handledHooks.length === 0) return;
      const info = {
        ...this.#info(task.message.attempt),
        durationMs: performance.now() - task.started,
        duplicate: task.duplicate,
      };
      for (const m of this.#handledHooks) m.onHandled!(task.envelope, info);
    });
  }

  #failed(task: Task, error: unknown): Promise<void> {
    // Aborted by close: leave it unsettled so that it is delivered again.
    if (this.#aborting) return RESOLVED;
    return this.#fail(task, error);
  }

  /**
   * Runs the handler, inside the inbox when there is one (which sets `task.duplicate` when it
   * already recorded the event). Undefined when the handler finished synchronously.
   */
  #invoke(task: Task): Promise<void> | undefined {
    const inbox = task.route.options.idempotency ?? this.#options.idempotency;
    if (!inbox) return this.#callHandler(task, undefined);
    return inbox
      .run({ group: this.group, id: task.envelope.id }, async (scope) => {
        await this.#callHandler(task, scope.tx);
      })
      .then((result) => {
        task.duplicate = result.duplicate;
      });
  }

  #callHandler(task: Task, tx: unknown): Promise<void> | undefined {
    const { route, envelope } = task;
    const ctx = new EventContext(task, this.topic, this.group, this.#deps, tx);
    let result: unknown;
    try {
      result = route.handler(envelope, ctx);
    } catch (error) {
      return Promise.reject(error ?? new Error('handler threw without a reason'));
    }
    // A synchronous handler is done: no promise, no timeout to watch.
    if (!isThenable(result)) return undefined;
    const timeoutMs = route.options.timeoutMs ?? this.#options.timeoutMs ?? 30_000;
    return task.race(result, timeoutMs, this.#deadlines);
  }

  async #fail(task: Task, error: unknown): Promise<void> {
    const { message, envelope: event, route } = task;
    const policy = route.options.retry ?? this.#options.retry ?? {};
    const attempts = policy.attempts ?? DEFAULT_RETRY.attempts;
    if (error instanceof NonRetryableError || error instanceof ValidationError || !isRetryable(error)) {
      return this.#deadLetter(message, event, 'non_retryable', error, task);
    }
    if (message.attempt >= attempts) return this.#deadLetter(message, event, 'max_attempts', error, task);
    if (!this.#firstFailure.has(event.id)) this.#firstFailure.set(event.id, new Date().toISOString());
    const delayMs = backoffDelay(policy, message.attempt);
    for (const m of this.#deps.middleware)
      m.onRetry?.(event, { ...this.#info(message.attempt), delayMs, error });
    this.#deps.logger.info(
      { ...this.#fields(event), attempt: message.attempt, delayMs, err: errorSummary(error).message },
      'handler failed; will retry',
    );
    this.#stats.held--;
    const retried = message.retry(delayMs);
    this.#release(task);
    await retried;
  }

  async #deadLetter(
    message: IncomingMessage,
    envelope: Envelope | undefined,
    reason: DeadLetterReason,
    error: unknown,
    task?: Task,
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
    this.#stats.held--;
    const deadLettered = message.deadLetter({
      topic: this.topic,
      group: this.group,
      reason,
      error: errorSummary(error),
      attempts: message.attempt,
      firstFailedAt,
      lastFailedAt: now,
    });
    if (task) this.#release(task);
    await deadLettered;
  }

  /** Counts the message as released before settling: the transport may deliver the next one synchronously. */
  #ack(message: IncomingMessage): Promise<void> {
    this.#stats.held--;
    return message.ack();
  }

  #info(attempt: number): ProcessInfo {
    return { topic: this.topic, group: this.group, attempt, system: this.#deps.transport.name };
  }

  #fields(envelope: Envelope): Record<string, unknown> {
    return eventLogFields(envelope, this.group);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
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
