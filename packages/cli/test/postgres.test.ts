import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll } from 'vitest';
import { describeBroker, POSTGRES_URL, requireBroker } from '../../../test/support/brokers.ts';

// The real Postgres server is shared: every run gets topics of its own. The fixture reads the
// suffix when it is imported, so it is set before the (dynamic) import of the tests.
const suffix = `.cli${randomUUID().slice(0, 8)}`;
process.env.FIXTURE_TOPIC_SUFFIX = suffix;
const { operationsTests } = await import('./operations.ts');

describeBroker('postgres', () => {
  operationsTests({ url: () => POSTGRES_URL, concurrent: true, suffix });

  // The Postgres transport has no deleteGroup yet, so tail's throwaway groups stay: remove this
  // run's topics (and those groups) so that the shared server does not keep fanning out to them.
  afterAll(async () => {
    if (!(await requireBroker('postgres'))) return;
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const topics = [`order.placed${suffix}`, `user.signed_up${suffix}`];
      await client.query(
        'delete from ew_deliveries where group_id in (select id from ew_groups where topic = any($1))',
        [topics],
      );
      await client.query('delete from ew_groups where topic = any($1)', [topics]);
      await client.query('delete from ew_messages where topic = any($1)', [topics]);
    } finally {
      await client.end();
    }
  });
});
