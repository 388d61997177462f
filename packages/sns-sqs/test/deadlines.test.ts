/**
 * Every SNS/SQS call has a deadline (issue 16 item 2): a silent network partition, where packets
 * are dropped and nothing resets, must end in a retryable TransportError within the documented
 * bound, and close() must return within its bound, whatever the network does.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Transport, TransportError } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { afterEach, describe, expect, test } from 'vitest';
import { describeBroker, SNS_SQS_URL } from '../../../test/support/brokers.ts';
import { parseUrl, snsSqs } from '../src/index.ts';
import { proxyTo, silentServer } from './network.ts';

/** Settles `work` or fails after `ms`, so that a hang is a test failure with a clear message. */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const message = (topic: string) => ({ topic, id: randomUUID(), headers: {}, body: Buffer.from('{"n":1}') });

describe('sns-sqs deadlines, against a server that never answers', () => {
  const opened: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((o) => o.close()));
  });

  test('publish rejects within 3 x requestTimeoutMs (+ backoff), connect within requestTimeoutMs: retryable TransportErrors', async () => {
    const server = await silentServer();
    opened.push(server);
    const transport = snsSqs({
      endpoint: `http://127.0.0.1:${server.port}`,
      credentials,
      requestTimeoutMs: 300,
      connectionTimeoutMs: 300,
    });
    opened.push(transport);
    // The documented bounds: a call gets 3 attempts of 300 ms plus at most 600 ms of SDK
    // backoff; connect gets one request's time.
    for (const [what, call, bound] of [
      ['publish', () => transport.publish([message('t')]), 3 * 300 + 600],
      ['connect', () => transport.connect(), 300],
    ] as const) {
      const started = Date.now();
      const error = await within(
        10_000,
        what,
        call().then(
          () => undefined,
          (e: unknown) => e,
        ),
      );
      const took = Date.now() - started;
      expect(error, what).toBeInstanceOf(TransportError);
      expect((error as TransportError).retryable, what).toBe(true);
      expect((error as TransportError).message, what).toMatch(/^sns-sqs: /);
      expect(took, what).toBeGreaterThanOrEqual(300);
      expect(took, what).toBeLessThan(bound + 700);
      expect((error as TransportError).driverCode, what).toBe('ETIMEDOUT');
    }
    const closing = Date.now();
    await within(5000, 'close', transport.close());
    expect(Date.now() - closing).toBeLessThan(1000);
  });
});

describeBroker('sns-sqs', () => {
  const open: Transport[] = [];
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((t) => t.close()));
  });

  test('close() returns within waitTimeSeconds + requestTimeoutMs when AWS stops answering mid-stream, and loses nothing', async () => {
    const target = new URL(parseUrl(SNS_SQS_URL).endpoint!);
    const proxy = await proxyTo({ host: target.hostname, port: Number(target.port) });
    const run = randomUUID().slice(0, 8);
    const topic = `ewtest-${run}`;
    const group = `g-${run}`;
    const direct = snsSqs({ ...parseUrl(SNS_SQS_URL), waitTimeSeconds: 1 });
    open.push(direct);
    const proxied = snsSqs({
      ...parseUrl(SNS_SQS_URL),
      endpoint: `http://127.0.0.1:${proxy.port}`,
      waitTimeSeconds: 1,
      requestTimeoutMs: 500,
    });
    await direct.ensureGroup(topic, group, 'latest');
    const spec = {
      topic,
      group,
      from: 'latest' as const,
      maxInFlight: 10,
      ordering: 'none' as const,
      leaseMs: 3000,
    };
    const held: IncomingMessage[] = [];
    const sub = await proxied.subscribe(spec, (m) => void held.push(m));
    await direct.publish([message(topic), message(topic)]);
    await waitFor(() => held.length === 2, { timeoutMs: 15_000 });

    proxy.blackhole();
    // An ack into the partition: the delete cannot land (it will be a duplicate, not a loss).
    void held[0]!.ack().catch(() => {});
    const closing = Date.now();
    await within(20_000, 'subscription close', sub.close());
    await within(5000, 'transport close', proxied.close());
    const took = Date.now() - closing;
    // closeBoundMs: waitTimeSeconds (1 s) + requestTimeoutMs (0.5 s), plus scheduling slack.
    expect(took).toBeLessThan(1500 + 1000);
    await proxy.close();

    // Nothing was given back (AWS unreachable): both come back after their lease of 3 s.
    const again: IncomingMessage[] = [];
    const next = await direct.subscribe({ ...spec, leaseMs: 30_000 }, (m) => {
      again.push(m);
      void m.ack();
    });
    await waitFor(() => again.length === 2, { timeoutMs: 20_000 });
    await next.close();
  });
});
