import { ConfigError } from '@eventwire/core';
import { describe, expect, test } from 'vitest';
import type { RabbitMqOptions } from '../src/options.ts';
import { delayBucket, groupNames } from '../src/topology.ts';
import { optionsFromUrl, resolveOptions } from '../src/url.ts';
import { fromAmqp, toAmqp } from '../src/wire.ts';

describe('rabbitmq options', () => {
  test('eventwire options ride in the URL and are removed before amqplib sees it', () => {
    const options = optionsFromUrl(
      'amqp://u:p@h:5672/vh?queueType=classic&prefix=app&deliveryLimit=7&singleActiveConsumer=true&delayBuckets=1000,100&frameMax=8192',
    );
    expect(options).toMatchObject({
      queueType: 'classic',
      prefix: 'app',
      deliveryLimit: 7,
      singleActiveConsumer: true,
      delayBuckets: [1000, 100],
    });
    expect(options.url).toBe('amqp://u:p@h:5672/vh?frameMax=8192');
    const resolved = resolveOptions(options);
    expect(resolved.delayBuckets).toEqual([100, 1000]);
    expect(resolved.url).toContain('heartbeat=10');
  });

  test('bad options are ConfigErrors without credentials', () => {
    expect(() => optionsFromUrl('redis://u:secret@h')).toThrow(ConfigError);
    expect(() => optionsFromUrl('redis://u:secret@h')).not.toThrow(/secret/);
    expect(() => resolveOptions({ url: 'amqp://h', queueType: 'stream' as 'quorum' })).toThrow(ConfigError);
    expect(() => resolveOptions({ url: 'amqp://h', deliveryLimit: 0 })).toThrow(ConfigError);
    expect(() => resolveOptions({ url: 'amqp://h', delayBuckets: [] })).toThrow(ConfigError);
    expect(() => resolveOptions({ url: 'amqp://h', replay: { maxAge: 'a week' } })).toThrow(ConfigError);
  });

  test('every numeric option: NaN, 0, negatives and fractions are ConfigErrors naming the option and the range', () => {
    const cases: [Partial<RabbitMqOptions>, RegExp][] = [
      [{ deliveryLimit: Number.NaN }, /deliveryLimit \}\) must be an integer >= 1, not NaN/],
      [{ deliveryLimit: -1 }, /deliveryLimit/],
      [{ maxMessageBytes: 0 }, /maxMessageBytes \}\) must be an integer >= 1, not 0/],
      [
        { delayBuckets: [100, Number.NaN] },
        /delayBuckets \}\) entry must be an integer from 1 to 2147483647, not NaN/,
      ],
      [{ delayBuckets: [0.5] }, /delayBuckets/],
      [{ heartbeatSeconds: -1 }, /heartbeatSeconds \}\) must be an integer from 0 to 65535, not -1/],
      [{ heartbeatSeconds: Number.NaN }, /heartbeatSeconds/],
      [{ reconnect: { initialMs: 0 } }, /reconnect: \{ initialMs \}/],
      [
        { reconnect: { initialMs: 500, maxMs: 100 } },
        /reconnect: \{ maxMs \} \}\) must be an integer from 500/,
      ],
      [{ connectTimeoutMs: 0 }, /connectTimeoutMs/],
      [{ publishTimeoutMs: Number.NaN }, /publishTimeoutMs/],
      [{ closeTimeoutMs: -5 }, /closeTimeoutMs/],
      [{ closeTimeoutMs: 2 ** 31 }, /closeTimeoutMs \}\) must be an integer from 1 to 2147483647/],
    ];
    for (const [options, message] of cases) {
      expect(() => resolveOptions({ url: 'amqp://h', ...options }), JSON.stringify(options)).toThrow(
        ConfigError,
      );
      expect(() => resolveOptions({ url: 'amqp://h', ...options })).toThrow(message);
    }
    // 0 turns heartbeats off; valid values pass.
    expect(resolveOptions({ url: 'amqp://h', heartbeatSeconds: 0 }).url).toContain('heartbeat=0');
    expect(resolveOptions({ url: 'amqp://h', connectTimeoutMs: 500 }).socketOptions.timeout).toBe(500);
    expect(resolveOptions({ url: 'amqp://h', socketOptions: { timeout: 50 } }).socketOptions.timeout).toBe(
      50,
    );
  });

  test('URL parameters: a word, an empty value, 0 or a negative is a ConfigError naming the parameter, never the password', () => {
    for (const bad of [
      'deliveryLimit=abc',
      'deliveryLimit=',
      'maxMessageBytes=0',
      'delayBuckets=100,x',
      'delayBuckets=-1',
    ]) {
      expect(() => optionsFromUrl(`amqp://u:hunter2@h?${bad}`), bad).toThrow(ConfigError);
      expect(() => optionsFromUrl(`amqp://u:hunter2@h?${bad}`)).toThrow(/amqp URL parameter/);
      expect(() => optionsFromUrl(`amqp://u:hunter2@h?${bad}`)).not.toThrow(/hunter2/);
    }
    expect(() => resolveOptions({ url: 'not a url' })).toThrow(ConfigError);
  });

  test('replay is off by default; on with replay=true (7D) or a retention', () => {
    expect(resolveOptions(optionsFromUrl('amqp://h')).replayMaxAge).toBeUndefined();
    expect(resolveOptions(optionsFromUrl('amqp://h?replay=true')).replayMaxAge).toBe('7D');
    expect(resolveOptions(optionsFromUrl('amqp://h?replay=12h')).replayMaxAge).toBe('12h');
    expect(resolveOptions(optionsFromUrl('amqp://h?replay=false')).replayMaxAge).toBeUndefined();
  });

  test('a retry never waits less than asked: delays round up to a bucket', () => {
    const options = resolveOptions({ url: 'amqp://h', delayBuckets: [100, 1000] });
    expect(delayBucket(options, 1)).toBe(100);
    expect(delayBucket(options, 100)).toBe(100);
    expect(delayBucket(options, 101)).toBe(1000);
    expect(delayBucket(options, 1001)).toBe(60_000);
    expect(delayBucket(options, 60_001)).toBe(120_000);
  });

  test('names: exchange per topic, queue and dlq per group; too long is a ConfigError', () => {
    const options = resolveOptions({ url: 'amqp://h' });
    expect(groupNames(options, 'order.placed', 'email')).toEqual({
      exchange: 'ew.order.placed',
      queue: 'ew.order.placed/email',
      dlq: 'ew.order.placed/email.dlq',
    });
    expect(() => groupNames(options, 'x'.repeat(300), 'g')).toThrow(ConfigError);
  });
});

