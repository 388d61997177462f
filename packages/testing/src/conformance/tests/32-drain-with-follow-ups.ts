import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { gate, waitFor } from '../../wait.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const drainWithFollowUps: ConformanceTest = {
  number: 32,
  name: 'drain-with-follow-ups',
  timeoutMs: 120_000,
  async run(fx) {
    // A deploy: close({ drainMs }) while 20 handlers run, each publishing a follow-up.
    // 15 finish during the drain and must keep their full powers (ctx.publish, ack); 5 are
    // still running at drainMs and must come back to the next consumer, neither
    // dead-lettered nor charged an attempt because of the shutdown.
    const Event = fx.event();
    const FollowUp = fx.event();
    const group = fx.group('g');
    const followGroup = fx.group('follow');
    const admin = await fx.raw();
    await admin.ensureGroup(Event.topic, group, 'latest');
    await admin.ensureGroup(FollowUp.topic, followGroup, 'latest');
    const first = await fx.bus();
    const release = gate();
    const running = new Set<number>();
    const finished = new Set<string>();
    const publishErrors: unknown[] = [];
    const sub = first.subscribe(
      Event,
      async (e, ctx) => {
        running.add(e.data.n);
        if (e.data.n >= 15) {
          // Runs past the drain time: ends only when its signal fires.
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
          throw new Error('cut off by the drain time');
        }
        await release.promise;
        try {
          await ctx.publish(FollowUp, { n: e.data.n });
        } catch (error) {
          publishErrors.push(error);
          throw error;
        }
        finished.add(e.id);
      },
      { group, concurrency: 20, prefetch: 0, retry: { attempts: 2 } },
    );
    await first.start();
    await sub.ready;
    const producer = await fx.bus();
    const published = await producer.publishMany(Event, items(20));
    await waitFor(() => running.size === 20, {
      timeoutMs: 30_000,
      message: () => `${running.size}/20 running`,
    });
    const closing = first.close({ drainMs: 2_000 });
    release.open();
    await closing;
    expect(publishErrors).toEqual([]);
    expect(finished.size).toBe(15);

    const follow = await fx.bus();
    const followUps = recorder<Item>();
    follow.subscribe(FollowUp, followUps.handler, { group: followGroup, concurrency: 8 });
    await follow.start();
    await followUps.waitForCount(15);
    expect(new Set(followUps.handled.map((d) => d.event.data.n))).toEqual(
      new Set(items(15).map((i) => i.data.n)),
    );
    expect(followUps.handled.every((d) => published.some((p) => p.id === d.event.causationId))).toBe(true);

    // The next consumer gets the 5 cut-off events, at the attempt they had, and nothing finished.
    const second = await fx.bus();
    const redelivered = recorder<Item>();
    second.subscribe(Event, redelivered.handler, { group, concurrency: 8 });
    await second.start();
    await redelivered.waitForCount(5, fx.redeliveryMs + 15_000);
    const sentinel = await producer.publish(Event, { n: 99 });
    await redelivered.waitForCount(6);
    const cutOff = published.filter((e) => e.data.n >= 15).map((e) => e.id);
    expect(redelivered.ids).toEqual(new Set([...cutOff, sentinel.id]));
    const maxAttempt = fx.releaseCountsAttempt ? 2 : 1;
    for (const d of redelivered.handled)
      expect(d.attempt, `attempt of ${d.event.data.n}`).toBeLessThanOrEqual(maxAttempt);
    expect(
      await first
        .deadLetters(Event, group)
        .list()
        .catch(() => []),
    ).toEqual([]);
    expect(await second.deadLetters(Event, group).list()).toEqual([]);
  },
};
