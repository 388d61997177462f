import { memoryInbox, type Transport } from '@eventwire/core';
import { expect } from 'vitest';
import { withFaults } from '../../fault-injection.ts';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, items } from '../fixture.ts';

export const inboxDedups: ConformanceTest = {
  number: 21,
  name: 'inbox-dedups',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const duplicate = (t: Transport) => withFaults(t, { duplicateDeliveries: 3 });
    const withInbox = await fx.bus({}, duplicate);
    const without = await fx.bus({}, duplicate);
    let effects = 0;
    let deliveries = 0;
    const subs = [
      withInbox.subscribe(Event, () => void effects++, {
        group: fx.group('inbox'),
        concurrency: 3,
        idempotency: memoryInbox(),
      }),
      without.subscribe(Event, (e) => void (e.data.n === 100 && deliveries++), {
        group: fx.group('plain'),
        concurrency: 3,
      }),
    ];
    await Promise.all([withInbox.start(), without.start()]);
    await Promise.all(subs.map((s) => s.ready));
    const producer = await fx.bus();
    await producer.publish(Event, { n: 100 });
    await waitFor(() => deliveries >= 3, { timeoutMs: 30_000 });
    // Two more events through the inbox group: once they are in, the duplicates are long settled.
    const more = await producer.publishMany(Event, items(2));
    await waitFor(() => effects >= 1 + more.length, { timeoutMs: 30_000 });
    expect(deliveries).toBe(3);
    expect(effects).toBe(3);
  },
};
