/**
 * Postgres: eventwire's table queue and outbox relay against a raw SQL SKIP LOCKED loop doing
 * the same work, on the same server, in the same run.
 *
 *   node --conditions=source bench/postgres.bench.ts [events=20000] [rounds=3]
 *
 * - transport (rounds alternating eventwire and raw; rates over all rounds): publish N events in batches of 500, then consume them (claim, handle, ack) with
 *   one subscription, concurrency 64 with 400 messages in flight at most. Raw: the same rows
 *   (message + one delivery row per registered group, NOTIFY) in batches of 500, then 4 workers
 *   claiming 100 deliveries at a time with FOR UPDATE SKIP LOCKED under a lease, reading their
 *   messages, and deleting the deliveries (the ack) before claiming again.
 * - relay: N rows in the outbox moved to the queue. Raw: claim 500 rows SKIP LOCKED, insert
 *   them into a target table, delete them, commit; repeat.
 */
import { randomUUID } from 'node:crypto';
import { createBus, defineEvent, encodeBinary, silentLogger } from '@eventwire/core';
import { migrate, postgres, startRelay } from '@eventwire/postgres';
import pg from 'pg';
import { z } from 'zod';

const url =
  process.env.EVENTWIRE_TEST_POSTGRES_URL ?? 'postgres://eventwire:eventwire@127.0.0.1:55432/eventwire';
const N = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const schema = `ew_bench_${randomUUID().slice(0, 8)}`;
const session = { options: `-c search_path=${schema}` };
const Event = defineEvent({
  type: 'bench.happened',
  version: 1,
  schema: z.object({ n: z.number(), pad: z.string() }),
});
const pad = 'x'.repeat(200);

const admin = new pg.Pool({ connectionString: url });
await admin.query(`create schema ${schema}`);
const pool = new pg.Pool({ connectionString: url, max: 10, ...session });

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return N / ((performance.now() - started) / 1000);
}

/** Milliseconds `work` takes. */
async function elapsed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

// --- eventwire transport
const driverPool = new pg.Pool({ connectionString: url, ...session });
const { driverFor } = await import('../packages/postgres/src/database.ts');
await migrate(driverFor(driverPool));

/** One round: N events published through a fresh bus, then consumed by one subscription. */
async function eventwireRound(): Promise<{ publishMs: number; consumeMs: number }> {
  const bus = await createBus({
    transport: postgres({ url, poolOptions: session }),
    source: 'bench',
    logger: silentLogger,
  });
  await bus.transport.ensureGroup(Event.topic, 'bench', 'latest');
  const publishMs = await elapsed(async () => {
    for (let start = 0; start < N; start += 500) {
      await bus.publishMany(
        Event,
        Array.from({ length: Math.min(500, N - start) }, (_, i) => ({ data: { n: start + i, pad } })),
      );
    }
  });
  let consumed = 0;
  let finished!: () => void;
  const allConsumed = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const consumeMs = await elapsed(async () => {
    bus.subscribe(
      Event,
      () => {
        if (++consumed === N) finished();
      },
      // The same window as the raw loop: 4 workers x 100 rows in flight.
      { group: 'bench', concurrency: 64, prefetch: 336 },
    );
    await bus.start();
    await allConsumed;
  });
  await bus.close();
  return { publishMs, consumeMs };
}

// --- raw SQL queue
// The same rows a Postgres queue with consumer groups needs by DESIGN.md: one row per message and
// one delivery row per (message, registered group) carrying attempts, `available_at` (retry
// delay), a lease and a status (dead letters are rows), written in one statement with a NOTIFY
// wake-up. What the raw loop leaves out is eventwire's own choices (the (topic, event id) unique
// index that makes publishing idempotent) and its client-side work (validate, encode, route).
await pool.query(
  `create table raw_messages (id bigserial primary key, topic text not null, headers jsonb not null, body bytea not null)`,
);
await pool.query(
  `create table raw_groups (topic text not null, group_name text not null, primary key (topic, group_name))`,
);
await pool.query(`create table raw_deliveries (group_name text not null, message_id bigint not null, status text not null default 'pending',
  attempts int not null default 0, available_at timestamptz not null default now(), lease_until timestamptz,
  primary key (message_id, group_name))`);
