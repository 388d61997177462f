import { v7 as uuidv7 } from 'uuid';
import { pooledRandom } from './random.ts';

/**
 * The one in-memory shape of an event. On the wire it is a CloudEvents 1.0 message
 * (see `cloudevents.ts`); every field below maps to one CloudEvents attribute.
 */
export interface Envelope<T = unknown> {
  /** Time-ordered unique id (UUIDv7). The dedup key of inboxes. */
  id: string;
  /** Lower-case dotted, past tense: `order.placed`. */
  type: string;
  /** Schema version of `data`, integer >= 1 (CloudEvents extension `dataversion`). */
  version: number;
  /** The producing service. */
  source: string;
  /** RFC 3339 time the fact happened. */
  time: string;
  /** The aggregate the fact is about. */
  subject?: string;
  /** Ordering key (extension `partitionkey`). */
  partitionKey?: string;
  /** The first event of the chain (extension `correlationid`). */
  correlationId: string;
  /** The event whose handler published this one (extension `causationid`). */
  causationId?: string;
  /** W3C trace context of the creation span. */
  traceparent?: string;
  tracestate?: string;
  /** Media type of `data`; `application/json` unless a foreign producer said otherwise. */
  dataContentType: string;
  data: T;
  /** CloudEvents extension attributes eventwire does not know, kept so nothing is lost. */
  extensions?: Record<string, string>;
}

/** A new time-ordered event id. */
export function newEventId(): string {
  return uuidv7({ random: pooledRandom(16) });
}
