/**
 * eventwire on Redis Streams against raw ioredis, same server, same run.
 *
 *   node --conditions=source bench/redis.bench.ts [count]
 *
 * Publish: `count` events in batches of 100, 8 batches in flight. Raw: a pipeline of 100 XADD
 * with the same fields eventwire writes (CloudEvents attributes including a traceparent, and
 * `data`), built by hand. eventwire: `bus.publishMany` (schema validation, envelope, encoding,
 * then XADD).
 * Consume: `count` events already in the stream, one consumer group; time until all are handled.
 * Raw: XREADGROUP COUNT 100 BLOCK 1000 on a blocking connection, JSON.parse of each body, one
 * XACK per batch. eventwire: `bus.subscribe` with concurrency 100 (a window of 200 messages, so
 * that the adapter reads COUNT 100 like the raw loop) and BLOCK 1000: decode, validation, handler,
 * one XACK per batch of settles.
 * Rounds alternate raw and eventwire. The table keeps each side's best round and the median of
 * the per-round ratios (raw and eventwire of one round ran seconds apart, so that ratio is the
 * least affected by other load on a shared machine).
 */
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { childTraceparent, createBus, silentLogger } from '@eventwire/core';
import { redis } from '@eventwire/redis';
import { Redis } from 'ioredis';
import { encodeOrderPlaced, orderData, orderPlaced } from './order-placed.ts';

const url = process.env.EVENTWIRE_TEST_REDIS_URL ?? 'redis://127.0.0.1:56379';
const count = Number(process.argv[2] ?? 20_000);
const BATCH = 100;
const IN_FLIGHT = 8;
const run = randomUUID().slice(0, 8);

/** The same fields eventwire writes for an event, built by hand as a raw producer would. */
function rawFields(n: number): (string | Buffer)[] {
  const wire = encodeOrderPlaced(n, { traceparent: childTraceparent() });
  const fields: (string | Buffer)[] = [];
  for (const [k, v] of Object.entries(wire.headers)) fields.push(k, v);
  fields.push('data', Buffer.from(wire.body));
  return fields;
}

async function pool(total: number, work: (start: number, size: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < total) {
        const start = next;
        next += BATCH;
        await work(start, Math.min(BATCH, total - start));
      }
    }),
  );
}

/** Events per second of wall time; also records this process's CPU µs per event. */
const cpuPerEvent: number[] = [];
async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  await work();
  const used = process.cpuUsage(cpu);
  cpuPerEvent.push((used.user + used.system) / count);
  return (count / (performance.now() - started)) * 1000;
}

const client = new Redis(url);
const streams: string[] = [];

async function rawPublish(stream: string): Promise<number> {
  streams.push(stream);
  return timed(() =>
    pool(count, async (start, size) => {
      const pipeline = client.pipeline();
      for (let i = 0; i < size; i++) pipeline.xadd(stream, '*', ...rawFields(start + i));
      const results = await pipeline.exec();
      if (results?.some(([error]) => error)) throw new Error('XADD failed');
    }),
  );
}

async function rawConsume(stream: string, group: string): Promise<number> {
  const reader = client.duplicate();
  try {
    return await timed(async () => {
      let handled = 0;
      while (handled < count) {
        const reply = (await reader.xreadgroupBuffer(
          'GROUP',
          group,
          'c1',
          'COUNT',
          BATCH,
          'BLOCK',
          1000,
          'STREAMS',
          stream,
          '>',
        )) as [Buffer, [Buffer, Buffer[]][]][] | null;
        const entries = reply?.[0]?.[1] ?? [];
        for (const [, fields] of entries) {
          for (let i = 0; i < fields.length; i += 2)
            if (fields[i]!.toString() === 'data') JSON.parse(fields[i + 1]!.toString());
        }
        if (entries.length > 0) await client.xack(stream, group, ...entries.map(([id]) => id));
        handled += entries.length;
      }
    });
  } finally {
    reader.disconnect();
  }
}

