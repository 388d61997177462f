/**
 * Message counts kept in process and reported by an observable counter at each collection (a
 * monotonic cumulative sum: the same data a synchronous counter exports). Counting an event is
 * `series.value += n` on a series looked up once per destination, instead of the SDK hashing
 * the attribute set on every `add`.
 */
import type { Attributes, ObservableResult } from '@opentelemetry/api';
import { ATTR } from './names.ts';

/** The running count of one attribute set. */
export interface Series {
  value: number;
}

interface Entry extends Series {
  /** Failed messages per `error.type`, each with its own attribute set. */
  byError?: Map<string, Series & { attributes: Attributes }>;
}

export class Tally {
  readonly #series = new Map<Attributes, Entry>();

  /** The series of `attributes` (a frozen object kept by the caller), created at zero. */
  series(attributes: Attributes): Series {
    return this.#entry(attributes);
  }

  /** Counts `n` failed messages of `attributes`, reported with `error.type` (failures are rare). */
  addFailed(attributes: Attributes, n: number, errorType: string): void {
    const entry = this.#entry(attributes);
    entry.byError ??= new Map();
    let failed = entry.byError.get(errorType);
    if (!failed) {
      failed = { value: 0, attributes: Object.freeze({ ...attributes, [ATTR.errorType]: errorType }) };
      entry.byError.set(errorType, failed);
    }
    failed.value += n;
  }

  #entry(attributes: Attributes): Entry {
    let entry = this.#series.get(attributes);
    if (!entry) {
      entry = { value: 0 };
      this.#series.set(attributes, entry);
    }
    return entry;
  }

  report(result: ObservableResult): void {
    for (const [attributes, entry] of this.#series) {
      if (entry.value > 0) result.observe(entry.value, attributes);
      for (const failed of entry.byError?.values() ?? []) result.observe(failed.value, failed.attributes);
    }
  }
}
