/**
 * Topology names. JetStream stream and consumer names may not contain `.`, `*`, `>`, path
 * separators or whitespace, and subjects use `.` as the token separator with `*`/`>` as
 * wildcards. Topic and group names are free-form strings, so they are escaped here with an
 * injective encoding: two different topics never share a stream or a subject.
 */
import { createHash } from 'node:crypto';

/** Longest stream/consumer name we produce; longer names end in a hash. */
const MAX_NAME = 200;
/** Longest escaped event id kept as is in a schedule subject; longer ones are hashed. */
const MAX_ID_TOKEN = 64;

/**
 * Keeps `[A-Za-z0-9-]` and writes every other UTF-8 byte as `_xx` (lower-case hex). Because
 * `_` itself is always escaped, the output never contains `__` and decodes uniquely.
 */
export function escapeName(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9-]/.test(ch) ? ch : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Bounds a name's length: a long name keeps a readable head and gets a hash of the whole. */
function bounded(name: string): string {
  if (name.length <= MAX_NAME) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 20);
  return `${name.slice(0, MAX_NAME - 22)}-h${hash}`;
}

/**
 * Subject tokens for a topic: a dotted topic (`order.placed`) keeps its dots so that NATS tools
 * show familiar subjects (`ew.t.order.placed`); each token is escaped. A topic with an empty
 * token (`a..b`, `.a`) is escaped as a whole (one token, no dot), which keeps the mapping
 * injective since escaped tokens never contain `.`.
 */
export function topicTokens(topic: string): string {
  const parts = topic.split('.');
  if (parts.every((p) => p.length > 0)) return parts.map(escapeName).join('.');
  return escapeName(topic);
}

/** How topics map onto streams. */
export type StreamLayout =
  /** One stream per topic (default): independent limits, retention and purges per topic. */
  | { kind: 'per-topic' }
  /** One stream holding every topic, one subject per topic. */
  | { kind: 'single'; stream: string };

/** All the names of one deployment (one `prefix`). */
export class Names {
  readonly prefix: string;
  readonly layout: StreamLayout;
  /** Topic to subject and stream, memoized: escaping walks every byte, and publish needs both per message. */
  readonly #subjects = new Map<string, string>();
  readonly #streams = new Map<string, string>();

  constructor(prefix: string, layout: StreamLayout) {
    if (!/^[A-Za-z0-9-]+$/.test(prefix)) {
      throw new Error(`prefix "${prefix}" may only contain letters, digits and "-"`);
    }
    this.prefix = prefix;
    this.layout = layout;
  }

  /** The stream that stores a topic's events. */
  stream(topic: string): string {
    if (this.layout.kind === 'single') return this.layout.stream;
    return memo(this.#streams, topic, () => bounded(`${this.prefix}_t_${escapeName(topic)}`));
  }

  /** The subjects a stream is created with (events, replayed dead letters, delayed publishes). */
  streamSubjects(topic: string): string[] {
    if (this.layout.kind === 'single')
      return [`${this.prefix}.t.>`, `${this.prefix}.r.>`, `${this.prefix}.s.>`];
    return [this.subject(topic), `${this.prefix}.r.${escapeName(topic)}.*`, this.scheduleFilter(topic)];
  }

  /** The subject events of a topic are published to. */
  subject(topic: string): string {
    return memo(this.#subjects, topic, () => `${this.prefix}.t.${topicTokens(topic)}`);
  }

  /**
   * The subject a dead letter is replayed to: only the failed group's consumer listens to it,
   * so other groups never see the copy (the target-group header is set as well, for tools that
   * read the stream directly).
   */
  replaySubject(topic: string, group: string): string {
    return `${this.prefix}.r.${escapeName(topic)}.${escapeName(group)}`;
  }

  /**
   * The subject a delayed publish of event `id` waits on (a JetStream message schedule; the
   * server publishes it to the topic's subject when it is due). One subject per event, as
   * schedules require: publishing the same event again replaces a schedule not yet due. Group
   * consumers never listen here. A long id is hashed (`_h...`, which escaping never produces).
   */
  scheduleSubject(topic: string, id: string): string {
    const token = escapeName(id);
    const bounded =
      token.length <= MAX_ID_TOKEN
        ? token
        : `_h${createHash('sha256').update(id).digest('hex').slice(0, 40)}`;
    return `${this.prefix}.s.${escapeName(topic)}.${bounded}`;
  }

  /** Every delayed publish of a topic that is not due yet. */
  scheduleFilter(topic: string): string {
    return `${this.prefix}.s.${escapeName(topic)}.*`;
  }

  /**
   * The consumer that holds a topic's pending delayed publishes (never pulled): with `interest`
   * retention a message no consumer is interested in is dropped at once, and its `num_pending` is
   * the count `delayed()` reports. Escaped group names never contain `__`, so no group's consumer
   * can have this name.
   */
  delayedConsumer(topic: string): string {
    if (this.layout.kind === 'single') return bounded(`__delayed__${escapeName(topic)}`);
    return '__delayed';
  }

  /** The durable consumer of a group. Per-topic streams scope it; a shared stream needs the topic in it. */
  consumer(topic: string, group: string): string {
    if (this.layout.kind === 'single') return bounded(`${escapeName(group)}__${escapeName(topic)}`);
    return bounded(escapeName(group));
  }

  /** The dead-letter stream of a (topic, group). */
  deadLetterStream(topic: string, group: string): string {
    return bounded(`${this.prefix}_dlq_${escapeName(topic)}__${escapeName(group)}`);
  }

  /** The single subject of a dead-letter stream. */
  deadLetterSubject(topic: string, group: string): string {
    return `${this.prefix}.dlq.${escapeName(topic)}.${escapeName(group)}`;
  }
}

/** Topics an application uses are few; the bound only guards against unbounded generated names. */
const MEMO_LIMIT = 4096;

function memo(cache: Map<string, string>, key: string, compute: () => string): string {
  let value = cache.get(key);
  if (value === undefined) {
    value = compute();
    if (cache.size >= MEMO_LIMIT) cache.clear();
    cache.set(key, value);
  }
  return value;
}
