import { createBus, NonRetryableError } from '@eventwire/core';
import { OrderPlaced, OrderPlacedV2, UserSignedUp } from './fixtures/app/events.ts';
import { waitFor } from './harness.ts';

export const order = (n: number) => ({
  orderId: `o-${n}`,
  totalCents: 100 * n,
  currency: 'EUR' as const,
  customer: { id: `c-${n}` },
});

/**
 * Publishes `count` orders; group `email` fails every one (dead letters), group `analytics`
 * handles them. Closes the bus before returning, so that the CLI can open the broker
 * (a PGlite directory is opened by one process at a time).
 */
export async function seedDeadLetters(url: string, count: number): Promise<{ ids: string[] }> {
  const bus = await createBus({ url, source: 'cli-test' });
  const analytics = new Set<string>();
  let failed = 0;
  bus.subscribe(
    OrderPlaced,
    async () => {
      failed++;
      throw new NonRetryableError('smtp down');
    },
    { group: 'email' },
  );
  bus.subscribe(OrderPlaced, async (e) => void analytics.add(e.id), { group: 'analytics' });
  await bus.start();
  // Every group the config names exists, so `doctor` finds the topology complete.
  await bus.transport.ensureGroup(UserSignedUp.topic, 'welcome', 'latest');
  const envelopes = await bus.publishMany(
    OrderPlaced,
    Array.from({ length: count }, (_, i) => ({ data: order(i + 1), options: { subject: `o-${i + 1}` } })),
  );
  const dl = bus.deadLetters(OrderPlaced, 'email');
  await waitFor(
    async () => analytics.size === count && (await dl.list()).length === count,
    30_000,
    'dead letters',
  );
  await bus.close({ drainMs: 1000 });
  void failed;
  return { ids: envelopes.map((e) => e.id) };
}

/**
 * Opens the bus with both groups succeeding, for `ms`, and reports which events each handled.
 */
export async function consumeFor(
  url: string,
  ms: number,
  until?: (seen: { email: string[]; analytics: string[] }) => boolean,
) {
  const bus = await createBus({ url, source: 'cli-test' });
  const seen = { email: [] as string[], analytics: [] as string[] };
  bus.subscribe(OrderPlacedV2, async (e) => void seen.email.push(e.id), { group: 'email' });
  bus.subscribe(OrderPlacedV2, async (e) => void seen.analytics.push(e.id), { group: 'analytics' });
  await bus.start();
  if (until) await waitFor(() => until(seen), ms, 'replayed events').catch(() => {});
  await new Promise((r) => setTimeout(r, until ? 500 : ms));
  await bus.close({ drainMs: 1000 });
  return seen;
}
