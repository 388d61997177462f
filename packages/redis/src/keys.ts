/**
 * Key layout. Every key of a topic shares the Redis Cluster hash tag `{topic}`, so that the Lua
 * scripts touching a topic's stream, a group's delay set and its dead letters run on one slot.
 *
 * - `ew:{orders}`               the topic's stream (one entry per event)
 * - `ew:{orders}:delay:email`   sorted set of retries waiting for their delay, group `email`
 * - `ew:{orders}:dlq:email`     dead letters of group `email`
 */
export interface Keys {
  stream(topic: string): string;
  delayed(topic: string, group: string): string;
  deadLetters(topic: string, group: string): string;
}

export const DEFAULT_PREFIX = 'ew:';

export function keys(prefix: string = DEFAULT_PREFIX): Keys {
  return {
    stream: (topic) => `${prefix}{${topic}}`,
    delayed: (topic, group) => `${prefix}{${topic}}:delay:${group}`,
    deadLetters: (topic, group) => `${prefix}{${topic}}:dlq:${group}`,
  };
}
