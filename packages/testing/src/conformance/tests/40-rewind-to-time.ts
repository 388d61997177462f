import { UnsupportedError } from '@eventwire/core';
import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, type Item, items, requires } from '../fixture.ts';

/** Long enough, each side of the rewind time, that broker and client clocks agree which side. */
const GAP_MS = 500;
/** How long "nothing more arrives" is watched for. */
const QUIET_MS = 2_000;

export const rewindToTime: ConformanceTest = {
  number: 40,
  name: 'rewind-to-time',
  requires: requires.rewind,
  timeoutMs: 180_000,
  async run(fx) {
    const Event = fx.event();
    const rewound = fx.group('rewound');
    const other = fx.group('other');
    const producer = await fx.bus();
    if (!fx.capabilities.replay) {
      // No log to rewind: a typed refusal naming the capability, nothing moved.
      const error = await producer.rewind(Event, rewound, { to: 'beginning' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedError);
      expect((error as UnsupportedError).capability).toBe('replay');
      return;
    }
    const admin = await fx.raw();
    await admin.ensureGroup(Event.topic, rewound, 'latest');
    await admin.ensureGroup(Event.topic, other, 'latest');
    const before = await producer.publishMany(Event, items(10));
    await new Promise((resolve) => setTimeout(resolve, GAP_MS));
    const to = new Date();
    await new Promise((resolve) => setTimeout(resolve, GAP_MS));
    const after = await producer.publishMany(
      Event,
      items(10).map((i) => ({ data: { n: 10 + i.data.n } as Item })),
    );
    const all = [...before, ...after].map((e) => e.id);

    /** Runs a consumer of `group` until it handled `expected`, then `QUIET_MS` more; returns what it handled. */
    const consume = async (group: string, expected: string[]) => {
      const bus = await fx.bus();
      const handled: string[] = [];
      bus.subscribe(Event, (e) => void handled.push(e.id), { group, concurrency: 4 });
      await bus.start();
      await waitFor(() => expected.every((id) => handled.includes(id)), {
        timeoutMs: fx.redeliveryMs + 60_000,
        message: () => `${group}: ${expected.filter((id) => handled.includes(id)).length}/${expected.length}`,
      });
      // Nothing beyond them: the time passing is what is checked.
      await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
      await bus.close({ drainMs: 1000 });
      return handled;
    };

    expect(new Set(await consume(rewound, all))).toEqual(new Set(all));
    expect(new Set(await consume(other, all))).toEqual(new Set(all));

    const afterIds = after.map((e) => e.id);
    expect(await producer.rewind(Event, rewound, { to, dryRun: true })).toBe(10);
    expect(await producer.rewind(Event, rewound, { to })).toBe(10);
    const again = await consume(rewound, afterIds);
    expect(again.filter((id) => !afterIds.includes(id))).toEqual([]);
    // Other groups are untouched: a consumer of `other` receives nothing again.
    const otherBus = await fx.bus();
    const otherAgain: string[] = [];
    otherBus.subscribe(Event, (e) => void otherAgain.push(e.id), { group: other });
    await otherBus.start();
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    await otherBus.close({ drainMs: 1000 });
    expect(otherAgain).toEqual([]);

    expect(await producer.rewind(Event, rewound, { to: 'beginning' })).toBeGreaterThanOrEqual(20);
    expect(new Set(await consume(rewound, all))).toEqual(new Set(all));
  },
};