describe('CloudEvents binary mode in AMQP headers', () => {
  test('attributes get the ce- prefix, control headers stay, content type is the AMQP property', () => {
    const { headers, contentType } = toAmqp({
      headers: { specversion: '1.0', id: 'a', datacontenttype: 'application/json', ewattempt: '2' },
      body: Buffer.from('{}'),
    });
    expect(headers).toEqual({
      'ce-specversion': '1.0',
      'ce-id': 'a',
      'ce-datacontenttype': 'application/json',
      ewattempt: '2',
    });
    expect(contentType).toBe('application/json');
  });

  test('receiving strips the prefix (ce-, cloudEvents_), drops broker headers, reads Buffers', () => {
    const wire = fromAmqp({
      content: Buffer.from('{}'),
      properties: {
        contentType: 'application/json',
        headers: {
          'ce-specversion': '1.0',
          cloudEvents_id: Buffer.from('b'),
          'x-death': [{}],
          'x-delivery-count': 2,
          ewattempt: '3',
          other: 'x',
        },
      } as never,
    });
    expect(wire.headers).toEqual({
      specversion: '1.0',
      id: 'b',
      ewattempt: '3',
      'content-type': 'application/json',
      datacontenttype: 'application/json',
    });
  });
});

describe('publish input errors', () => {
  test('a topic name too long for RabbitMQ is a ConfigError, not a transport failure', async () => {
    const { rabbitmq } = await import('../src/index.ts');
    const transport = rabbitmq({ url: 'amqp://127.0.0.1:1' });
    await expect(
      transport.publish([{ topic: 't'.repeat(300), id: '1', headers: {}, body: Buffer.from('{}') }]),
    ).rejects.toBeInstanceOf(ConfigError);
  });
});
