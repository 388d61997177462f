import { ConfigError, type SubscribeOptions } from '@eventwire/core';
import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const invalidOptions: ConformanceTest = {
  number: 35,
  name: 'invalid-options',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const bus = await fx.bus();
    const handler = () => {};
    const bad: [string, Partial<SubscribeOptions>][] = [
      ['concurrency', { concurrency: Number.NaN }],
      ['concurrency', { concurrency: 0 }],
      ['concurrency', { concurrency: -1 }],
      ['concurrency', { concurrency: 1.5 }],
      ['prefetch', { prefetch: -1 }],
      ['prefetch', { prefetch: Number.NaN }],
      ['timeoutMs', { timeoutMs: 0 }],
      ['timeoutMs', { timeoutMs: Number.NaN }],
      ['attempts', { retry: { attempts: 0 } }],
      ['attempts', { retry: { attempts: Number.NaN } }],
      ['initialMs', { retry: { backoff: { initialMs: -1 } } }],
      ['maxMs', { retry: { backoff: { maxMs: Number.NaN } } }],
      ['ordering', { ordering: 'keys' as 'key' }],
      ['from', { from: 'start' as 'beginning' }],
    ];
    for (const [option, extra] of bad) {
      let error: unknown;
      try {
        bus.subscribe(Event, handler, { group, ...extra });
      } catch (caught) {
        error = caught;
      }
      expect(error, JSON.stringify(extra)).toBeInstanceOf(ConfigError);
      expect((error as Error).message, JSON.stringify(extra)).toContain(option);
    }
    await expect(bus.close({ drainMs: Number.NaN })).rejects.toBeInstanceOf(ConfigError);
    await expect(bus.close({ drainMs: -1 })).rejects.toBeInstanceOf(ConfigError);
    // Nothing was registered or taken from the broker: a valid subscription of the same
    // group on this bus gets every event.
    const rec = recorder<Item>();
    const sub = bus.subscribe(Event, rec.handler, { group, concurrency: 2 });
    await bus.start();
    await sub.ready;
    const published = await bus.publishMany(Event, items(5));
    await rec.waitForCount(5);
    expect(rec.ids).toEqual(new Set(published.map((e) => e.id)));
  },
};
