import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { gate } from '../../wait.ts';
import type { ConformanceTest, Item } from '../fixture.ts';

export const abortOnClose: ConformanceTest = {
  number: 13,
  name: 'abort-on-close',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const first = await fx.bus();
    const started = gate<void>();
    let sawAbort = false;
    const sub = first.subscribe(
      Event,
      async (_e, ctx) => {
        started.open();
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        sawAbort = ctx.signal.aborted;
        throw new Error('aborted before finishing');
      },
      { group },
    );
    await first.start();
    await sub.ready;
    const producer = await fx.bus();
    const event = await producer.publish(Event, { n: 1 });
    await started.promise;
    await first.close({ drainMs: 50 });
    expect(sawAbort).toBe(true);
    const second = await fx.bus();
    const rec = recorder<Item>();
    second.subscribe(Event, rec.handler, { group });
    await second.start();
    await rec.waitForCount(1, fx.redeliveryMs + 15_000);
    expect([...rec.ids]).toEqual([event.id]);
  },
};