await pool.query(`create index on raw_deliveries (group_name, message_id) where status = 'pending'`);
await pool.query(`insert into raw_groups values ('t', 'bench')`);
// The raw loop writes the same bytes eventwire writes (CloudEvents headers, JSON body), prepared
// before the clock starts: what it skips is exactly eventwire's work (validate, encode).
const sample = encodeBinary({
  id: '01890a5d-ac96-774b-bcce-b302099a8057',
  type: Event.type,
  version: 1,
  source: 'bench',
  time: new Date().toISOString(),
  correlationId: '01890a5d-ac96-774b-bcce-b302099a8057',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  dataContentType: 'application/json',
  data: { n: 0, pad },
});
const body = Buffer.from(sample.body);

/** One round of the raw loop: the same N events, published then consumed. */
async function rawRound(round: number): Promise<{ publishMs: number; consumeMs: number }> {
  const rawHeaders = Array.from({ length: N }, (_, i) =>
    JSON.stringify({ ...sample.headers, id: `raw-${round}-${i}` }),
  );
  const publishMs = await elapsed(async () => {
    for (let start = 0; start < N; start += 500) {
      const count = Math.min(500, N - start);
      const values = Array.from(
        { length: count },
        (_, i) => `('t', $${i * 2 + 1}::jsonb, $${i * 2 + 2}::bytea)`,
      ).join(',');
      const params = Array.from({ length: count }, (_, i) => [rawHeaders[start + i], body]).flat();
      await pool.query(
        `with m as (insert into raw_messages (topic, headers, body) values ${values} returning id, topic),
         d as (insert into raw_deliveries (group_name, message_id) select g.group_name, m.id from m join raw_groups g on g.topic = m.topic)
         select pg_notify('raw_t', '')`,
        params,
      );
    }
  });
  let rawDone = 0;
  const consumeMs = await elapsed(async () => {
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (rawDone < N) {
          // Claim: lease 100 ready deliveries SKIP LOCKED and read their messages, one statement.
          const { rows } = await pool.query<{ id: string; headers: unknown; body: Buffer }>(
            `with c as (
               update raw_deliveries d set attempts = attempts + 1, lease_until = now() + interval '30 seconds'
               from (select message_id from raw_deliveries
                     where group_name = 'bench' and status = 'pending' and available_at <= now()
                       and (lease_until is null or lease_until < now())
                     order by message_id limit 100 for update skip locked) r
               where d.group_name = 'bench' and d.message_id = r.message_id returning d.message_id)
             select m.id::text, m.headers, m.body from c join raw_messages m on m.id = c.message_id`,
          );
          if (rows.length === 0) continue;
          for (const row of rows) JSON.parse(row.body.toString());
          // Ack: the delivery rows go, committed before the worker claims again.
          await pool.query(
            `delete from raw_deliveries where group_name = 'bench' and message_id = any($1::bigint[])`,
            [rows.map((r) => r.id)],
          );
          rawDone += rows.length;
        }
      }),
    );
  });
  return { publishMs, consumeMs };
}

// Rounds alternate eventwire and raw (which goes first alternates too), so that load from
// elsewhere on the machine drifting during the run weighs on both sides alike.
const totals = { ewPublish: 0, ewConsume: 0, rawPublish: 0, rawConsume: 0 };
const perRound: string[] = [];
const roundRatios = { publish: [] as number[], consume: [] as number[] };
for (let round = 0; round < ROUNDS; round++) {
  const first = round % 2 === 0 ? 'eventwire' : 'raw';
  const ew = first === 'eventwire' ? await eventwireRound() : undefined;
  const raw = await rawRound(round);
  const ew2 = ew ?? (await eventwireRound());
  totals.ewPublish += ew2.publishMs;
  totals.ewConsume += ew2.consumeMs;
  totals.rawPublish += raw.publishMs;
  totals.rawConsume += raw.consumeMs;
  roundRatios.publish.push(raw.publishMs / ew2.publishMs);
  roundRatios.consume.push(raw.consumeMs / ew2.consumeMs);
  perRound.push(
    `round ${round + 1}: publish ${(raw.publishMs / ew2.publishMs).toFixed(2)}, consume ${(raw.consumeMs / ew2.consumeMs).toFixed(2)}`,
  );
}
const rate = (ms: number) => (N * ROUNDS) / (ms / 1000);
const ewPublish = rate(totals.ewPublish);
const ewConsume = rate(totals.ewConsume);
const rawPublish = rate(totals.rawPublish);
const rawConsume = rate(totals.rawConsume);

