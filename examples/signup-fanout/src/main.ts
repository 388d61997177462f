/**
 * Signup fan-out: the signup service writes the user and `user.signed_up` in ONE database
 * transaction (transactional outbox); a relay moves the event to the bus; five consumer groups
 * react independently. Runs on the embedded default (PGlite, no servers) or on any broker:
 *
 *   pnpm demo
 *   EVENTWIRE_URL=redis://127.0.0.1:56379 pnpm demo
 */
import { createBus, jsonLogger, resolveTransport } from '@eventwire/core';
import { postgresInbox, postgresOutbox, startRelay } from '@eventwire/postgres';
import { openPglite } from '@eventwire/postgres/pglite';
import { waitFor, withFaults } from '@eventwire/testing';
import { UserSignedUp } from './events.ts';
import { timeline } from './timeline.ts';

const url = process.env.EVENTWIRE_URL ?? 'pglite://.eventwire';
const log = timeline();

// The signup service's own database (users, billing customers, workspaces, the outbox).
const app = await openPglite();
await app.exec(`
  create table users (id text primary key, email text not null, name text not null, plan text not null);
  create table billing_customers (user_id text primary key, created_at timestamptz default now());
`);

const bus = await createBus({
  url,
  source: 'signup-service',
  // The timeline already reports dead letters; keep the JSON log for errors only.
  logger: jsonLogger('error'),
  outbox: postgresOutbox(app),
  middleware: [log.middleware],
});
console.log(`eventwire demo on ${bus.transport.name} (${url.replace(/\/\/[^@/]*@/, '//***@')})\n`);

// Billing runs on a connection that delivers every event twice: the at-least-once redelivery a
// crash between "work done" and "ack" causes. Its inbox makes the effect happen once anyway.
const billingBus = await createBus({
  transport: withFaults(await resolveTransport(url), { duplicateDeliveries: 2 }),
  source: 'billing',
  logger: jsonLogger('error'),
  middleware: [log.middleware],
});

const users = [
  { userId: `u-${Date.now()}-1`, email: 'alice@example.com', name: 'alice', plan: 'free' as const },
  { userId: `u-${Date.now()}-2`, email: 'bob@example.com', name: 'bob', plan: 'enterprise' as const },
  { userId: `u-${Date.now()}-3`, email: 'mallory@example.com', name: 'mallory', plan: 'team' as const },
];
const ours = new Set(users.map((u) => u.userId));
const fast = { attempts: 3, backoff: { initialMs: 100, maxMs: 400 } };

bus.subscribe(
  UserSignedUp,
  (event, ctx) => {
    if (!ours.has(event.data.userId)) return;
    // The mail server times out once for bob: a transient failure, retried with backoff.
    if (event.data.name === 'bob' && ctx.attempt === 1) throw new Error('SMTP timeout');
    log.print('welcome-email', `sent welcome email to ${event.data.email} (attempt ${ctx.attempt})`);
  },
  { group: 'welcome-email', retry: fast },
);

billingBus.subscribe(
  UserSignedUp,
  async (event, ctx) => {
    if (!ours.has(event.data.userId)) return;
    // ctx.tx is the inbox's transaction: the customer row and the "handled" mark commit together.
    const tx = ctx.tx as { query(sql: string, params: unknown[]): Promise<unknown> };
    await tx.query('insert into billing_customers (user_id) values ($1)', [event.data.userId]);
    log.print('billing', `created billing customer for ${event.data.name}`);
  },
  { group: 'billing', idempotency: postgresInbox(app), concurrency: 2 },
);

bus.subscribe(
  UserSignedUp,
  (event) => {
    if (!ours.has(event.data.userId)) return;
    // A bug nobody can retry away: this event is poison for this group only.
    if (event.data.name === 'mallory') throw new Error('workspace name "mallory" is reserved');
    log.print('default-workspace', `created workspace "${event.data.name}-workspace"`);
  },
  { group: 'default-workspace', retry: fast },
);

bus.subscribe(
  UserSignedUp,
  (event) => {
    if (!ours.has(event.data.userId)) return;
    log.print(
      'sales-notification',
      event.data.plan === 'enterprise'
        ? `told sales about ${event.data.name} (enterprise)`
        : `no sales follow-up for ${event.data.name} (${event.data.plan})`,
    );
  },
  { group: 'sales-notification' },
);

bus.subscribe(
  UserSignedUp,
  (event) => {
    if (!ours.has(event.data.userId)) return;
    log.print('analytics', `recorded signup of ${event.data.name}`);
  },
  { group: 'analytics' },
);

await Promise.all([bus.start(), billingBus.start()]);
const relay = await startRelay({ database: app, transport: bus.transport, pollIntervalMs: 100 });

for (const user of users) {
  await app.transaction(async (tx) => {
    await tx.query('insert into users (id, email, name, plan) values ($1, $2, $3, $4)', [
      user.userId,
      user.email,
      user.name,
      user.plan,
    ]);
    await bus.publish(UserSignedUp, user, { tx, subject: user.userId });
  });
  log.summary.published++;
  log.print('signup-service', `${user.name} signed up (user row + event, one transaction)`);
}

const expected: Record<string, number> = {
  'welcome-email': 3,
  billing: 3,
  'default-workspace': 2,
  'sales-notification': 3,
  analytics: 3,
};
const done = () =>
  Object.entries(expected).every(([group, n]) => (log.handled.get(group) ?? 0) >= n) &&
  log.summary.deadLettered >= 1 &&
  log.summary.duplicatesAbsorbed >= 3;
try {
  await waitFor(done, {
    timeoutMs: 60_000,
    message: () => JSON.stringify({ handled: Object.fromEntries(log.handled), ...log.summary }),
  });
} finally {
  await relay.stop();
  await Promise.all([bus.close({ drainMs: 2000 }), billingBus.close({ drainMs: 2000 })]);
}

const customers = (await app.query<{ n: number }>('select count(*)::int as n from billing_customers'))
  .rows[0]!.n;
await app.close();

console.log('\nSummary');
console.log(`  published            ${log.summary.published}`);
for (const group of Object.keys(expected))
  console.log(`  handled ${group.padEnd(20)} ${log.handled.get(group) ?? 0}`);
console.log(`  retried              ${log.summary.retried}`);
console.log(`  dead-lettered        ${log.summary.deadLettered}  ${log.deadLetters.join('; ')}`);
console.log(
  `  duplicates absorbed  ${log.summary.duplicatesAbsorbed} (billing customers created: ${customers})`,
);
if (customers !== users.length) {
  console.error(`expected ${users.length} billing customers, found ${customers}`);
  process.exit(1);
}
