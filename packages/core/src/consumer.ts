/**
 * The consuming half of the bus for one (topic, group): decode, route by type, validate and
 * upcast, per-key ordering, concurrency, idempotency, handler timeout, then ack, retry or dead
 * letter. One transport subscription serves every handler of the group on that topic, so types
 * sharing a topic never compete for each other's messages.
 */
import type { RetryPolicy } from './backoff.ts';
import { decode } from './cloudevents.ts';
import { Deadlines } from './deadlines.ts';
import type { Envelope } from './envelope.ts';
import { decideFailure, type FailureDecision, type FailureStage } from './failure-policy.ts';
import { EventContext, eventLogFields, type PublishChild } from './handler-context.ts';
import type { ConsumerStats, TypeRoute } from './handler-types.ts';
import { InFlightEvent } from './in-flight-event.ts';
import type { Logger } from './logger.ts';
import {
  compose,
  type Middleware,
  nextNotCalled,
  type ProcessInfo,
  type ProcessOutcome,
} from './middleware.ts';
import { rateGate } from './rate-limit.ts';
import { type GroupSettings, mergeGroupSettings } from './subscribe-options.ts';
import {
  type DeadLetterReason,
  FIRST_FAILURE_HEADER,
  type IncomingMessage,
  TARGET_GROUP_HEADER,
  type Transport,
  type TransportSubscription,
} from './transport.ts';

export interface ConsumerDeps {
  transport: Transport;
  logger: Logger;
  middleware: Middleware[];
  maxMessageBytes: number;
  publishChild: PublishChild;
}

/** How long close waits, after the drain time, for cut-off handlers to unwind before closing. */
const UNWIND_MS = 1_000;

/** First failure times remembered per consumer (see `#firstFailure`). */
const FIRST_FAILURES_KEPT = 10_000;
const STACK_LIMIT = 4096;
const RESOLVED: Promise<void> = Promise.resolve();
const ACKED: ProcessOutcome = Object.freeze({ status: 'acked', duplicate: false });
const ACKED_DUPLICATE: ProcessOutcome = Object.freeze({ status: 'acked', duplicate: true });

/*
 * Per-event cost matters here: every adapter's consume throughput is bounded by it (see
 * bench/core-consume.bench.ts). So the success path of one event allocates one InFlightEvent, one handler
 * context and a few promises: decoding and routing run synchronously as the transport delivers,
 * handler timeouts share one timer per consumer (deadlines.ts), middleware and inbox layers are
 * only entered when configured, and objects that only hooks or logs need are built only for them.
 */
export class GroupConsumer {
  readonly routes = new Map<string, TypeRoute>();
  readonly #deps: ConsumerDeps;
  /** The group settings (concurrency, prefetch, ordering, from), merged from every handler. */
  readonly #settings: GroupSettings = {};
  /** Which handler's subscribe set each group setting, for conflict messages. */
  readonly #setBy = new Map<string, string>();
  #concurrency = 1;
  readonly #stats: ConsumerStats = { held: 0, running: 0, maxHeld: 2, peakHeld: 0 };
  readonly #processHooks: NonNullable<Middleware['process']>[];
  readonly #handledHooks: Middleware[];
  readonly #ready: InFlightEvent[] = [];
  readonly #busyKeys = new Map<string, InFlightEvent[]>();
  /** Events whose handler runs (or is about to): at most `concurrency`. */
  readonly #running = new Set<InFlightEvent>();
  /** Settle calls (ack, retry, dead letter) in flight. */
  #settling = 0;
  /** Events waiting for an in-process retry (ordering 'key'), with their timers. */
  readonly #retrying = new Map<InFlightEvent, NodeJS.Timeout>();
  #pumping = false;
  readonly #deadlines = new Deadlines<InFlightEvent>();
  /**
   * First failure time of events retried through the broker, for their dead-letter record when
   * they come back here. Bounded: a retry that lands on another instance never clears its entry
   * (adapters that re-publish retries carry the time in a header instead).
   */
  readonly #firstFailure = new Map<string, string>();
  #subscription: TransportSubscription | undefined;
  #stopping = false;
  /** Ends rate-limit waits when close begins. */
  readonly #stop = new AbortController();
  #aborting = false;
  #idle: (() => void)[] = [];

  readonly topic: string;
  readonly group: string;

  constructor(topic: string, group: string, deps: ConsumerDeps) {
    this.topic = topic;
    this.group = group;
    this.#deps = deps;
    this.#processHooks = deps.middleware.flatMap((m) => (m.process ? [m.process.bind(m)] : []));
    this.#handledHooks = deps.middleware.filter((m) => m.onHandled);
  }

