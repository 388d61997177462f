/**
 * The messaging metrics: the instruments, created on the first use rather than with the
 * middleware, because the metrics API has no proxy meter: a meter taken before the application
 * registered its SDK would stay a no-op forever.
 *
 * The two message counters are in-process tallies reported by observable counters (see
 * tally.ts); the duration, retries and dead letters go through the SDK's own instruments.
 */
import type { Bus, ProcessOutcome } from '@eventwire/core';
import {
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type MeterProvider,
  metrics,
  type ObservableGauge,
} from '@opentelemetry/api';
import { errorTypeOf } from './errors.ts';
import { LagGauges, type OutboxLagReader } from './lag-gauges.ts';
import { ATTR, DURATION_BUCKETS, INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION, METRIC } from './names.ts';
import { isRecordingHistogram } from './sdk-presence.ts';
import { type Series, Tally } from './tally.ts';

interface Instruments {
  duration: Histogram;
  /** False for the API's no-op meter (no SDK registered): nothing is recorded nor observed. */
  recording: boolean;
  retries: Counter;
  deadLetters: Counter;
  consumerLag: ObservableGauge;
  outboxLag: ObservableGauge;
}

export class Metrics {
  readonly #meterProvider: MeterProvider | undefined;
  #instruments: Instruments | undefined;
  readonly #sent = new Tally();
  readonly #consumed = new Tally();
  readonly #lagGauges: LagGauges;

  /** `meterProvider`: default the global one, looked up on first use. */
  constructor(meterProvider: MeterProvider | undefined, extra: Attributes) {
    this.#meterProvider = meterProvider;
    this.#lagGauges = new LagGauges(extra);
  }

  #meter(): Instruments {
    this.#instruments ??= this.#create();
    return this.#instruments;
  }

  /** True when a meter records (not the API's no-op one): otherwise counting and timing are wasted. */
  recording(): boolean {
    return this.#meter().recording;
  }

  /**
   * The running count of `messaging.client.sent.messages` for one attribute set (frozen, kept
   * by the caller). Creating the instruments here makes sure the observable counter that
   * reports the count exists once anything can be counted, even when no hook asked
   * `recording()` (a recording tracer lets the hooks skip that question).
   */
  sentSeries(attributes: Attributes): Series {
    this.#meter();
    return this.#sent.series(attributes);
  }

  /** The running count of `messaging.client.consumed.messages` (see `sentSeries`). */
  consumedSeries(attributes: Attributes): Series {
    this.#meter();
    return this.#consumed.series(attributes);
  }

  /** Counts messages of a publish call the broker refused, by `error.type`. */
  countSendFailure(attributes: Attributes, messages: number, errorType: string): void {
    this.#sent.addFailed(attributes, messages, errorType);
  }

  /**
   * Records `messaging.process.duration` since `started` (a `performance.now()`), with the
   * process span's context when there is one: exemplars then point at that span, and the SDK
   * skips looking up the active context (which, after the handler, is the transport's).
   */
  recordDuration(
    consumerAttributes: Attributes,
    outcome: ProcessOutcome,
    started: number,
    spanContext: Context | undefined,
  ): void {
    const attributes =
      outcome.status === 'acked'
        ? consumerAttributes
        : { ...consumerAttributes, [ATTR.errorType]: errorTypeOf(outcome.error) };
    this.#meter().duration.record((performance.now() - started) / 1000, attributes, spanContext);
  }

  // The lag sources create the instruments first: that registers the gauges' callbacks with the
  // meter provider, which then calls them at each collection.

  observeBus(bus: Pick<Bus, 'health'>): () => void {
    this.#meter();
    return this.#lagGauges.observeBus(bus);
  }

  observeOutboxLag(read: OutboxLagReader, attributes: Attributes): () => void {
    this.#meter();
    return this.#lagGauges.observeOutboxLag(read, attributes);
  }

  recordOutboxLag(lagSeconds: number, attributes: Attributes): void {
    if (!Number.isFinite(lagSeconds)) return;
    this.#meter();
    this.#lagGauges.recordOutboxLag(lagSeconds, attributes);
  }

  countRetry(consumerAttributes: Attributes): void {
    this.#meter().retries.add(1, consumerAttributes);
  }

  countDeadLetter(consumerAttributes: Attributes, reason: string, errorType: string): void {
    this.#meter().deadLetters.add(1, {
      ...consumerAttributes,
      [ATTR.deadLetterReason]: reason,
      [ATTR.errorType]: errorType,
    });
  }

  #create(): Instruments {
    const m = (this.#meterProvider ?? metrics.getMeterProvider()).getMeter(
      INSTRUMENTATION_NAME,
      INSTRUMENTATION_VERSION,
    );
    m.createObservableCounter(METRIC.sent, {
      unit: '{message}',
      description: 'Messages the producer sent to the broker (accepted or not).',
    }).addCallback((result) => this.#sent.report(result));
    m.createObservableCounter(METRIC.consumed, {
      unit: '{message}',
      description: 'Messages delivered to a handler.',
    }).addCallback((result) => this.#consumed.report(result));
    const duration = m.createHistogram(METRIC.processDuration, {
      unit: 's',
      description: 'Duration of handling one message (validation done; handler and inbox inside).',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    const instruments: Instruments = {
      duration,
      recording: isRecordingHistogram(duration),
      retries: m.createCounter(METRIC.retries, {
        unit: '{message}',
        description: 'Failed attempts scheduled for redelivery.',
      }),
      deadLetters: m.createCounter(METRIC.deadLetters, {
        unit: '{message}',
        description: 'Messages moved to the dead letters.',
      }),
      consumerLag: m.createObservableGauge(METRIC.consumerLag, {
        unit: '{message}',
        description: 'Messages published and not yet handled by the group, where the broker can tell.',
      }),
      outboxLag: m.createObservableGauge(METRIC.outboxLag, {
        unit: 's',
        description: 'Age of the oldest outbox row not yet published by the relay.',
      }),
    };
    instruments.consumerLag.addCallback((result) => this.#lagGauges.reportConsumerLag(result));
    instruments.outboxLag.addCallback((result) => this.#lagGauges.reportOutboxLag(result));
    return instruments;
  }
}
