import pg from 'pg';
import { POSTGRES_URL } from '../support/brokers.ts';
import { privatePostgres } from './support/private-brokers.ts';
import { defineFaultSuite } from './support/suite.ts';

defineFaultSuite({
  broker: 'postgres',
  // broker kill -9 and start: a private Postgres (initdb into a temp dir) on a free port (never the shared one)
  brokerKill: privatePostgres,
  // queryTimeoutMs (5 s), or connectTimeoutMs + queryTimeoutMs (10 s) when the pool must open a
  // connection first (packages/postgres README, "Deadlines").
  publishBoundMs: 10_000,
  // The lease is 30 s (see the consumer-kill test); expired leases are claimed on the next poll.
  // (Issue 16 (1) stranded claims and (2) no publish deadline were known defects here until
  // 2e06561: a lost claim reply's rows now come back after their lease, publish has a deadline.)
  redeliveryMs: 35_000,
  // Where the lost events are: no message row (never written), no delivery row (deleted as if
  // acked), or a delivery still pending/leased.
  async inspect(eventIds) {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    try {
      const { rows } = await pool.query(
        `select e.id as event_id, m.id is not null as message_row, d.status, d.attempts,
                d.leased_by is not null as leased,
                round(extract(epoch from d.lease_until - now()))::int as lease_left_s,
                round(extract(epoch from now() - d.updated_at))::int as updated_s_ago
           from unnest($1::text[]) as e(id)
           left join ew_messages m on m.event_id = e.id
           left join ew_deliveries d on d.message_id = m.id`,
        [eventIds],
      );
      return rows;
    } catch (error) {
      return String(error);
    } finally {
      await pool.end();
    }
  },
});
