import { ConfigError } from '@eventwire/core';
import { describe, expect, test } from 'vitest';
import { optionsFromUrl, transportFromUrl } from '../src/index.ts';

describe('redis URLs', () => {
  test('eventwire parameters are taken out, the rest goes to ioredis', () => {
    const options = optionsFromUrl(
      'redis://user:secret@example.com:6380/2?prefix=app:&maxMessageBytes=4096&maxLen=1000&family=6',
    );
    expect(options).toMatchObject({ prefix: 'app:', maxMessageBytes: 4096, trim: { maxLen: 1000 } });
    expect(options.url).toBe('redis://user:secret@example.com:6380/2?family=6');
    expect(optionsFromUrl('redis://h?retainMs=86400000').trim).toEqual({ retainMs: 86_400_000 });
    expect(optionsFromUrl('redis://h?retainMs=60000&maxLen=10')).toMatchObject({
      trim: { retainMs: 60_000, maxLen: 10 },
      url: 'redis://h',
    });
  });

  test('trim=off disables trimming; bad values are ConfigErrors without credentials', () => {
    expect(optionsFromUrl('rediss://h?trim=off').trim).toBe(false);
    expect(() => optionsFromUrl('redis://h?trim=sometimes')).toThrow(ConfigError);
    expect(() => optionsFromUrl('redis://h?maxLen=-1')).toThrow(ConfigError);
    expect(() => optionsFromUrl('amqp://u:p@h')).toThrow(ConfigError);
    try {
      optionsFromUrl('redis://user:hunter2@h?maxMessageBytes=x');
    } catch (error) {
      expect(String(error)).not.toContain('hunter2');
    }
  });

  test('transportFromUrl builds a transport without connecting', async () => {
    const transport = transportFromUrl('redis://127.0.0.1:1?maxMessageBytes=2048');
    expect(transport.name).toBe('redis');
    expect(transport.capabilities).toMatchObject({
      maxMessageBytes: 2048,
      wireMode: 'binary',
      ordering: 'none',
      replay: true,
    });
    await transport.close();
  });
});
