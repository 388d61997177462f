import { parseTraceparent } from '@eventwire/core';
import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import type { ConformanceTest, Item } from '../fixture.ts';

export const contextPropagation: ConformanceTest = {
  number: 24,
  name: 'context-propagation',
  timeoutMs: 60_000,
  async run(fx) {
    const Parent = fx.event();
    const Child = fx.event();
    const consumer = await fx.bus();
    const children = recorder<Item>();
    const subs = [
      consumer.subscribe(Parent, async (e, ctx) => void (await ctx.publish(Child, { n: e.data.n + 1 })), {
        group: fx.group('parent'),
      }),
      consumer.subscribe(Child, children.handler, { group: fx.group('child') }),
    ];
    await consumer.start();
    await Promise.all(subs.map((s) => s.ready));
    const producer = await fx.bus();
    const parent = await producer.publish(Parent, { n: 1 });
    await children.waitForCount(1);
    const child = children.handled[0]!.event;
    expect(child.correlationId).toBe(parent.correlationId);
    expect(child.causationId).toBe(parent.id);
    expect(parseTraceparent(child.traceparent)?.traceId).toBe(parseTraceparent(parent.traceparent)!.traceId);
    expect(child.traceparent).not.toBe(parent.traceparent);
  },
};
