/**
 * Numeric options are checked where they are given (issue 15, item 4): a `NaN` from
 * `Number(undefined)`, a 0 or a negative is a ConfigError naming the option, the value and the
 * accepted range, at `redis({ ... })`, in the URL, or at `redisInbox(...)`; never a subscription
 * that silently does nothing. No broker needed.
 */
import { ConfigError } from '@eventwire/core';
import { Redis } from 'ioredis';
import { describe, expect, test } from 'vitest';
import { optionsFromUrl, type RedisTransportOptions, redis, redisInbox } from '../src/index.ts';

const timers = [
  'publishTimeoutMs',
  'connectTimeoutMs',
  'commandTimeoutMs',
  'closeTimeoutMs',
  'blockMs',
  'claimIntervalMs',
  'delayPollMs',
] as const;

describe('redis numeric options', () => {
  test.each([...timers, 'maxMessageBytes'] as const)(
    '%s: NaN, 0, -1 and 1.5 are ConfigErrors naming the option, the value and the range',
    (name) => {
      for (const value of [Number.NaN, 0, -1, 1.5]) {
        const options = { [name]: value } as RedisTransportOptions;
        expect(() => redis(options), `${name}: ${value}`).toThrow(ConfigError);
        expect(() => redis(options)).toThrow(
          new RegExp(`redis\\(\\{ ${name} \\}\\) must be an integer (>= 1|from 1 to \\d+), not ${value}$`),
        );
      }
    },
  );

  test('timers above what a Node timer takes (2^31-1 ms, which would fire at once) are refused', () => {
    for (const name of timers) {
      expect(() => redis({ [name]: 2 ** 31 } as RedisTransportOptions), name).toThrow(/from 1 to 2147483647/);
    }
  });

  test('leaseMs: at least 1 s', () => {
    expect(() => redis({ leaseMs: 999 })).toThrow(/leaseMs \}\) must be an integer from 1000 to/);
    expect(() => redis({ leaseMs: Number.NaN })).toThrow(ConfigError);
    expect(redis({ leaseMs: 1000 })).toBeDefined();
  });

  test('trim: intervalMs, maxLen and retainMs are checked too; valid values pass', () => {
    expect(() => redis({ trim: { intervalMs: 0 } })).toThrow(/trim: \{ intervalMs \}/);
    expect(() => redis({ trim: { maxLen: Number.NaN } })).toThrow(/trim: \{ maxLen \}.*not NaN/);
    expect(() => redis({ trim: { retainMs: -1 } })).toThrow(/trim: \{ retainMs \}/);
    expect(() => redis({ trim: { retainMs: 1.5 } })).toThrow(/trim: \{ retainMs \}/);
    expect(redis({ trim: { retainMs: 0 } })).toBeDefined();
    expect(redis({ trim: { retainMs: 7 * 24 * 3600 * 1000 } })).toBeDefined();
    const transport = redis({
      trim: { intervalMs: 1000, maxLen: 10 },
      publishTimeoutMs: 1,
      blockMs: 2 ** 31 - 1,
      maxMessageBytes: 2 ** 40,
    });
    expect(transport.capabilities.maxMessageBytes).toBe(2 ** 40);
  });

  test('URL parameters: a word, an empty value, 0 or a negative is a ConfigError naming the parameter', () => {
    for (const bad of [
      'maxMessageBytes=abc',
      'maxMessageBytes=',
      'maxMessageBytes=0',
      'maxLen=-5',
      'maxLen=2.5',
      'retainMs=-1',
      'retainMs=soon',
    ]) {
      expect(() => optionsFromUrl(`redis://u:hunter2@h?${bad}`), bad).toThrow(ConfigError);
      expect(() => optionsFromUrl(`redis://u:hunter2@h?${bad}`)).toThrow(
        new RegExp(`redis URL parameter ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
      );
      expect(() => optionsFromUrl(`redis://u:hunter2@h?${bad}`)).not.toThrow(/hunter2/);
    }
    // Checked even when trimming is off (a typo must not pass unnoticed).
    expect(() => optionsFromUrl('redis://h?trim=off&maxLen=x')).toThrow(ConfigError);
  });

  test('redisInbox: ttlSeconds is required and, like lockMs and pollMs, a positive integer', () => {
    const client = new Redis({ lazyConnect: true });
    try {
      expect(() => redisInbox(client, {} as never)).toThrow(ConfigError);
      expect(() => redisInbox(client, { ttlSeconds: Number.NaN })).toThrow(/ttlSeconds.*not NaN/);
      expect(() => redisInbox(client, { ttlSeconds: 0 })).toThrow(ConfigError);
      expect(() => redisInbox(client, { ttlSeconds: 60, lockMs: -1 })).toThrow(/lockMs/);
      expect(() => redisInbox(client, { ttlSeconds: 60, pollMs: 0 })).toThrow(/pollMs/);
      expect(redisInbox(client, { ttlSeconds: 60, lockMs: 1000, pollMs: 10 })).toBeDefined();
    } finally {
      client.disconnect();
    }
  });
});