async function eventwirePublish(topic: string): Promise<number> {
  const Event = orderPlaced(topic);
  streams.push(`ew:{${topic}}`);
  const bus = await createBus({
    source: 'bench',
    transport: redis({ url, logger: silentLogger, trim: false }),
    logger: silentLogger,
  });
  try {
    return await timed(() =>
      pool(count, async (start, size) => {
        await bus.publishMany(
          Event,
          Array.from({ length: size }, (_, i) => ({ data: orderData(start + i) })),
        );
      }),
    );
  } finally {
    await bus.close();
  }
}

async function eventwireConsume(topic: string, group: string): Promise<number> {
  const Event = orderPlaced(topic);
  const bus = await createBus({
    source: 'bench',
    transport: redis({ url, logger: silentLogger, trim: false, blockMs: 1000 }),
    logger: silentLogger,
  });
  try {
    let handled = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    return await timed(async () => {
      const sub = bus.subscribe(Event, () => void (++handled === count && done()), {
        group,
        concurrency: 100,
      });
      await bus.start();
      await sub.ready;
      await finished;
    });
  } finally {
    await bus.close({ drainMs: 1000 });
  }
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const rates = {
  rawPub: [] as number[],
  ewPub: [] as number[],
  rawCon: [] as number[],
  ewCon: [] as number[],
};
const cpu = { rawPub: [] as number[], ewPub: [] as number[], rawCon: [] as number[], ewCon: [] as number[] };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
try {
  // Rounds alternate raw and eventwire so that background load on a shared machine hits both
  // alike; the table keeps each one's best round (the least disturbed) and the median of the
  // per-round ratios; CPU is the median.
  for (let round = 0; round < ROUNDS; round++) {
    const rawStream = `ew-bench-raw-${run}-${round}`;
    await client.xgroup('CREATE', rawStream, 'g', '$', 'MKSTREAM');
    const ewTopic = `ew-bench-${run}-${round}`;
    await client.xgroup('CREATE', `ew:{${ewTopic}}`, 'g', '$', 'MKSTREAM');
    const step = async (key: keyof typeof rates, work: () => Promise<number>) => {
      rates[key].push(await work());
      cpu[key].push(cpuPerEvent.at(-1)!);
    };
    await step('rawPub', () => rawPublish(rawStream));
    await step('ewPub', () => eventwirePublish(ewTopic));
    await step('rawCon', () => rawConsume(rawStream, 'g'));
    await step('ewCon', () => eventwireConsume(ewTopic, 'g'));
  }
  const server = ((await client.info('server')).match(/redis_version:(\S+)/) ?? [])[1];
  console.log(
    `redis ${server}, ${count} events x ${ROUNDS} rounds, node ${process.version}, ${cpus().length} CPU (${cpus()[0]?.model ?? '?'})\n`,
  );
  console.log(
    '| operation | raw ioredis (events/s) | eventwire (events/s) | ratio of bests | median per-round ratio | per-round ratios | CPU µs/event raw | CPU µs/event eventwire |',
  );
  console.log('|---|---:|---:|---:|---:|---|---:|---:|');
  const row = (what: string, raw: number[], ew: number[], rawCpu: number[], ewCpu: number[]) => {
    const perRound = ew.map((e, i) => e / raw[i]!);
    console.log(
      `| ${what} | ${Math.round(Math.max(...raw))} | ${Math.round(Math.max(...ew))} | ${(Math.max(...ew) / Math.max(...raw)).toFixed(2)} | ${median(perRound).toFixed(2)} | ${perRound.map((r) => r.toFixed(2)).join(' ')} | ${median(rawCpu).toFixed(0)} | ${median(ewCpu).toFixed(0)} |`,
    );
  };
  row('publish', rates.rawPub, rates.ewPub, cpu.rawPub, cpu.ewPub);
  row('consume', rates.rawCon, rates.ewCon, cpu.rawCon, cpu.ewCon);
} finally {
  if (streams.length) await client.del(...streams);
  client.disconnect();
}
