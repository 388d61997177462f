import { randomUUID } from 'node:crypto';
import { createBus } from '@eventwire/core';
import { describe, expect, it } from 'vitest';
import { order } from './dlq-scenario.ts';
import { OrderPlaced } from './fixtures/app/events.ts';
import { cliInProcess, fixtureConfig, parsed, waitFor } from './harness.ts';

// On the in-process memory broker (it keeps a log with publish times), through the CLI's run().
describe('eventwire group rewind, and doctor counting delayed events', () => {
  it('dry run counts, rewind re-delivers from the time to that group only, bad input is a usage error', async () => {
    const url = `memory://cli-rewind-${randomUUID().slice(0, 8)}`;
    const run = (...args: string[]) =>
      cliInProcess(['--config', fixtureConfig, ...args], { env: { EVENTWIRE_URL: url } });
    const bus = await createBus({ url, source: 'cli-test' });
    const seen = { email: [] as string[], analytics: [] as string[] };
    bus.subscribe(OrderPlaced, (e) => void seen.email.push(e.id), { group: 'email' });
    bus.subscribe(OrderPlaced, (e) => void seen.analytics.push(e.id), { group: 'analytics' });
    await bus.start();
    await bus.publishMany(
      OrderPlaced,
      [1, 2].map((n) => ({ data: order(n) })),
    );
    await new Promise((r) => setTimeout(r, 50));
    const to = new Date();
    await new Promise((r) => setTimeout(r, 50));
    const later = await bus.publishMany(
      OrderPlaced,
      [3, 4, 5].map((n) => ({ data: order(n) })),
    );
    await waitFor(() => seen.email.length === 5 && seen.analytics.length === 5, 10_000, 'first delivery');
    await bus.close({ drainMs: 1000 });

    const dry = await run(
      'group',
      'rewind',
      '--topic',
      OrderPlaced.topic,
      '--group',
      'email',
      '--to',
      to.toISOString(),
      '--dry-run',
      '--json',
    );
    expect(dry.code, dry.stderr).toBe(0);
    expect(parsed(dry)).toMatchObject({ group: 'email', dryRun: true, count: 3 });
    const done = await run(
      'group',
      'rewind',
      '--topic',
      OrderPlaced.type,
      '--group',
      'email',
      '--to',
      to.toISOString(),
    );
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain('email: rewound to');
    expect(done.stdout).toContain('3 events will be delivered again');

    const again = await createBus({ url, source: 'cli-test' });
    const replayed = { email: [] as string[], analytics: [] as string[] };
    again.subscribe(OrderPlaced, (e) => void replayed.email.push(e.id), { group: 'email' });
    again.subscribe(OrderPlaced, (e) => void replayed.analytics.push(e.id), { group: 'analytics' });
    await again.start();
    await waitFor(() => replayed.email.length >= 3, 10_000, 'rewound delivery');
    await new Promise((r) => setTimeout(r, 300));
    await again.close({ drainMs: 1000 });
    expect(replayed.email.sort()).toEqual(later.map((e) => e.id).sort());
    expect(replayed.analytics).toEqual([]);

    // doctor counts what waits for a later time, per group.
    const later9 = await createBus({ url, source: 'cli-test' });
    await later9.publish(OrderPlaced, order(9), { delayMs: 60_000 });
    await later9.close();
    const doctor = parsed(await run('doctor', '--json'));
    expect(doctor.groups.find((g: any) => g.group === 'email')).toMatchObject({ delayed: 1 });
    expect(doctor.groups.find((g: any) => g.group === 'analytics')).toMatchObject({ delayed: 1 });

    const bad = await run(
      'group',
      'rewind',
      '--topic',
      OrderPlaced.topic,
      '--group',
      'email',
      '--to',
      'yesterday',
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--to must be an ISO 8601 time or "beginning", not "yesterday"');
    const missing = await run('group', 'rewind', '--topic', OrderPlaced.topic, '--to', 'beginning');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('group rewind needs --group');
  }, 60_000);
});
