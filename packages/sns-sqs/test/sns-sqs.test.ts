/**
 * What the conformance suite does not pin down for SNS+SQS: URL parsing, naming, publish-time
 * refusals, and (on the real broker) the visibility heartbeat, the dead-letter reason and the
 * redrive safety net.
 */
import { randomUUID } from 'node:crypto';
import {
  ClosedError,
  ConfigError,
  type IncomingMessage,
  OversizeError,
  STRUCTURED_CONTENT_TYPE,
  type Transport,
  TransportError,
  ValidationError,
} from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { afterEach, describe, expect, test } from 'vitest';
import { describeBroker, SNS_SQS_URL } from '../../../test/support/brokers.ts';
import { awsError } from '../src/errors.ts';
import {
  MAX_MESSAGE_BYTES,
  messageGroupId,
  parseUrl,
  queueNames,
  snsSqs,
  topicName,
  transportFromUrl,
} from '../src/index.ts';
import { deferrals } from '../src/subscription.ts';
import { longestDelayMs } from '../src/transport.ts';

describe('sns-sqs URL and names', () => {
  test('parses region, endpoint and options', () => {
    expect(
      parseUrl(
        'sns-sqs://eu-west-1?endpoint=http://127.0.0.1:4566&fifo=true&prefix=prod-&waitTimeSeconds=2&maxReceiveCount=7',
      ),
    ).toEqual({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:4566',
      fifo: true,
      namePrefix: 'prod-',
      waitTimeSeconds: 2,
      maxReceiveCount: 7,
    });
    expect(parseUrl('sns-sqs://')).toEqual({});
  });

  test('refuses credentials, unknown parameters and bad values with ConfigError', () => {
    expect(() => parseUrl('sns-sqs://AKIA:secret@us-east-1')).toThrow(ConfigError);
    expect(() => parseUrl('sns-sqs://AKIA:secret@us-east-1')).not.toThrow(/secret/);
    expect(() => parseUrl('sns-sqs://us-east-1?colour=blue')).toThrow(ConfigError);
    expect(() => parseUrl('sns-sqs://us-east-1?fifo=maybe')).toThrow(ConfigError);
    expect(() => parseUrl('sns-sqs://us-east-1?endpoint=nope')).toThrow(ConfigError);
  });

  test('every numeric option is checked, in the options and in the URL: a ConfigError naming it, its value and the range', () => {
    const bad: [string, number][] = [
      ['waitTimeSeconds', Number.NaN],
      ['waitTimeSeconds', -1],
      ['waitTimeSeconds', 21],
      ['waitTimeSeconds', 1.5],
      ['maxReceiveCount', 0],
      ['maxReceiveCount', 1001],
      ['maxPollers', 0],
      ['maxPollers', -3],
      ['retentionSeconds', 59],
      ['retentionSeconds', 1_209_601],
      ['connectionTimeoutMs', 0],
      ['connectionTimeoutMs', Number.NaN],
      ['requestTimeoutMs', 0],
      ['requestTimeoutMs', -5],
      ['requestTimeoutMs', Number.POSITIVE_INFINITY],
    ];
    for (const [name, value] of bad) {
      expect(() => snsSqs({ region: 'us-east-1', [name]: value }), `${name}=${value}`).toThrow(ConfigError);
      expect(() => snsSqs({ region: 'us-east-1', [name]: value }), `${name}=${value}`).toThrow(
        new RegExp(`${name} must be an integer (>=|from) .*not ${value}`),
      );
      if (Number.isFinite(value) || Number.isNaN(value))
        expect(() => parseUrl(`sns-sqs://us-east-1?${name}=${value}`), `URL ${name}=${value}`).toThrow(
          new RegExp(`URL parameter ${name} must be an integer`),
        );
    }
    for (const raw of ['', 'abc', '5s']) {
      expect(() => parseUrl(`sns-sqs://us-east-1?requestTimeoutMs=${raw}`), raw).toThrow(ConfigError);
    }
    // The edges of each range are accepted.
    expect(
      parseUrl('sns-sqs://?waitTimeSeconds=0&maxReceiveCount=1000&retentionSeconds=60&requestTimeoutMs=1'),
    ).toEqual({
      waitTimeSeconds: 0,
      maxReceiveCount: 1000,
      retentionSeconds: 60,
      requestTimeoutMs: 1,
    });
    expect(() =>
      snsSqs({ region: 'us-east-1', waitTimeSeconds: 20, maxPollers: 1, connectionTimeoutMs: 1 }),
    ).not.toThrow();
  });

  test('names are valid for AWS, stable, and distinct for distinct inputs', () => {
    expect(topicName('', 'order.placed', false)).toMatch(/^[A-Za-z0-9_-]{1,256}$/);
    expect(topicName('', 'order.placed', false)).toBe(topicName('', 'order.placed', false));
    expect(topicName('', 'order.placed', false)).not.toBe(topicName('', 'order_placed', false));
    expect(topicName('', 'orders', true)).toBe('orders.fifo');
    const long = queueNames('', 'x'.repeat(200), 'g'.repeat(200), true);
    expect(long.queue.length).toBeLessThanOrEqual(80);
    expect(long.dlq.length).toBeLessThanOrEqual(80);
    expect(long.queue.endsWith('.fifo') && long.dlq.endsWith('-dlq.fifo')).toBe(true);
    expect(queueNames('', 'a', 'b-c', false).queue).not.toBe(queueNames('', 'a-b', 'c', false).queue);
    expect(messageGroupId('key-1')).toBe('key-1');
    expect(messageGroupId('ключ')).toMatch(/^h-[0-9a-f]{64}$/);
  });

  test('publish refuses what SQS cannot carry before sending anything', async () => {
    // An unreachable endpoint: a refusal must come before any network call.
    const transport = snsSqs({
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });
    const msg = (
      body: Uint8Array,
      headers: Record<string, string> = { 'content-type': STRUCTURED_CONTENT_TYPE },
    ) => ({
      topic: 't',
      id: randomUUID(),
      headers,
      body,
    });
    await expect(transport.publish([msg(Buffer.alloc(MAX_MESSAGE_BYTES, 'a'))])).rejects.toBeInstanceOf(
      OversizeError,
    );
    await expect(transport.publish([msg(Buffer.alloc(0))])).rejects.toBeInstanceOf(ValidationError);
    await expect(transport.publish([msg(Buffer.from([0xff, 0xfe]))])).rejects.toBeInstanceOf(ValidationError);
    const eleven = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`h${i}`, 'v']));
    await expect(transport.publish([msg(Buffer.from('{}'), eleven)])).rejects.toBeInstanceOf(ValidationError);
    await transport.close();
  });
});

