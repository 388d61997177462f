/**
 * Span names, span attribute sets, metric attribute sets and counter series, built once per
 * destination (system, topic) and per consumer route (system, topic, group) and reused for
 * every event: a bus sends to, and consumes from, the same few places over and over, so the
 * hooks look them up instead of building them per event.
 */
import type { ProcessInfo } from '@eventwire/core';
import { type Attributes, SpanKind, type SpanOptions } from '@opentelemetry/api';
import type { Metrics } from './metrics.ts';
import { ATTR } from './names.ts';
import type { Settings } from './options.ts';
import type { Series } from './tally.ts';

/** Everything the publish hook needs about one (system, topic). */
export interface Destination {
  system: string;
  topic: string;
  sendName: string;
  /**
   * Options of the `send` span of one event whose type is the topic's name (the usual case),
   * reused for every such span: only the attributes a sampler may look at (the conventions'
   * "sampling-relevant" ones, plus the extra attributes). The per-message ones are set on the
   * span afterwards, and only when it records.
   */
  sendOptions: SpanOptions;
  /** The attributes of `sendOptions`, to copy when a span needs one more. */
  sendAttributes: Attributes;
  /** `messaging.client.sent.messages` attributes (frozen, reused for every event). */
  sendMetric: Attributes;
  /** Its running count (undefined without metrics). */
  sent: Series | undefined;
}

/** Everything the process hook needs about one (system, topic, group). */
export interface ConsumerRoute {
  /** The transport's name (as in `ProcessInfo`) and its `messaging.system`. */
  system: string;
  messagingSystem: string;
  topic: string;
  group: string;
  processName: string;
  /** Sampling-relevant attributes of the process span, reused for every span (see `sendOptions`). */
  processAttributes: Attributes;
  /** Attributes of the consumer metrics (frozen, reused for every event). */
  metric: Attributes;
  /** `messaging.client.consumed.messages` running count (undefined without metrics). */
  consumed: Series | undefined;
}

export class Routes {
  readonly #extra: Attributes;
  readonly #systemOf: (transportName: string) => string;
  readonly #metrics: Metrics | undefined;
  // Nested maps rather than a joined string key (no string built per event), and the last one
  // used at hand in front of them.
  readonly #destinations = new Map<string, Map<string, Destination>>();
  #lastDestination: Destination | undefined;
  readonly #routes = new Map<Destination, Map<string, ConsumerRoute>>();
  #lastRoute: ConsumerRoute | undefined;

  /** `metrics`: undefined when metrics are off (the routes then count nothing). */
  constructor(settings: Settings, metrics: Metrics | undefined) {
    this.#extra = settings.extra;
    this.#systemOf = settings.systemOf;
    this.#metrics = metrics;
  }

  destination(system: string, topic: string): Destination {
    const last = this.#lastDestination;
    if (last && last.topic === topic && last.system === system) return last;
    let bySystem = this.#destinations.get(system);
    if (!bySystem) {
      bySystem = new Map();
      this.#destinations.set(system, bySystem);
    }
    let d = bySystem.get(topic);
    if (!d) {
      d = this.#newDestination(system, topic);
      bySystem.set(topic, d);
    }
    this.#lastDestination = d;
    return d;
  }

  consumer(info: ProcessInfo): ConsumerRoute {
    const last = this.#lastRoute;
    if (last && last.group === info.group && last.topic === info.topic && last.system === info.system) {
      return last;
    }
    const d = this.destination(info.system, info.topic);
    let byGroup = this.#routes.get(d);
    if (!byGroup) {
      byGroup = new Map();
      this.#routes.set(d, byGroup);
    }
    let route = byGroup.get(info.group);
    if (!route) {
      route = this.#newRoute(d, info);
      byGroup.set(info.group, route);
    }
    this.#lastRoute = route;
    return route;
  }

  #newDestination(system: string, topic: string): Destination {
    const extra = this.#extra;
    const messagingSystem = this.#systemOf(system);
    // Extra attributes come first on metrics and last on spans: they win on spans, and the
    // middleware's own win on metrics, as they always did.
    const sendMetric = Object.freeze({
      ...extra,
      [ATTR.system]: messagingSystem,
      [ATTR.destination]: topic,
      [ATTR.operationName]: 'send',
    });
    const sendAttributes: Attributes = {
      [ATTR.system]: messagingSystem,
      [ATTR.destination]: topic,
      [ATTR.operationType]: 'send',
      [ATTR.operationName]: 'send',
      ...extra,
    };
    return {
      system: messagingSystem,
      topic,
      sendName: `send ${topic}`,
      sendOptions: { kind: SpanKind.PRODUCER, attributes: sendAttributes },
      sendAttributes,
      sendMetric,
      sent: this.#metrics?.sentSeries(sendMetric),
    };
  }

  #newRoute(d: Destination, info: ProcessInfo): ConsumerRoute {
    const extra = this.#extra;
    const metric = Object.freeze({
      ...extra,
      [ATTR.system]: d.system,
      [ATTR.destination]: info.topic,
      [ATTR.group]: info.group,
      [ATTR.operationName]: 'process',
    });
    return {
      system: info.system,
      messagingSystem: d.system,
      topic: info.topic,
      group: info.group,
      processName: `process ${info.topic}`,
      processAttributes: {
        [ATTR.system]: d.system,
        [ATTR.destination]: info.topic,
        [ATTR.group]: info.group,
        [ATTR.operationType]: 'process',
        [ATTR.operationName]: 'process',
        ...extra,
      },
      metric,
      consumed: this.#metrics?.consumedSeries(metric),
    };
  }
}
