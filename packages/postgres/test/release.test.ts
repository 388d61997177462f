/**
 * `release()` gives a delivery back for redelivery now without counting the attempt (core calls
 * it for deliveries that a closing bus will not finish), and closing a subscription gives back
 * what it still holds the same way: the next delivery reports the attempt the released one had.
 */
import { describe, expect, test } from 'vitest';
import { requireBroker } from '../../../test/support/brokers.ts';
import { message, openDriver, openTransport, record } from './queue-helpers.ts';

const server = await requireBroker('postgres');

describe.each([
  ['PGlite', 'pglite' as const, true],
  ['Postgres server', 'server' as const, server],
])('%s', (_name, kind, available) => {
  test.runIf(available)('a released delivery comes back at once, with the same attempt', async () => {
    const transport = await openTransport(await openDriver(kind));
    await transport.ensureGroup('t', 'g', 'latest');
    await transport.publish([message('e1')]);
    // A lease far longer than the test: only release() can bring the row back this soon.
    const { nth, subscription } = await record(transport, { leaseMs: 60_000 });

    const first = await nth(1);
    expect(first.attempt).toBe(1);
    await first.release?.();
    const second = await nth(2, 5000);
    expect(second.attempt).toBe(1);

    // A retry is an attempt, and counts.
    await second.retry(0);
    const third = await nth(3, 5000);
    expect(third.attempt).toBe(2);
    await subscription.close();
    await transport.close();
  });

  test.runIf(available)('closing a subscription gives back what it holds, uncounted', async () => {
    const transport = await openTransport(await openDriver(kind));
    await transport.ensureGroup('t', 'g', 'latest');
    await transport.publish([message('e1')]);
    const before = await record(transport, { leaseMs: 60_000 });
    expect((await before.nth(1)).attempt).toBe(1);
    await before.subscription.close();

    const after = await record(transport, { leaseMs: 60_000 });
    expect((await after.nth(1, 5000)).attempt).toBe(1);
    await after.subscription.close();
    await transport.close();
  });
});
