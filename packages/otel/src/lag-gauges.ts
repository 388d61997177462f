/**
 * What the two lag gauges report: `eventwire.consumer.lag` from the buses being observed, and
 * `eventwire.outbox.lag` from readers called at each collection or values pushed in between.
 * Nothing here runs per event; it all runs when the SDK collects.
 */
import type { Bus } from '@eventwire/core';
import type { Attributes, ObservableResult } from '@opentelemetry/api';
import { ATTR } from './names.ts';

/** Returns the age (seconds) of the oldest unpublished outbox row, or `undefined`. */
export type OutboxLagReader = () => number | undefined | Promise<number | undefined>;

export class LagGauges {
  readonly #extra: Attributes;
  readonly #buses = new Set<Pick<Bus, 'health'>>();
  readonly #outboxReaders = new Set<{ read: OutboxLagReader; attributes: Attributes }>();
  /** Last value pushed per attribute set, reported by the same gauge as the readers'. */
  readonly #pushedOutboxLag = new Map<string, { value: number; attributes: Attributes }>();

  constructor(extra: Attributes) {
    this.#extra = extra;
  }

  observeBus(bus: Pick<Bus, 'health'>): () => void {
    this.#buses.add(bus);
    return () => {
      this.#buses.delete(bus);
    };
  }

  observeOutboxLag(read: OutboxLagReader, attributes: Attributes): () => void {
    const entry = { read, attributes };
    this.#outboxReaders.add(entry);
    return () => {
      this.#outboxReaders.delete(entry);
    };
  }

  recordOutboxLag(lagSeconds: number, attributes: Attributes): void {
    this.#pushedOutboxLag.set(JSON.stringify(Object.entries(attributes).sort()), {
      value: lagSeconds,
      attributes,
    });
  }

  async reportConsumerLag(result: ObservableResult): Promise<void> {
    await Promise.all(
      [...this.#buses].map(async (bus) => {
        // A bus that cannot tell its health now reports nothing, rather than failing the collection.
        const health = await bus.health().catch(() => undefined);
        for (const c of health?.consumers ?? []) {
          if (c.lag === undefined) continue;
          result.observe(c.lag, { ...this.#extra, [ATTR.destination]: c.topic, [ATTR.group]: c.group });
        }
      }),
    );
  }

  async reportOutboxLag(result: ObservableResult): Promise<void> {
    await Promise.all(
      [...this.#outboxReaders].map(async ({ read, attributes }) => {
        // `then(read)` so that a reader that throws synchronously is caught like one that rejects.
        const lag = await Promise.resolve()
          .then(read)
          .catch(() => undefined);
        if (typeof lag === 'number' && Number.isFinite(lag))
          result.observe(lag, { ...this.#extra, ...attributes });
      }),
    );
    for (const { value, attributes } of this.#pushedOutboxLag.values())
      result.observe(value, { ...this.#extra, ...attributes });
  }
}
