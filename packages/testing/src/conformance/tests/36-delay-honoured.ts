import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, type Item, requires } from '../fixture.ts';

/** How long the delayed events of this test wait: long enough to see an early delivery. */
const DELAY_MS = 2_000;

export const delayHonoured: ConformanceTest = {
  number: 36,
  name: 'delay-honoured',
  requires: requires.delayedPublish,
  timeoutMs: 120_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const admin = await fx.raw();
    await admin.ensureGroup(Event.topic, group, 'latest');
    const handledAt = new Map<string, number>();
    const subscribe = async () => {
      const bus = await fx.bus();
      const sub = bus.subscribe(Event, (e) => void (handledAt.has(e.id) || handledAt.set(e.id, Date.now())), {
        group,
        concurrency: 8,
      });
      await bus.start();
      await sub.ready;
      return bus;
    };
    const producer = await fx.bus();

    // 1. Delayed (relative and absolute) next to immediate events, one consumer running.
    let consumer = await subscribe();
    const sentAt = Date.now();
    const due = new Map<string, number>();
    const delayed = await producer.publishMany(
      Event,
      Array.from({ length: 10 }, (_, n) => ({ data: { n } as Item, options: { delayMs: DELAY_MS } })),
    );
    for (const e of delayed) due.set(e.id, sentAt + DELAY_MS);
    const at = new Date(Date.now() + DELAY_MS + 500);
    for (const e of await producer.publishMany(
      Event,
      Array.from({ length: 10 }, (_, n) => ({ data: { n: 10 + n } as Item, options: { deliverAt: at } })),
    ))
      due.set(e.id, at.getTime());
    const immediate = await producer.publishMany(
      Event,
      Array.from({ length: 5 }, (_, n) => ({ data: { n: 100 + n } as Item })),
    );
    // A deliverAt already past means now.
    const past = await producer.publish(Event, { n: 200 }, { deliverAt: new Date(Date.now() - 60_000) });
    await waitFor(() => [...immediate, past].every((e) => handledAt.has(e.id)), {
      timeoutMs: 30_000,
      message: () => 'immediate events not handled',
    });
    await waitFor(() => [...due.keys()].every((id) => handledAt.has(id)), {
      timeoutMs: DELAY_MS + fx.delayPrecisionMs + 30_000,
      message: () => `delayed events handled: ${[...due.keys()].filter((id) => handledAt.has(id)).length}/20`,
    });
    for (const [id, dueAt] of due) {
      // Never early: the delivery time is counted from just before the publish call.
      expect(handledAt.get(id)!).toBeGreaterThanOrEqual(dueAt);
      expect(handledAt.get(id)! - dueAt).toBeLessThanOrEqual(fx.delayPrecisionMs);
    }

    // 2. A pending delayed event survives a consumer restart: published, then no consumer
    // runs when it falls due; a new consumer of the group handles it.
    const pending = await producer.publishMany(
      Event,
      Array.from({ length: 5 }, (_, n) => ({ data: { n: 300 + n } as Item, options: { delayMs: DELAY_MS } })),
    );
    const pendingDue = Date.now() + DELAY_MS;
    await consumer.close({ drainMs: 1000 });
    expect(pending.some((e) => handledAt.has(e.id))).toBe(false);
    // The time passing while nobody consumes is what is tested here: wait it out.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, pendingDue - Date.now()) + 200));
    consumer = await subscribe();
    await waitFor(() => pending.every((e) => handledAt.has(e.id)), {
      timeoutMs: fx.redeliveryMs + fx.delayPrecisionMs + 30_000,
      message: () =>
        `delayed events after the restart: ${pending.filter((e) => handledAt.has(e.id)).length}/5`,
    });
    for (const e of pending) expect(handledAt.get(e.id)!).toBeGreaterThanOrEqual(pendingDue);
    await consumer.close({ drainMs: 1000 });
  },
};
