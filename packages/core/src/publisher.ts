/**
 * The publishing half of the bus: validate, build the envelope, run the publish middleware,
 * encode for the broker's wire mode, check the size, and hand the batch to the transport (or to
 * the outbox inside the caller's transaction). One call, one broker call, all or nothing on
 * validation.
 */
import { encodeBinary, encodeStructured } from './cloudevents.ts';
import type { EventDefinition } from './define-event.ts';
import { requestedDeliverAt } from './deliver-at.ts';
import { type Envelope, newEventId } from './envelope.ts';
import { ConfigError, OversizeError } from './errors.ts';
import { compose, type Middleware, nextNotCalled } from './middleware.ts';
import { childTraceparent } from './trace-context.ts';
import { DELIVER_AT_HEADER, type OutgoingMessage, type Transport } from './transport.ts';

/** Writes encoded events into an outbox table inside the caller's transaction (see @eventwire/postgres). */
export interface Outbox {
  write(tx: unknown, messages: readonly OutgoingMessage[]): Promise<void>;
}

export interface PublishOptions {
  subject?: string;
  /** Partition key; default from the definition's `key`, else `subject`. */
  key?: string;
  /** Publish inside this database transaction (outbox); see {@link BusOptions.outbox}. */
  tx?: unknown;
  /**
   * The flow this fact belongs to (a request id, say); default the event's own id. Handlers'
   * `ctx.publish` sets it (and the causation id and trace context) from the handled event.
   */
  correlationId?: string;
  /** Override the generated id (for idempotent re-publishing of the same fact). */
  id?: string;
  /** When the fact happened; default now. */
  time?: Date | string;
  /**
   * Delayed publish: no group receives the event before this time. A time already past means
   * now. Needs a transport with the `delayedPublish` capability (each adapter's README states
   * its longest delay and its precision); otherwise the publish rejects with a ConfigError.
   * Through the outbox the delay is kept: it counts from the publish call, not from the relay.
   */
  deliverAt?: Date;
  /** Delayed publish, relative: like {@link deliverAt} = now + `delayMs`. Not with `deliverAt`. */
  delayMs?: number;
}

/** What `ctx.publish` adds: the handled event's causation and trace context. Not public. */
export interface ChildEnvelopeFields {
  causationId: string;
  traceparent: string;
  tracestate?: string;
}

export interface PublisherOptions {
  source: string;
  middleware: Middleware[];
  maxBytes: number;
  outbox: Outbox | undefined;
}

export class Publisher {
  readonly #transport: Transport;
  readonly #options: PublisherOptions;
  readonly #hooks: NonNullable<Middleware['publish']>[];

  constructor(transport: Transport, options: PublisherOptions) {
    this.#transport = transport;
    this.#options = options;
    this.#hooks = options.middleware.flatMap((m) => (m.publish ? [m.publish.bind(m)] : []));
  }

  async publish<T>(
    definition: EventDefinition<T>,
    items: readonly { data: T; options?: PublishOptions }[],
    child?: ChildEnvelopeFields,
  ): Promise<Envelope<T>[]> {
    const txs = new Set(items.map((i) => i.options?.tx));
    if (txs.size > 1) throw new ConfigError('publishMany: every item must use the same transaction');
    const tx = items[0]?.options?.tx;
    // Validate everything first: one bad item means nothing is sent.
    const envelopes = items.map(({ data, options = {} }) =>
      this.#envelope(definition, definition.parse(data), options, child),
    );
    const deliverAt = this.#deliverAt(definition.type, items);
    let sent = false;
    await compose(
      this.#hooks,
      [envelopes as Envelope[], { topic: definition.topic, system: this.#transport.name }],
      async () => {
        sent = true;
        const messages = envelopes.map((e, i) =>
          this.#encode(definition.topic, e as Envelope, deliverAt?.[i]),
        );
        if (tx === undefined) return this.#transport.publish(messages);
        // An explicit outbox wins: the caller's transaction may be on another database than the transport's.
        if (this.#options.outbox) return this.#options.outbox.write(tx, messages);
        if (this.#transport.capabilities.transactionalPublish)
          return this.#transport.publish(messages, { tx });
        throw new ConfigError(
          `publish with { tx } needs an outbox: the ${this.#transport.name} transport cannot write inside a database transaction; pass createBus({ outbox: postgresOutbox(...) })`,
        );
      },
    );
    // A publish that resolved must have been sent: a hook that skipped next() is an error.
    if (!sent) throw nextNotCalled();
    return envelopes;
  }

  #envelope<T>(
    definition: EventDefinition<T>,
    data: T,
    options: PublishOptions,
    child: ChildEnvelopeFields | undefined,
  ): Envelope<T> {
    const id = options.id ?? newEventId();
    const time = options.time instanceof Date ? options.time.toISOString() : (options.time ?? isoNow());
    const envelope: Envelope<T> = {
      id,
      type: definition.type,
      version: definition.version,
      source: this.#options.source,
      time,
      correlationId: options.correlationId ?? id,
      dataContentType: 'application/json',
      data,
      traceparent: child?.traceparent ?? childTraceparent(),
    };
    if (options.subject !== undefined) envelope.subject = options.subject;
    const key = options.key ?? definition.key?.(data) ?? options.subject;
    if (key !== undefined) envelope.partitionKey = key;
    if (child) {
      envelope.causationId = child.causationId;
      if (child.tracestate !== undefined) envelope.tracestate = child.tracestate;
    }
    return envelope;
  }

  /**
   * Per item, the delivery time it asks for, or undefined when no item is delayed (the common
   * case costs one pass over the options). Rejects a delay the transport cannot honour.
   */
  #deliverAt(
    type: string,
    items: readonly { options?: PublishOptions }[],
  ): (number | undefined)[] | undefined {
    if (!items.some((i) => i.options?.deliverAt !== undefined || i.options?.delayMs !== undefined))
      return undefined;
    const now = Date.now();
    const times = items.map((i) =>
      i.options ? requestedDeliverAt(`publish(${type})`, i.options, now) : undefined,
    );
    if (times.some((t) => t !== undefined) && !this.#transport.capabilities.delayedPublish)
      throw new ConfigError(
        `publish(${type}): the ${this.#transport.name} transport does not support delayed publish (capability delayedPublish); the event was not sent`,
      );
    return times;
  }

  #encode(topic: string, envelope: Envelope, deliverAt?: number): OutgoingMessage {
    const wire =
      this.#transport.capabilities.wireMode === 'binary'
        ? encodeBinary(envelope)
        : encodeStructured(envelope);
    if (deliverAt !== undefined) wire.headers[DELIVER_AT_HEADER] = String(deliverAt);
    // A UTF-16 code unit is at most 3 UTF-8 bytes: when even that bound fits, the exact size
    // (a byte count per header) cannot exceed the limit and is not computed.
    const maxBytes = this.#options.maxBytes;
    let bound = wire.body.byteLength;
    for (const k in wire.headers) bound += k.length + 3 * wire.headers[k]!.length;
    if (bound > maxBytes) {
      let bytes = wire.body.byteLength;
      for (const k in wire.headers) bytes += k.length + Buffer.byteLength(wire.headers[k]!);
      if (bytes > maxBytes) throw new OversizeError(bytes, maxBytes);
    }
    const message: OutgoingMessage = { headers: wire.headers, body: wire.body, topic, id: envelope.id };
    if (envelope.partitionKey !== undefined) message.key = envelope.partitionKey;
    return message;
  }
}

/**
 * The current time in RFC 3339, made once per millisecond: events published together share it,
 * and formatting a Date for each showed in publish profiles.
 */
let lastMs = -1;
let lastIso = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}