  /** Adds the handler of one type; its group settings must agree with the group's (see SubscribeOptions). */
  addRoute(route: TypeRoute): void {
    mergeGroupSettings(this.#settings, route.options, {
      type: route.definition.type,
      group: this.group,
      topic: this.topic,
      setBy: this.#setBy,
      started: this.started,
    });
    const { rateLimit } = route.options;
    if (rateLimit) {
      const key = `${this.topic}/${this.group}/${route.definition.type}`;
      route.gate = rateGate(
        rateLimit,
        key,
        this.#deps.transport.rateLimitStore,
        `subscribe(${route.definition.type})`,
      );
    }
    this.routes.set(route.definition.type, route);
    this.#concurrency = this.#settings.concurrency ?? 1;
    this.#stats.maxHeld = this.#concurrency + (this.#settings.prefetch ?? this.#concurrency);
  }

  get stats(): ConsumerStats {
    return { ...this.#stats };
  }

  get started(): boolean {
    return this.#subscription !== undefined;
  }

  /** Where a new group starts: the group's `from`. */
  get from(): 'latest' | 'beginning' {
    return this.#settings.from ?? 'latest';
  }

  async start(): Promise<void> {
    let timeoutMs = 0;
    for (const route of this.routes.values())
      timeoutMs = Math.max(timeoutMs, route.options.timeoutMs ?? 30_000);
    this.#subscription = await this.#deps.transport.subscribe(
      {
        topic: this.topic,
        group: this.group,
        from: this.from,
        maxInFlight: this.#stats.maxHeld,
        ordering: this.#settings.ordering ?? 'none',
        // Long enough for every held message to be handled one after another at the timeout.
        leaseMs: Math.max(30_000, timeoutMs * 2),
      },
      (message) => this.#receive(message),
    );
  }

  /**
   * Stop taking work and let running handlers finish, with their full powers (publish, inbox,
   * ack), for up to `drainMs`. Then abort the rest and leave them, and everything fetched but
   * not started, unsettled: closing the subscription gives them back to the broker. A handler
   * cut off this way is not failed, not retried and not dead-lettered (DESIGN.md section 13).
   */
  async close(drainMs: number): Promise<void> {
    this.#stopping = true;
    this.#stop.abort(new Error('bus closed'));
    for (const timer of this.#retrying.values()) clearTimeout(timer);
    // A subscription that can stop fetching lets the waiting work go back to the group now,
    // for other instances, instead of at the end of the drain.
    const subscription = this.#subscription;
    const releasing = subscription?.stop !== undefined;
    if (releasing) {
      subscription!.stop!();
      this.#giveBackWaiting();
    }
    await this.#whenIdle(drainMs);
    this.#aborting = true;
    const cutOff = [...this.#running];
    for (const inFlight of cutOff) inFlight.abort(new Error('bus closed'));
    this.#deadlines.clear();
    // Cut-off handlers unwind (their inbox rolls back) before they are given back.
    await this.#whenIdle(UNWIND_MS);
    if (releasing) {
      for (const inFlight of cutOff) this.#giveBack(inFlight);
      this.#giveBackWaiting();
    }
    await subscription?.close();
    this.#subscription = undefined;
  }

  /**
   * Gives back, in arrival order, the events that wait and will not run here: ready, waiting for
   * an in-process retry, or queued behind a running event of their key (those stay until that
   * one is settled or cut off, so that a key's events go back in order).
   */
  #giveBackWaiting(): void {
    const busy = new Set<string>();
    for (const inFlight of this.#running) if (inFlight.key !== undefined) busy.add(inFlight.key);
    for (const inFlight of this.#retrying.keys()) this.#giveBack(inFlight);
    this.#retrying.clear();
    for (const inFlight of this.#ready.splice(0)) this.#giveBack(inFlight);
    for (const [key, queue] of this.#busyKeys) {
      if (busy.has(key)) continue;
      for (const inFlight of queue.splice(0)) this.#giveBack(inFlight);
      this.#busyKeys.delete(key);
    }
  }

  /** Back to the broker uncounted (SPI `release`), or left to `close()` where there is none. */
  #giveBack(inFlight: InFlightEvent): void {
    const release = inFlight.message.release;
    if (!release) return;
    this.#stats.held--;
    this.#detached(release());
  }

  #whenIdle(ms: number): Promise<void> {
    if (this.#running.size === 0 && this.#settling === 0) return RESOLVED;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Called by the transport for each delivery: decode and route now, run when a slot is free. */
  #receive(message: IncomingMessage): void {
    this.#stats.held++;
    if (this.#stats.held > this.#stats.peakHeld) this.#stats.peakHeld = this.#stats.held;
    // While closing, take nothing new: it stays unsettled and the transport gives it back
    // (after `stop()`, nothing arrives any more).
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
      this.#detached(this.#failed(message, undefined, 'decode', error));
      return;
    }
    const route = this.routes.get(envelope.type);
    if (!route) {
      // Another type on a shared topic that this group does not handle: not a failure.
      this.#deps.logger.debug(this.#fields(envelope), 'no handler for this type in this group; acknowledged');
      this.#detached(this.#ack(message));
      return;
    }
    const key = this.#settings.ordering === 'key' ? envelope.partitionKey : undefined;
    const inFlight = new InFlightEvent(message, envelope, route, key);
    if (key !== undefined) {
      const queue = this.#busyKeys.get(key);
      if (queue) {
        queue.push(inFlight);
        return;
      }
      this.#busyKeys.set(key, []);
    }
    this.#ready.push(inFlight);
    this.#pump();
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
   * Starts ready events while there are free slots. Not re-entrant: a event that releases its slot
   * synchronously (a synchronous handler) lets this same loop start the next one, rather than
   * nesting a call per event on the stack.
   */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#stopping && this.#running.size < this.#concurrency && this.#ready.length > 0) {
        this.#start(this.#ready.shift()!);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #start(inFlight: InFlightEvent): void {
    this.#running.add(inFlight);
    this.#stats.running = this.#running.size;
    let running: Promise<void>;
    try {
      running = this.#run(inFlight);
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then(
      () => this.#finished(inFlight),
      (error: unknown) => {
        // eventwire's own trouble while settling: not the handler's failure. The message stays
        // unsettled and comes back after its lease.
        this.#deps.logger.error(
          { ...this.#fields(inFlight.envelope), err: String(error) },
          'could not settle a message',
        );
        this.#finished(inFlight);
      },
    );
  }

  /**
   * The handler is done and its message is being settled: free its slot and its key now, so the
   * next handler runs while the broker confirms (an ack is a round trip on most brokers).
   * `close` still waits for the settle to complete (see `#settling`).
   */
  #release(inFlight: InFlightEvent): void {
    if (!this.#running.delete(inFlight)) return;
    this.#stats.running = this.#running.size;
    inFlight.settling = true;
    this.#settling++;
    this.#releaseKey(inFlight);
    this.#pump();
  }

  /** The event's settle completed (or failed), it waits for an in-process retry, or it was cut off on close. */
  #finished(inFlight: InFlightEvent): void {
    if (this.#running.delete(inFlight)) {
      // Left unsettled (cut off by close): its key goes with it.
      this.#stats.running = this.#running.size;
      this.#releaseKey(inFlight);
    }
    if (inFlight.settling) {
      inFlight.settling = false;
      this.#settling--;
    }
    if (this.#running.size === 0 && this.#settling === 0) for (const wake of this.#idle.splice(0)) wake();
  }

  #releaseKey(inFlight: InFlightEvent): void {
    if (inFlight.key === undefined) return;
    const next = this.#busyKeys.get(inFlight.key)?.shift();
    if (next) this.#ready.push(next);
    else this.#busyKeys.delete(inFlight.key);
  }

  /**
   * Validate, run the handler (inside middleware and inbox), then ack, retry or dead letter.
   * Written with plain promises rather than `async`: a synchronous handler then costs no
   * promise besides the transport's ack.
   */
  #run(inFlight: InFlightEvent): Promise<void> {
    const gate = inFlight.route.gate;
    if (gate === undefined) return this.#runNow(inFlight);
    // The wait holds the event's handler slot but not its timeout. Cut off by close, the event
    // never ran: it goes back to the group uncounted.
    return gate(this.#stop.signal).then(
      () => this.#runNow(inFlight),
      () => {
        if (this.#running.delete(inFlight)) this.#stats.running = this.#running.size;
        this.#releaseKey(inFlight);
        this.#giveBack(inFlight);
      },
    );
  }

  #runNow(inFlight: InFlightEvent): Promise<void> {
    const { message, envelope, route } = inFlight;
    if (!inFlight.read) {
      let data: unknown;
      try {
        data = route.definition.read(envelope.version, envelope.data);
      } catch (error) {
        return this.#failed(message, inFlight, 'read', error);
      }
      // The decoded envelope belongs to this event alone: it becomes the handler's event in place
      // (the version it was read as, validated and upcast data) instead of being copied.
      envelope.version = route.definition.version;
      envelope.data = data;
      inFlight.read = true;
    }
    if (this.#handledHooks.length > 0) inFlight.started = performance.now();
    if (this.#processHooks.length > 0) return this.#runHooked(inFlight);
    let handling: Promise<void> | undefined;
    try {
      handling = this.#invoke(inFlight);
    } catch (error) {
      return this.#failed(message, inFlight, 'handler', error);
    }
    if (handling === undefined) return this.#succeeded(inFlight);
    return handling.then(
      () => this.#succeeded(inFlight),
      (error: unknown) => this.#failed(message, inFlight, 'handler', error),
    );
  }

  /**
   * With `process` hooks: the decision is made inside them (their `next()` resolves to it) and
   * carried out once they all returned. A hook that throws fails the attempt like a handler.
   */
  #runHooked(inFlight: InFlightEvent): Promise<void> {
    let decision: FailureDecision | undefined;
    let failure: unknown;
    let ran = false;
    const decide = (): Promise<ProcessOutcome> => {
      ran = true;
      let handling: Promise<void>;
      try {
        handling = this.#invoke(inFlight) ?? RESOLVED;
      } catch (error) {
        handling = Promise.reject(error);
      }
      return handling.then(
        () => (inFlight.duplicate ? ACKED_DUPLICATE : ACKED),
        (error: unknown) => {
          failure = error;
          decision = this.#decide(inFlight.message, inFlight, 'handler', error);
          return outcomeOf(decision, error);
        },
      );
    };
    return compose(this.#processHooks, [inFlight.envelope, this.#info(inFlight.attempt)], decide).then(
      () => {
        if (!ran) return this.#failed(inFlight.message, inFlight, 'handler', nextNotCalled());
        return decision
          ? this.#carryOut(inFlight.message, inFlight, decision, failure)
          : this.#succeeded(inFlight);
      },
      (error: unknown) => this.#failed(inFlight.message, inFlight, 'handler', error),
    );
  }

  #succeeded(inFlight: InFlightEvent): Promise<void> {
    // Aborted by close while finishing: leave it unsettled, it is delivered again.
    if (this.#aborting && inFlight.aborted) return RESOLVED;
    const acked = this.#ack(inFlight.message);
    this.#release(inFlight);
    if (this.#firstFailure.size === 0 && this.#handledHooks.length === 0) return acked;
    return acked.then(() => {
      this.#firstFailure.delete(inFlight.envelope.id);
      if (this.#handledHooks.length === 0) return;
      const info = {
        ...this.#info(inFlight.attempt),
        durationMs: performance.now() - inFlight.started,
        duplicate: inFlight.duplicate,
      };
      for (const m of this.#handledHooks) m.onHandled!(inFlight.envelope, info);
    });
  }

  /**
   * Runs the handler, inside the inbox when there is one (which sets `event.duplicate` when it
   * already recorded the event). Undefined when the handler finished synchronously.
   */
  #invoke(inFlight: InFlightEvent): Promise<void> | undefined {
    const inbox = inFlight.route.options.idempotency;
    if (!inbox) return this.#callHandler(inFlight, undefined);
    return inbox
      .run({ group: this.group, id: inFlight.envelope.id }, async (scope) => {
        await this.#callHandler(inFlight, scope.tx);
      })
      .then((result) => {
        inFlight.duplicate = result.duplicate;
      });
  }

  #callHandler(inFlight: InFlightEvent, tx: unknown): Promise<void> | undefined {
    const { route, envelope } = inFlight;
    const ctx = new EventContext(inFlight, this.topic, this.group, this.#deps, tx);
    let result: unknown;
    try {
      result = route.handler(envelope, ctx);
    } catch (error) {
      return Promise.reject(error ?? new Error('handler threw without a reason'));
    }
    // A synchronous handler is done: no promise, no timeout to watch.
    if (!isThenable(result)) return undefined;
    return inFlight.race(result, route.options.timeoutMs ?? 30_000, this.#deadlines);
  }

  /**
   * Every failure path ends here: the failure policy (failure-policy.ts) decides, this carries
   * the decision out. `inFlight` is undefined for bytes that never decoded.
   */
  #failed(
    message: IncomingMessage,
    inFlight: InFlightEvent | undefined,
    stage: FailureStage,
    error: unknown,
  ): Promise<void> {
    return this.#carryOut(message, inFlight, this.#decide(message, inFlight, stage, error), error);
  }

  #decide(
    message: IncomingMessage,
    inFlight: InFlightEvent | undefined,
    stage: FailureStage,
    error: unknown,
  ): FailureDecision {
    const policy: RetryPolicy = inFlight?.route.options.retry ?? {};
    const attempt = inFlight?.attempt ?? message.attempt;
    return decideFailure({ stage, error, attempt, policy, closing: this.#aborting });
  }

  #carryOut(
    message: IncomingMessage,
    inFlight: InFlightEvent | undefined,
    decision: FailureDecision,
    error: unknown,
  ): Promise<void> {
    switch (decision.action) {
      case 'release':
        // Cut off by close: left unsettled, the transport gives it back (see close()).
        return RESOLVED;
      case 'dead_letter':
        return this.#deadLetter(message, inFlight, decision.reason, error);
      case 'retry':
        return this.#retry(inFlight!, decision.delayMs, error);
    }
  }

  #retry(inFlight: InFlightEvent, delayMs: number, error: unknown): Promise<void> {
    const { message, envelope: event } = inFlight;
    const now = new Date().toISOString();
    inFlight.firstFailedAt ??= now;
    if (!this.#firstFailure.has(event.id)) {
      this.#firstFailure.set(event.id, inFlight.firstFailedAt);
      // Oldest first (insertion order): past the bound, forget the oldest.
      if (this.#firstFailure.size > FIRST_FAILURES_KEPT) {
        this.#firstFailure.delete(this.#firstFailure.keys().next().value!);
      }
    }
    for (const m of this.#deps.middleware)
      m.onRetry?.(event, { ...this.#info(inFlight.attempt), delayMs, error });
    this.#deps.logger.info(
      { ...this.#fields(event), attempt: inFlight.attempt, delayMs, err: errorSummary(error).message },
      'handler failed; will retry',
    );
    if (inFlight.key !== undefined || (delayMs > 0 && !this.#deps.transport.capabilities.nativeDelay)) {
      this.#retryHere(inFlight, delayMs);
      return RESOLVED;
    }
    this.#stats.held--;
    const retried = message.retry(delayMs);
    this.#release(inFlight);
    return retried;
  }

  /**
   * Retries in this process, the message unsettled: the event frees its handler slot, waits out
   * the backoff here and runs again as the next attempt. Two cases need it. Under
   * `ordering: 'key'` a retry through the broker would let the key's later events (already here,
   * or fetched meanwhile) overtake the failed one, so the event keeps its key. And a transport
   * without `nativeDelay` cannot hold a delayed retry itself: this is core's fallback for it. If
   * the process stops meanwhile, the message is unsettled and comes back from the broker (at the
   * broker's attempt count).
   */
  #retryHere(inFlight: InFlightEvent, delayMs: number): void {
    this.#running.delete(inFlight);
    this.#stats.running = this.#running.size;
    const timer = setTimeout(() => {
      this.#retrying.delete(inFlight);
      inFlight.nextAttempt();
      this.#ready.unshift(inFlight);
      this.#pump();
    }, delayMs);
    this.#retrying.set(inFlight, timer);
    this.#pump();
  }

  #deadLetter(
    message: IncomingMessage,
    inFlight: InFlightEvent | undefined,
    reason: DeadLetterReason,
    error: unknown,
  ): Promise<void> {
    const envelope = inFlight?.envelope;
    const now = new Date().toISOString();
    const firstFailedAt =
      inFlight?.firstFailedAt ??
      (envelope && this.#firstFailure.get(envelope.id)) ??
      message.headers[FIRST_FAILURE_HEADER] ??
      now;
    if (envelope) this.#firstFailure.delete(envelope.id);
    const attempt = inFlight?.attempt ?? message.attempt;
    for (const m of this.#deps.middleware)
      m.onDeadLetter?.(envelope, { ...this.#info(attempt), reason, error });
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
      attempts: attempt,
      firstFailedAt,
      lastFailedAt: now,
    });
    if (inFlight) this.#release(inFlight);
    return deadLettered;
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

function outcomeOf(decision: FailureDecision, error: unknown): ProcessOutcome {
  switch (decision.action) {
    case 'retry':
      return { status: 'retry', delayMs: decision.delayMs, error };
    case 'dead_letter':
      return { status: 'dead_letter', reason: decision.reason, error };
    case 'release':
      return { status: 'released', error };
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
