/**
 * Naming: eventwire topic and group names are free-form strings (`order.placed`), AWS names are
 * not. SNS topic names allow `[A-Za-z0-9_-]` up to 256 characters, SQS queue names the same up to
 * 80, and FIFO resources must end in `.fifo`. These functions map one onto the other so that the
 * mapping is stable (the same inputs always give the same names, in every process) and
 * collision-free (a name that had to be changed or shortened carries a hash of the original).
 */
import { createHash } from 'node:crypto';

const FIFO_SUFFIX = '.fifo';
const DLQ_SUFFIX = '-dlq';
const MAX_TOPIC = 256;
const MAX_QUEUE = 80;

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/** `[A-Za-z0-9_-]` only; anything else becomes `_`, and a hash of the original keeps it unique. */
function sanitize(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9_-]/g, '_');
  return clean === name ? name : `${clean}-${hash(name)}`;
}

/** Shortens `name` to `max` characters, keeping it unique with a hash of the full name. */
function fit(name: string, max: number): string {
  if (name.length <= max) return name;
  const h = hash(name);
  return `${name.slice(0, max - h.length - 1)}-${h}`;
}

/** The SNS topic name for an eventwire topic. */
export function topicName(prefix: string, topic: string, fifo: boolean): string {
  const base = fit(sanitize(`${prefix}${topic}`), MAX_TOPIC - (fifo ? FIFO_SUFFIX.length : 0));
  return fifo ? `${base}${FIFO_SUFFIX}` : base;
}

export interface QueueNames {
  /** The group's queue, subscribed to the topic. */
  queue: string;
  /** Its dead-letter queue (eventwire dead letters and the redrive policy's target). */
  dlq: string;
}

/** The SQS queue names for a (topic, group). */
export function queueNames(prefix: string, topic: string, group: string, fifo: boolean): QueueNames {
  const budget = MAX_QUEUE - DLQ_SUFFIX.length - (fifo ? FIFO_SUFFIX.length : 0);
  const base = fit(`${sanitize(`${prefix}${topic}`)}--${sanitize(group)}`, budget);
  const suffix = fifo ? FIFO_SUFFIX : '';
  return { queue: `${base}${suffix}`, dlq: `${base}${DLQ_SUFFIX}${suffix}` };
}

/**
 * A FIFO MessageGroupId: up to 128 characters of `[A-Za-z0-9!-~]` (printable ASCII). Keys outside
 * that are replaced by a hash, which keeps "same key, same group" without leaking odd bytes.
 */
export function messageGroupId(key: string): string {
  return /^[!-~]{1,128}$/.test(key) ? key : `h-${createHash('sha256').update(key).digest('hex')}`;
}
