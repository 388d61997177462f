/**
 * Every call to the server has a bound (issue 16 item 2): a silent partition held publish for
 * more than 200 s. Now a statement without an answer rejects at `queryTimeoutMs`, getting a
 * connection at `connectTimeoutMs`, both with a retryable TransportError (`driverCode`
 * `ETIMEDOUT`), and closing returns within its bound; once the network heals the pool works again
 * (the connection that timed out was dropped, not handed to the next caller).
 */
import { performance } from 'node:perf_hooks';
import { type Transport, TransportError } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { afterEach, describe, expect, test } from 'vitest';
import { requireBroker } from '../../../test/support/brokers.ts';
import { postgres } from '../src/url.ts';
import { type BlackholeProxy, blackholeProxy } from './blackhole-proxy.ts';
import { message, spec } from './queue-helpers.ts';
import { adminPool, freshSchema, POSTGRES_URL } from './server.ts';

/** How `work` ended within `ms`, and when; `pending` if it had not by then (a hang, before the fix). */
async function outcome(work: Promise<unknown>, ms: number) {
  const started = performance.now();
  const result = await Promise.race([
    work.then(
      (value) => ({ state: 'resolved' as const, value }),
      (error: unknown) => ({ state: 'rejected' as const, error }),
    ),
    new Promise<{ state: 'pending' }>((resolve) =>
      setTimeout(() => resolve({ state: 'pending' }), ms).unref(),
    ),
  ]);
  return { ...result, elapsedMs: performance.now() - started };
}

function expectDeadline(result: Awaited<ReturnType<typeof outcome>>, boundMs: number, text: RegExp): void {
  expect(result.state).toBe('rejected');
  const error = (result as { error: unknown }).error;
  expect(error).toBeInstanceOf(TransportError);
  expect(error).toMatchObject({ code: 'EW_TRANSPORT', retryable: true, driverCode: 'ETIMEDOUT' });
  expect((error as Error).message).toMatch(text);
  expect(result.elapsedMs).toBeLessThan(boundMs);
}

const server = await requireBroker('postgres');

describe.runIf(server)('deadlines', () => {
  let proxy: BlackholeProxy | undefined;
  const transports: Transport[] = [];
  afterEach(async () => {
    proxy?.drop(false);
    for (const transport of transports.splice(0)) await transport.close().catch(() => {});
    await proxy?.close();
    proxy = undefined;
  });

  /** A transport through a fresh black-hole proxy, in a schema of its own. */
  async function throughProxy(options: { queryTimeoutMs: number; connectTimeoutMs: number }) {
    proxy = await blackholeProxy(POSTGRES_URL);
    const { poolOptions } = await freshSchema('ew_deadlines');
    const transport = postgres({ url: proxy.urlFor(POSTGRES_URL), poolOptions, ...options });
    transports.push(transport);
    return { transport, proxy };
  }

  test('a silent partition: publish rejects at queryTimeoutMs, and works again once healed', async () => {
    const { transport, proxy } = await throughProxy({ queryTimeoutMs: 500, connectTimeoutMs: 500 });
    await transport.connect();
    await transport.ensureGroup('t', 'g', 'latest');
    await transport.publish([message('before')]);

    proxy.drop(true);
    const during = await outcome(transport.publish([message('during')]), 10_000);
    // queryTimeoutMs, or connectTimeoutMs when the pool had to open a connection first.
    expectDeadline(during, 500 + 500 + 1000, /^postgres: publish: no (answer|connection) within 500 ms/);

    proxy.drop(false);
    await waitFor(
      async () =>
        transport.publish([message('after')]).then(
          () => true,
          () => false,
        ),
      { timeoutMs: 5000 },
    );
    expect(await transport.lag?.('t', 'g')).toBeGreaterThanOrEqual(2);
  });

  test('a silent partition: connect rejects at connectTimeoutMs', async () => {
    const { transport, proxy } = await throughProxy({ queryTimeoutMs: 500, connectTimeoutMs: 300 });
    proxy.drop(true);
    const connecting = await outcome(transport.connect(), 10_000);
    expectDeadline(
      connecting,
      300 + 1000,
      /^postgres: connect: no connection within 300 ms \(connectTimeoutMs\)/,
    );
  });

  test('a silent partition: closing a transport with a subscription returns within its bound', async () => {
    const { transport, proxy } = await throughProxy({ queryTimeoutMs: 500, connectTimeoutMs: 500 });
    await transport.connect();
    const subscription = await transport.subscribe(spec(), () => {});
    await transport.publish([message('e1')]);
    proxy.drop(true);
    // Subscriptions within queryTimeoutMs, then the pool within a second.
    const closing = await outcome(
      (async () => {
        await subscription.close();
        await transport.close();
      })(),
      20_000,
    );
    transports.length = 0;
    expect(closing.state).toBe('resolved');
    expect(closing.elapsedMs).toBeLessThan(500 + 1000 + 1000);
  });

  test('a statement waiting on a lock rejects at queryTimeoutMs, the lock holder unharmed', async () => {
    const { schema, poolOptions } = await freshSchema('ew_deadlines');
    const transport = postgres({ url: POSTGRES_URL, poolOptions, queryTimeoutMs: 300 });
    transports.push(transport);
    await transport.connect();
    const locker = await adminPool().connect();
    try {
      await locker.query('begin');
      await locker.query(`lock table ${schema}.ew_messages in exclusive mode`);
      const blocked = await outcome(transport.publish([message('e1')]), 10_000);
      expectDeadline(blocked, 300 + 1000, /^postgres: publish: no answer within 300 ms \(queryTimeoutMs\)/);
    } finally {
      await locker.query('rollback');
      locker.release();
    }
    await transport.publish([message('e2')]);
  });

  test("the server's own statement_timeout is a retryable TransportError 57014", async () => {
    const { schema, poolOptions } = await freshSchema('ew_deadlines');
    const transport = postgres({
      url: POSTGRES_URL,
      poolOptions: { ...poolOptions, statement_timeout: 200 },
    });
    transports.push(transport);
    await transport.connect();
    const locker = await adminPool().connect();
    try {
      await locker.query('begin');
      await locker.query(`lock table ${schema}.ew_messages in exclusive mode`);
      const cancelled = await outcome(transport.publish([message('e1')]), 10_000);
      expect(cancelled.state).toBe('rejected');
      expect((cancelled as { error: unknown }).error).toMatchObject({
        code: 'EW_TRANSPORT',
        retryable: true,
        driverCode: '57014',
      });
    } finally {
      await locker.query('rollback');
      locker.release();
    }
  });
});
