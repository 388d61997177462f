/**
 * Batch handlers (`bus.subscribeBatch`, DESIGN.md section 15) on the per-event pipeline.
 *
 * A batch handler is turned into an ordinary per-event handler: each event goes through
 * everything a single event does (decode, validation and upcast, per-key order, inbox, timeout,
 * middleware, the failure policy, its own ack, retry or dead letter), and where the handler would
 * run, the event joins the open batch and waits for it. The batch runs when it holds `maxBatch`
 * events or `maxWaitMs` after its first one; each event's wait then ends with the outcome the
 * handler gave it: done, or failed with the error passed to `ctx.fail(event, error)` (or thrown
 * for the whole batch). So nothing about settling, retries or dead letters exists twice.
 *
 * Order: under `ordering: 'key'` core runs one event per key at a time, so a batch holds at most
 * one event of a key and a key's next event joins a later batch only once the earlier one is
 * settled: per-key order holds within and across batches.
 */
import type { Envelope } from './envelope.ts';
import type { Handler, HandlerContext } from './handler-types.ts';
import type { Logger } from './logger.ts';

/** What a batch handler gets besides the events. */
export interface BatchContext {
  topic: string;
  group: string;
  /** Aborts when any event of the batch times out, or when the bus closes past its drain time. */
  signal: AbortSignal;
  logger: Logger;
  /**
   * Fail one event of the batch: it alone is retried or dead-lettered by its retry policy (a
   * `NonRetryableError` goes straight to the dead letters); the others are acknowledged.
   */
  fail(event: Envelope<unknown>, error: unknown): void;
  /** The per-event context of one event of the batch: its `attempt`, `publish`, inbox `tx`. */
  of(event: Envelope<unknown>): HandlerContext;
}

/** Handles a batch; throwing fails every event of the batch. */
export type BatchHandler<T> = (events: Envelope<T>[], ctx: BatchContext) => Promise<void> | void;

interface Member {
  event: Envelope<unknown>;
  ctx: HandlerContext;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** `maxBatch` and `maxWaitMs` of a batch subscription (checked by the caller). */
export interface BatchShape {
  maxBatch: number;
  maxWaitMs: number;
}

/**
 * The per-event handler that gathers events into batches for `handler`. One per subscription:
 * its open batch is shared by every event of the (topic, group) consumer that reaches it.
 */
export function batchingHandler<T>(handler: BatchHandler<T>, shape: BatchShape): Handler<T> {
  let open: Member[] = [];
  let timer: NodeJS.Timeout | undefined;

  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    const members = open;
    open = [];
    if (members.length > 0) void runBatch(handler, members);
  };

  return (event, ctx) =>
    new Promise<void>((resolve, reject) => {
      open.push({ event, ctx, resolve, reject });
      if (open.length >= shape.maxBatch) flush();
      else if (open.length === 1) timer = setTimeout(flush, shape.maxWaitMs);
    });
}

async function runBatch<T>(handler: BatchHandler<T>, members: Member[]): Promise<void> {
  const failures = new Map<Envelope<unknown>, unknown>();
  const byEvent = new Map(members.map((m) => [m.event, m]));
  const first = members[0]!.ctx;
  let signal: AbortSignal | undefined;
  const ctx: BatchContext = {
    topic: first.topic,
    group: first.group,
    // Built on first use: each event's signal is made lazily too, and most handlers use none.
    get signal() {
      signal ??= AbortSignal.any(members.map((m) => m.ctx.signal));
      return signal;
    },
    get logger() {
      return first.logger;
    },
    fail(event, error) {
      if (!byEvent.has(event)) throw new Error('ctx.fail: this event is not in the batch');
      failures.set(event, error ?? new Error('failed by the batch handler'));
    },
    of(event) {
      const member = byEvent.get(event);
      if (!member) throw new Error('ctx.of: this event is not in the batch');
      return member.ctx;
    },
  };
  try {
    await handler(
      members.map((m) => m.event as Envelope<T>),
      ctx,
    );
  } catch (error) {
    for (const m of members) m.reject(error ?? new Error('batch handler threw without a reason'));
    return;
  }
  for (const m of members) {
    if (failures.has(m.event)) m.reject(failures.get(m.event));
    else m.resolve();
  }
}
