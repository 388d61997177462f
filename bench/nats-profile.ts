/**
 * Where the consume time goes on NATS: the adapter alone (transport `subscribe`, ack in the
 * callback, no core) against the full bus (decode, validation, routing, ack) on the same server,
 * alternating. Used to tell the adapter's cost from core's when reading bench/nats.bench.ts.
 *
 *   node --conditions=source bench/nats-profile.ts          (MODES=adapter,bus,... to choose)
 */
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { nats } from '@eventwire/nats';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { z } from 'zod';

const servers = (process.env.EVENTWIRE_TEST_NATS_URL ?? 'nats://127.0.0.1:54222').split(',');
const total = Number(process.argv[2] ?? 5_000);
const prefix = `ewprof-${Math.random().toString(16).slice(2, 8)}`;
const Schema = z.object({ orderId: z.string(), totalCents: z.number().int(), note: z.string() });
const data = (n: number) => ({
  orderId: `order-${n}`,
  totalCents: n * 7,
  note: 'benchmark payload of a typical size',
});

try {
  for (const mode of (process.env.MODES ?? 'adapter,bus,adapter,bus').split(',')) {
    const topic = `prof.${mode}.${Math.random().toString(16).slice(2, 8)}`;
    const Event = defineEvent({ type: 'bench.order_placed', version: 1, schema: Schema, topic });
    const producer = await createBus({
      transport: nats({ servers, prefix }),
      source: 'bench',
      logger: silentLogger,
    });
    await producer.transport.ensureGroup(topic, 'g', 'beginning');
    for (let i = 0; i < total; i += 500) {
      await producer.publishMany(
        Event,
        Array.from({ length: Math.min(500, total - i) }, (_, k) => ({ data: data(i + k) })),
      );
    }
    await producer.close();
    const transport = nats({ servers, prefix });
    let handled = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    const started = performance.now();
    if (mode === 'adapter') {
      await transport.connect();
      const spec = {
        topic,
        group: 'g',
        from: 'beginning' as const,
        maxInFlight: 64,
        ordering: 'none' as const,
        leaseMs: 30_000,
      };
      const sub = await transport.subscribe(spec, (m) => {
        void m.ack().then(() => {
          if (++handled === total) done();
        });
      });
      await finished;
      console.log(mode, Math.round(total / ((performance.now() - started) / 1000)), 'msg/s');
      await sub.close();
      await transport.close();
    } else {
      const bus = await createBus({ transport, source: 'bench', logger: silentLogger });
      bus.subscribe(
        Event,
        () => {
          if (++handled === total) done();
        },
        { group: 'g', concurrency: 32, prefetch: 32 },
      );
      await bus.start();
      await finished;
      console.log(mode, Math.round(total / ((performance.now() - started) / 1000)), 'msg/s');
      await bus.close();
    }
  }
} finally {
  const nc = await connect({ servers });
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names())
    if (name.startsWith(prefix)) await jsm.streams.delete(name).catch(() => {});
  await nc.close();
}