describe('sns-sqs delayed publish', () => {
  const HOUR = 3_600_000;
  test('deferrals: one receive per started 12 h before the delivery time, none after it', () => {
    expect(deferrals(undefined, 1000)).toBe(0);
    expect(deferrals(5000, 0)).toBe(0);
    expect(deferrals(5000, 6000)).toBe(0);
    expect(deferrals(5000, 4000)).toBe(1);
    expect(deferrals(12 * HOUR, 0.001)).toBe(1);
    expect(deferrals(12 * HOUR + 1, 0.5)).toBe(2);
    expect(deferrals(14 * 24 * HOUR, 1)).toBe(28);
  });

  test('the longest delay: queue retention less 5 min, and half the redrive budget', () => {
    expect(longestDelayMs({ retentionSeconds: 1_209_600, maxReceiveCount: 100 })).toBe(
      1_209_600_000 - 300_000,
    );
    expect(longestDelayMs({ retentionSeconds: 1_209_600, maxReceiveCount: 5 })).toBe(24 * HOUR);
    expect(longestDelayMs({ retentionSeconds: 60, maxReceiveCount: 100 })).toBe(30_000);
  });

  test('publish refuses a delay longer than that, before sending anything', async () => {
    const transport = snsSqs({
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      retentionSeconds: 3600,
    });
    const at = String(Date.now() + 3600_000);
    const error = await transport
      .publish([{ topic: 't', id: 'x', headers: { ewdeliverat: at }, body: Buffer.from('{}') }])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(String(error)).toMatch(/longer than this transport keeps a message \(3300000 ms/);
    await transport.close();
  });
});

describe('sns-sqs errors', () => {
  const service = (name: string, extra: object = {}) =>
    Object.assign(new Error(`${name} happened`), { name, $fault: 'client', $metadata: {}, ...extra });

  test('an AWS refusal is a non-retryable TransportError with the exception name as driver code', () => {
    const error = awsError('publish', service('AccessDenied'));
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({
      retryable: false,
      driverCode: 'AccessDenied',
      message: 'sns-sqs: publish: AccessDenied happened',
    });
  });

  test('throttling, server faults, timeouts and network failures stay retryable', () => {
    expect(awsError('x', service('ThrottlingException')).retryable).toBe(true);
    expect(awsError('x', service('InternalError', { $fault: 'server' })).retryable).toBe(true);
    const timeout = Object.assign(new Error('a request has exceeded the configured 5000 ms requestTimeout'), {
      name: 'TimeoutError',
      code: 'ETIMEDOUT',
    });
    expect(awsError('x', timeout)).toMatchObject({ retryable: true, driverCode: 'ETIMEDOUT' });
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(awsError('x', refused)).toMatchObject({ retryable: true, driverCode: 'ECONNREFUSED' });
  });

  test('credentials in a URL of the error text are masked; eventwire errors pass through', () => {
    const error = awsError('x', new Error('cannot reach http://AKIA:secret@sqs.local/'));
    expect(error.message).not.toContain('secret');
    const closed = new ClosedError('bus closed');
    expect(awsError('x', closed)).toBe(closed);
  });
});

describeBroker('sns-sqs', () => {
  const open: Transport[] = [];
  const transport = (extra: Parameters<typeof snsSqs>[0] = {}) => {
    const t = snsSqs({ ...parseUrl(SNS_SQS_URL), waitTimeSeconds: 1, ...extra });
    open.push(t);
    return t;
  };
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((t) => t.close()));
  });
  const names = () => {
    const run = randomUUID().slice(0, 8);
    return { topic: `ewtest-${run}`, group: `g-${run}` };
  };
  const body = (n: number) =>
    Buffer.from(
      JSON.stringify({
        specversion: '1.0',
        id: randomUUID(),
        type: 't.happened',
        source: 'test',
        data: { n },
      }),
    );
  const spec = (topic: string, group: string, leaseMs: number) => ({
    topic,
    group,
    from: 'latest' as const,
    maxInFlight: 10,
    ordering: 'none' as const,
    leaseMs,
  });

  test('a delayed message is hidden until due, survives a consumer restart, and arrives as attempt 1', async () => {
    const { topic, group } = names();
    const t = transport();
    await t.ensureGroup(topic, group, 'latest');
    const got: { attempt: number; at: number }[] = [];
    const handler = (m: IncomingMessage) => {
      got.push({ attempt: m.attempt, at: Date.now() });
      void m.ack();
    };
    const first = await t.subscribe(spec(topic, group, 30_000), handler);
    const due = Date.now() + 3000;
    await t.publish([{ topic, id: randomUUID(), headers: { ewdeliverat: String(due) }, body: body(1) }]);
    // Received and deferred by the first consumer, which then stops before it is due.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await first.close();
    expect(got).toHaveLength(0);
    const second = await t.subscribe(spec(topic, group, 30_000), handler);
    await waitFor(() => got.length === 1, { timeoutMs: 15_000 });
    await second.close();
    expect(got[0]!.at).toBeGreaterThanOrEqual(due);
    // SQS counted the deferral as a receive; the attempt leaves it out.
    expect(got[0]!.attempt).toBe(1);
  });

  test('transportFromUrl connects and reports health', async () => {
    const t = transportFromUrl(SNS_SQS_URL);
    open.push(t);
    await t.connect();
    expect(await t.health()).toEqual({ status: 'up' });
  });

  test('a long handler keeps its message: the heartbeat extends visibility past the lease', async () => {
    const { topic, group } = names();
    const a = transport();
    const b = transport();
    await a.ensureGroup(topic, group, 'latest');
    const held: IncomingMessage[] = [];
    const subA = await a.subscribe(spec(topic, group, 2000), (m) => void held.push(m));
    await a.publish([{ topic, id: randomUUID(), headers: {}, body: body(1) }]);
    await waitFor(() => held.length === 1, { timeoutMs: 15_000 });
    const stolen: IncomingMessage[] = [];
    const subB = await b.subscribe(spec(topic, group, 2000), (m) => void stolen.push(m));
    // Three leases long: without the heartbeat, B would have received it after 2 s.
    const until = Date.now() + 6000;
    await waitFor(() => Date.now() > until || stolen.length > 0, { timeoutMs: 10_000 });
    expect(stolen).toHaveLength(0);
    await held[0]!.ack();
    await subA.close();
    await subB.close();
  });

  test('dead letters keep the body, headers and reason; replay sends a first attempt', async () => {
    const { topic, group } = names();
    const t = transport();
    await t.ensureGroup(topic, group, 'latest');
    const got: IncomingMessage[] = [];
    const sub = await t.subscribe(spec(topic, group, 30_000), (m) => void got.push(m));
    const original = body(7);
    await t.publish([
      {
        topic,
        id: randomUUID(),
        headers: { 'content-type': STRUCTURED_CONTENT_TYPE, traceparent: 'x' },
        body: original,
      },
    ]);
    await waitFor(() => got.length === 1, { timeoutMs: 15_000 });
    const now = new Date().toISOString();
    await got[0]!.deadLetter({
      topic,
      group,
      reason: 'non_retryable',
      error: { name: 'Boom', message: 'it broke', stack: 'Boom: it broke\n at here' },
      attempts: 1,
      firstFailedAt: now,
      lastFailedAt: now,
    });
    const [record] = await t.deadLetters.list(topic, group);
    expect(record).toMatchObject({
      reason: 'non_retryable',
      attempts: 1,
      error: { name: 'Boom', message: 'it broke' },
    });
    expect(Buffer.from(record!.message.body).equals(original)).toBe(true);
    expect(record!.message.headers).toEqual({ 'content-type': STRUCTURED_CONTENT_TYPE, traceparent: 'x' });
    expect(await t.deadLetters.replay(topic, group)).toBe(1);
    await waitFor(() => got.length === 2, { timeoutMs: 15_000 });
    expect(got[1]!.attempt).toBe(1);
    await got[1]!.ack();
    expect(await t.deadLetters.list(topic, group)).toEqual([]);
    await sub.close();
  });

  test('the redrive policy moves a message nobody settles to the dead letters', async () => {
    const { topic, group } = names();
    const t = transport({ maxReceiveCount: 2 });
    await t.ensureGroup(topic, group, 'latest');
    await t.publish([{ topic, id: randomUUID(), headers: {}, body: body(1) }]);
    // Two receives left unsettled (each close gives the message back at once)...
    for (let i = 1; i <= 2; i++) {
      const got: IncomingMessage[] = [];
      const sub = await t.subscribe(spec(topic, group, 30_000), (m) => void got.push(m));
      await waitFor(() => got.length === 1, { timeoutMs: 15_000 });
      expect(got[0]!.attempt).toBe(i);
      await sub.close();
    }
    // ...and the next receive finds it moved by SQS.
    const after: IncomingMessage[] = [];
    const sub = await t.subscribe(spec(topic, group, 30_000), (m) => void after.push(m));
    const records = await waitFor(
      async () => {
        const list = await t.deadLetters.list(topic, group);
        return list.length > 0 ? list : undefined;
      },
      { timeoutMs: 15_000 },
    );
    expect(records[0]).toMatchObject({ reason: 'max_attempts', error: { name: 'RedrivePolicy' } });
    expect(after).toHaveLength(0);
    await sub.close();
  });
});
