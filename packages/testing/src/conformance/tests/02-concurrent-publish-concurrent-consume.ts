import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import type { ConformanceTest } from '../fixture.ts';

export const concurrentPublishConcurrentConsume: ConformanceTest = {
  number: 2,
  name: 'concurrent-publish-concurrent-consume',
  timeoutMs: 180_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const total = fx.scale(5000);
    const instances = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const bus = await fx.bus();
        const seen: { id: string; attempt: number }[] = [];
        const sub = bus.subscribe(Event, (e, ctx) => void seen.push({ id: e.id, attempt: ctx.attempt }), {
          group,
          concurrency: 4,
        });
        await bus.start();
        await sub.ready;
        return seen;
      }),
    );
    const producer = await fx.bus();
    const publishers = 50;
    const ids = (
      await Promise.all(
        Array.from({ length: publishers }, async (_, p) => {
          const out: string[] = [];
          for (let i = p; i < total; i += publishers) out.push((await producer.publish(Event, { n: i })).id);
          return out;
        }),
      )
    ).flat();
    const union = () => new Set(instances.flatMap((seen) => seen.map((s) => s.id)));
    await waitFor(() => union().size >= total, {
      timeoutMs: 120_000,
      message: () => `${union().size}/${total}`,
    });
    expect(union()).toEqual(new Set(ids));
    // Each event handled by one instance, unless a redelivery (attempt > 1) explains it.
    const owners = new Map<string, { instance: number; attempt: number }[]>();
    instances.forEach((seen, instance) => {
      for (const s of seen) owners.set(s.id, [...(owners.get(s.id) ?? []), { instance, attempt: s.attempt }]);
    });
    const unexplained = [...owners].filter(
      ([, list]) => new Set(list.map((o) => o.instance)).size > 1 && list.every((o) => o.attempt === 1),
    );
    expect(unexplained).toEqual([]);
  },
};
