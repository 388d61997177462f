import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { waitFor } from '../../wait.ts';
import { eventIdFor, retryUntilAccepted } from '../assertions.ts';
import { type ConformanceTest, type Item, requires } from '../fixture.ts';

export const brokerRestart: ConformanceTest = {
  number: 15,
  name: 'broker-restart',
  requires: requires.brokerRestart,
  timeoutMs: 360_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const total = fx.scale(10_000);
    const consumer = await fx.bus();
    const rec = recorder<Item>();
    const sub = consumer.subscribe(Event, rec.handler, { group, concurrency: 16 });
    await consumer.start();
    await sub.ready;
    const producer = await fx.bus();
    const ids = new Set<string>();
    let sent = 0;
    const restarts: Promise<void>[] = [];
    const maybeRestart = () => {
      sent++;
      if (sent === Math.floor(total / 3) || sent === Math.floor(total / 2)) {
        restarts.push(Promise.all(restarts).then(() => fx.broker!.restart!()));
      }
    };
    const publishers = 100;
    await Promise.all(
      Array.from({ length: publishers }, async (_, p) => {
        for (let i = p; i < total; i += publishers) {
          // Publishers retry until the broker accepts: nothing acknowledged may be lost.
          const id = (
            await retryUntilAccepted(() => producer.publish(Event, { n: i }, { id: eventIdFor(fx.runId, i) }))
          ).id;
          ids.add(id);
          maybeRestart();
        }
      }),
    );
    await Promise.all(restarts);
    await waitFor(() => [...ids].every((id) => rec.ids.has(id)), {
      timeoutMs: 240_000,
      message: () => `${[...ids].filter((id) => rec.ids.has(id)).length}/${ids.size}`,
    });
    expect(ids.size).toBe(total);
  },
};