// --- outbox relay
await pool.query(
  `insert into ew_outbox (topic, event_id, headers, body) select 'bench.relay', gen_random_uuid()::text, '{"specversion":"1.0"}'::jsonb, $1::bytea from generate_series(1, $2)`,
  [body, N],
);
const target = postgres({ url, poolOptions: session });
await target.connect();
const relay = await startRelay({
  database: driverPool,
  transport: target,
  batchSize: 500,
  logger: silentLogger,
});
const ewRelay = await timed(async () => {
  while (relay.relayed < N) await relay.drain();
});
await relay.stop();
await target.close();

await pool.query(
  `create table raw_outbox (id bigserial primary key, topic text, event_id text, headers jsonb, body bytea)`,
);
await pool.query(
  `create table raw_target (id bigserial primary key, topic text, event_id text, headers jsonb, body bytea)`,
);
await pool.query(
  `insert into raw_outbox (topic, event_id, headers, body) select 'bench.relay', gen_random_uuid()::text, '{"specversion":"1.0"}'::jsonb, $1::bytea from generate_series(1, $2)`,
  [body, N],
);
const rawRelay = await timed(async () => {
  for (;;) {
    const client = await pool.connect();
    try {
      await client.query('begin');
      const { rows } = await client.query<{
        id: string;
        topic: string;
        event_id: string;
        headers: unknown;
        body: Buffer;
      }>(
        'select id::text, topic, event_id, headers, body from raw_outbox order by id limit 500 for update skip locked',
      );
      if (rows.length === 0) {
        await client.query('commit');
        break;
      }
      const ids = rows.map((r) => r.id);
      // Through the client, as a relay to any broker must: fetch the rows, write them out.
      const values = rows.map(
        (_, i) => `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}::jsonb, $${i * 4 + 4}::bytea)`,
      );
      await client.query(
        `insert into raw_target (topic, event_id, headers, body) values ${values.join(',')}`,
        rows.flatMap((r) => [r.topic, r.event_id, JSON.stringify(r.headers), r.body]),
      );
      await client.query('delete from raw_outbox where id = any($1::bigint[])', [ids]);
      await client.query('commit');
    } finally {
      client.release();
    }
  }
});

await pool.end();
await driverPool.end();
await admin.query(`drop schema ${schema} cascade`);
await admin.end();

const row = (name: string, ew: number, raw: number) =>
  `| ${name.padEnd(22)} | ${Math.round(ew).toLocaleString('en').padStart(9)} | ${Math.round(raw).toLocaleString('en').padStart(9)} | ${(ew / raw).toFixed(2)} |`;
console.log(
  `\nPostgres, ${ROUNDS} rounds of ${N.toLocaleString('en')} events of ~230 bytes (relay: one round), events/s\n`,
);
console.log('| path                   | eventwire |   raw SQL | ratio |');
console.log('|------------------------|-----------|-----------|-------|');
console.log(row('transport publish', ewPublish, rawPublish));
console.log(row('transport consume', ewConsume, rawConsume));
console.log(row('outbox relay', ewRelay, rawRelay));
console.log(`\neventwire / raw per round: ${perRound.join('; ')}`);
// One slow round (a checkpoint, another process) moves the totals above; the median round does not.
const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor((values.length - 1) / 2)]!;
console.log(
  `median round: publish ${median(roundRatios.publish).toFixed(2)}, consume ${median(roundRatios.consume).toFixed(2)}`,
);
