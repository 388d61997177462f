import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { waitFor } from '../../wait.ts';
import type { ConformanceTest, Item } from '../fixture.ts';

export const replayTargetsGroup: ConformanceTest = {
  number: 20,
  name: 'replay-targets-group',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const [groupA, groupB] = [fx.group('a'), fx.group('b')];
    const consumer = await fx.bus();
    let failA = true;
    const a = recorder<Item>(() => {
      if (failA) throw new Error('group A fails until fixed');
    });
    const b = recorder<Item>();
    const subs = [
      consumer.subscribe(Event, a.handler, { group: groupA, retry: { attempts: 1 } }),
      consumer.subscribe(Event, b.handler, { group: groupB }),
    ];
    await consumer.start();
    await Promise.all(subs.map((s) => s.ready));
    const producer = await fx.bus();
    const event = await producer.publish(Event, { n: 1 });
    await b.waitForCount(1);
    const dead = consumer.deadLetters(Event, groupA);
    await waitFor(async () => (await dead.list()).length === 1, { timeoutMs: 30_000 });
    failA = false;
    expect(await dead.replay()).toBe(1);
    await a.waitForCount(1);
    expect([...a.ids]).toEqual([event.id]);
    expect(await dead.list()).toEqual([]);
    // A sentinel after the replay: once B has it, B has had every chance to see the copy.
    const sentinel = await producer.publish(Event, { n: 2 });
    await waitFor(() => b.ids.has(sentinel.id));
    await waitFor(() => a.ids.has(sentinel.id));
    expect(b.handled.filter((d) => d.event.id === event.id)).toHaveLength(1);
  },
};
