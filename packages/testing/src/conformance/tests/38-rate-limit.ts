import type { Bus, EventDefinition } from '@eventwire/core';
import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, type Fixture, type Item, items, requires } from '../fixture.ts';

const MAX = 5;
const PER_MS = 500;
const EVENTS = 40;
/** Timer and scheduling noise between the limiter's clock and the handler's. */
const SLACK_MS = 50;

/**
 * Starts `EVENTS` handlers through `consumers` (each its own bus) subscribed with the rate
 * limit, and checks the merged start times: no window of PER_MS holds more than MAX starts.
 */
async function limited(fx: Fixture, consumers: Bus[], scope: 'process' | 'group'): Promise<void> {
  const Event: EventDefinition<Item> = fx.event();
  const group = fx.group('g');
  const admin = await fx.raw();
  await admin.ensureGroup(Event.topic, group, 'latest');
  const starts: number[] = [];
  const seen = new Set<string>();
  for (const bus of consumers) {
    const sub = bus.subscribe(
      Event,
      (e) => {
        starts.push(performance.now());
        seen.add(e.id);
      },
      { group, concurrency: 8, rateLimit: { max: MAX, perMs: PER_MS, scope } },
    );
    await bus.start();
    await sub.ready;
  }
  const producer = await fx.bus();
  await producer.publishMany(Event, items(EVENTS));
  const expectedMs = (EVENTS / MAX - 1) * PER_MS;
  await waitFor(() => seen.size >= EVENTS, {
    timeoutMs: expectedMs + 30_000,
    message: () => `${seen.size}/${EVENTS} handled`,
  });
  starts.sort((a, b) => a - b);
  for (let i = 0; i + MAX < starts.length; i++) {
    // Starts i .. i+MAX are MAX+1 runs: they cannot fit in one window.
    expect(starts[i + MAX]! - starts[i]!, `starts ${i}..${i + MAX}`).toBeGreaterThanOrEqual(
      PER_MS - SLACK_MS,
    );
  }
  // Limited, not stalled: close to the fastest the limit allows.
  expect(starts.at(-1)! - starts[0]!).toBeLessThan(expectedMs + 10_000);
}

export const rateLimitProcess: ConformanceTest = {
  number: 38,
  name: 'rate-limit',
  timeoutMs: 120_000,
  async run(fx) {
    await limited(fx, [await fx.bus()], 'process');
  },
};

export const rateLimitGroup: ConformanceTest = {
  number: 39,
  name: 'rate-limit-group',
  requires: requires.rateLimitStore,
  timeoutMs: 120_000,
  async run(fx) {
    // Two instances of the group, each with its own connections: the limit holds for both together.
    await limited(fx, [await fx.bus(), await fx.bus()], 'group');
  },
};
