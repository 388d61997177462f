/**
 * Delayed publish without a plugin: chains of TTL queues, one queue per decimal digit value and
 * place, shared by every topic of the prefix.
 *
 * The delay is counted in units of 10 ms, rounded up, and written in decimal into the routing
 * key, one word per digit from the highest place down, then a word naming the topic:
 * `2.0.0.<topic>` is 200 units, 2 s. Place `j` has a topic exchange `<prefix>/delay/level<j>`
 * and, for each digit value `d` in use, a queue `<prefix>/delay/<d x 10^j x 10>ms` whose
 * messages all wait exactly that long (a queue TTL: every message of a queue has the same TTL,
 * so the one at the head is always the first due and none waits behind a later one) and are then
 * dead-lettered to the exchange of place `j - 1`. The exchange of place `j` sends a message into
 * the queue of its digit there, or straight on to place `j - 1` for a 0; after place 0 comes
 * `<prefix>/delay/out`, which routes on the topic word to the topic's exchange. There the event
 * is routed like one published at that moment: every group queue bound then gets it (and the
 * replay stream, with `replay`); groups created after the publish but before the event falls due
 * get it too, deleted ones not. Each non-zero digit is one hop: a round delay such as 2 s or
 * 5 min is one, an arbitrary one of a day at most 8. Queues are declared when first needed (at
 * most 9 per place, 11 places).
 *
 * Never early: the message enters the first queue after the delay was computed, and waits there
 * and in each later queue at least its TTL, so it reaches the topic at `deliverAt` or after. Late
 * by the rounding (under 10 ms), what each hop costs (a quorum queue's expiry and at-least-once
 * dead-lettering: a few ms for one event, more when many fall due at once) and the time the
 * consumer needs to take it. Longest delay: 10^11 units, about 31 years, more than core's limit.
 *
 * Durable: the queues are of the group queues' type (quorum by default: dead-lettering
 * at-least-once, so a message leaves a queue only once the next one holds it) and the messages
 * persistent, so a pending delayed event survives consumer and broker restarts; RabbitMQ counts
 * TTL from when a message entered the queue, so what fell due while the broker was down moves on
 * when it is back. `out` also feeds a sink queue that keeps nothing (`x-max-length: 0`): without
 * it an event for a topic no queue is bound to would be unroutable, and a quorum queue's
 * at-least-once dead-lettering retries unroutable messages, blocking the queue's other messages
 * behind them (measured: 100 of them stopped every later one). With it such an event is dropped
 * when it falls due, as one published to that topic then would be.
 */
import { createHash } from 'node:crypto';
import type { Channel } from 'amqplib';
import type { ResolvedOptions } from './options.ts';
import { exchangeName } from './topology.ts';

/** The unit delays are counted in (rounded up), in ms. */
export const DELAY_UNIT_MS = 10;
/** Decimal places 0..10: up to 10^11 - 1 units. */
export const DELAY_PLACES = 11;
/** The longest delay the chains can hold, in ms (about 31.7 years). */
export const MAX_DELAY_MS = (10 ** DELAY_PLACES - 1) * DELAY_UNIT_MS;

/** Where a delayed message is sent, and what must be declared for its way. */
export interface DelayRoute {
  /** The exchange of its highest place. */
  exchange: string;
  routingKey: string;
  /** Its digits, highest place first (`digits[0]` is never 0). */
  digits: number[];
}

/** The exchange of place `j`. */
export function delayLevelName(options: ResolvedOptions, j: number): string {
  return `${options.prefix}/delay/level${j}`;
}

/** The queue where a message waits `digit x 10^j` units. */
export function delayQueueName(options: ResolvedOptions, j: number, digit: number): string {
  return `${options.prefix}/delay/${digit * 10 ** j * DELAY_UNIT_MS}ms`;
}

/** After place 0: routes on the topic word to the topic's exchange. */
export function delayOutName(options: ResolvedOptions): string {
  return `${options.prefix}/delay/out`;
}

function sinkName(options: ResolvedOptions): string {
  return `${options.prefix}/delay/sink`;
}

/** The topic's routing-key word: a hash (base64url: no `.`, `*` or `#`), a topic may be anything. */
export function topicWord(topic: string): string {
  return createHash('sha256').update(topic).digest('base64url').slice(0, 22);
}

/** The route of an event of `topic` that must wait `delayMs` (more than 0). */
export function delayRoute(options: ResolvedOptions, topic: string, delayMs: number): DelayRoute {
  const units = Math.min(10 ** DELAY_PLACES - 1, Math.max(1, Math.ceil(delayMs / DELAY_UNIT_MS)));
  const digits = [...String(units)].map(Number);
  return {
    exchange: delayLevelName(options, digits.length - 1),
    routingKey: `${digits.join('.')}.${topicWord(topic)}`,
    digits,
  };
}

/** `#.<digit>` then `j + 1` words (the lower places and the topic): place `j` of the key is `digit`. */
function digitPattern(j: number, digit: number): string {
  return `#.${digit}${'.*'.repeat(j + 1)}`;
}

/** Where place `j` hands a message on: place `j - 1`, or `out` after place 0. */
function below(options: ResolvedOptions, j: number): string {
  return j === 0 ? delayOutName(options) : delayLevelName(options, j - 1);
}

/** `out` and its sink: declared before place 0. */
export async function declareDelayOut(channel: Channel, options: ResolvedOptions): Promise<void> {
  const out = delayOutName(options);
  await channel.assertExchange(out, 'topic', { durable: true });
  const sink = sinkName(options);
  await channel.assertQueue(sink, {
    durable: true,
    arguments: { 'x-queue-type': 'classic', 'x-max-length': 0 },
  });
  await channel.bindQueue(sink, out, '#');
}

/** The exchange of place `j` (the one below it must exist), passing a 0 digit on. */
export async function declareDelayLevel(
  channel: Channel,
  options: ResolvedOptions,
  j: number,
): Promise<void> {
  const name = delayLevelName(options, j);
  await channel.assertExchange(name, 'topic', { durable: true });
  await channel.bindExchange(below(options, j), name, digitPattern(j, 0));
}

/** The queue of `digit` at place `j` (its place and the one below must exist), and its binding. */
export async function declareDelayQueue(
  channel: Channel,
  options: ResolvedOptions,
  j: number,
  digit: number,
): Promise<void> {
  const name = delayQueueName(options, j, digit);
  const args: Record<string, unknown> = {
    'x-queue-type': options.queueType,
    'x-message-ttl': digit * 10 ** j * DELAY_UNIT_MS,
    'x-dead-letter-exchange': below(options, j),
  };
  if (options.queueType === 'quorum') {
    args['x-dead-letter-strategy'] = 'at-least-once';
    args['x-overflow'] = 'reject-publish';
  }
  await channel.assertQueue(name, { durable: true, arguments: args });
  await channel.bindQueue(name, delayLevelName(options, j), digitPattern(j, digit));
}

/** `out` to the topic's exchange (which must exist). */
export async function declareDelayTopic(
  channel: Channel,
  options: ResolvedOptions,
  topic: string,
): Promise<void> {
  await channel.bindExchange(exchangeName(options, topic), delayOutName(options), `#.${topicWord(topic)}`);
}
