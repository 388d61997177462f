/**
 * The `ctx` a handler receives with each event.
 *
 * A class rather than an object literal: V8 builds a literal that has getters through its slow
 * path (each accessor defined at run time), which showed in consume profiles since a context is
 * made per event. Here `signal`, `logger` and `publish` are getters on the prototype, each built
 * on first use (most handlers use none of them); destructuring them still works.
 */
import type { EventDefinition } from './define-event.ts';
import type { Envelope } from './envelope.ts';
import type { ChildPublishOptions, HandlerContext, PublishFn } from './handler-types.ts';
import type { InFlightEvent } from './in-flight-event.ts';
import { type Logger, withFields } from './logger.ts';

/** Publishes a child event of `parent`, inheriting its correlation and trace. */
export type PublishChild = (
  parent: Envelope,
  definition: EventDefinition<any>,
  data: unknown,
  options?: ChildPublishOptions,
) => Promise<Envelope>;

/** What every context of one consumer shares. */
export interface ContextScope {
  logger: Logger;
  publishChild: PublishChild;
}

/** The fields a handler's log entries carry: event id, type, group and correlation id. */
export function eventLogFields(envelope: Envelope, group: string): Record<string, unknown> {
  return {
    eventId: envelope.id,
    type: envelope.type,
    group,
    correlationId: envelope.correlationId,
  };
}

export class EventContext implements HandlerContext {
  readonly attempt: number;
  readonly topic: string;
  readonly group: string;
  /** Only present when an inbox joins the handler's transaction (`declare`: no own property otherwise). */
  declare tx?: unknown;
  readonly #inFlight: InFlightEvent;
  readonly #scope: ContextScope;
  #logger: Logger | undefined;
  #publish: PublishFn | undefined;

  constructor(inFlight: InFlightEvent, topic: string, group: string, scope: ContextScope, tx: unknown) {
    this.attempt = inFlight.attempt;
    this.topic = topic;
    this.group = group;
    this.#inFlight = inFlight;
    this.#scope = scope;
    if (tx !== undefined) this.tx = tx;
  }

  get signal(): AbortSignal {
    return this.#inFlight.signal;
  }

  get logger(): Logger {
    this.#logger ??= withFields(this.#scope.logger, eventLogFields(this.#inFlight.envelope, this.group));
    return this.#logger;
  }

  get publish(): PublishFn {
    this.#publish ??= (definition, data, options) =>
      this.#scope.publishChild(this.#inFlight.envelope, definition, data, options) as Promise<Envelope<any>>;
    return this.#publish;
  }
}
