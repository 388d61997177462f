/**
 * Key layout. Every key of a topic shares the Redis Cluster hash tag `{topic}`, so that the Lua
 * scripts touching a topic's stream, its delayed publishes, a group's delay set and its dead
 * letters run on one slot.
 *
 * - `ew:{orders}`               the topic's stream (one entry per event)
 * - `ew:{orders}:scheduled`     sorted set of delayed publishes not due yet, scored by due time
 * - `ew:{orders}:delay:email`   sorted set of retries waiting for their delay, group `email`
 * - `ew:{orders}:dlq:email`     dead letters of group `email`
 * - `ew:ratelimit:<key>`        sliding log of a group-wide rate limit (`rateLimitStore`)
 */
export interface Keys {
  stream(topic: string): string;
  /** Delayed publishes of `topic` waiting for their time (any group: they enter the stream when due). */
  scheduled(topic: string): string;
  delayed(topic: string, group: string): string;
  deadLetters(topic: string, group: string): string;
  /** The sliding log of one rate limit (core's key: `topic/group/type`). */
  rateLimit(key: string): string;
}

export const DEFAULT_PREFIX = 'ew:';

export function keys(prefix: string = DEFAULT_PREFIX): Keys {
  return {
    stream: (topic) => `${prefix}{${topic}}`,
    scheduled: (topic) => `${prefix}{${topic}}:scheduled`,
    delayed: (topic, group) => `${prefix}{${topic}}:delay:${group}`,
    deadLetters: (topic, group) => `${prefix}{${topic}}:dlq:${group}`,
    rateLimit: (key) => `${prefix}ratelimit:${key}`,
  };
}
