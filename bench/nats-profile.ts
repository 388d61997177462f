import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { nats } from '@eventwire/nats';
import { z } from 'zod';
const servers = 'nats://127.0.0.1:54222';
const total = 5000;
const prefix = `ewprof-${Math.random().toString(16).slice(2, 8)}`;
const Schema = z.object({ orderId: z.string(), totalCents: z.number().int(), note: z.string() });
const data = (n: number) => ({ orderId: `order-${n}`, totalCents: n * 7, note: 'benchmark payload of a typical size' });
for (const mode of (process.env.MODES ?? 'adapter,bus,adapter,bus').split(',')) {
  const topic = `prof.${mode}.${Math.random().toString(16).slice(2, 8)}`;
  const E = defineEvent({ type: 'bench.order_placed', version: 1, schema: Schema, topic });
  const producer = await createBus({ transport: nats({ servers, prefix }), source: 'b', logger: silentLogger });
  await producer.transport.ensureGroup(topic, 'g', 'beginning');
  for (let i = 0; i < total; i += 500) await producer.publishMany(E, Array.from({ length: 500 }, (_, k) => ({ data: data(i + k) })));
  await producer.close();
  const t = nats({ servers, prefix });
  let handled = 0;
  let done!: () => void;
  const fin = new Promise<void>((r) => (done = r));
  const started = performance.now();
  if (mode === 'adapter') {
    await t.connect();
    const sub = await t.subscribe({ topic, group: 'g', from: 'beginning', maxInFlight: 64, ordering: 'none', leaseMs: 30_000 }, (m) => {
      void m.ack().then(() => { if (++handled === total) done(); });
    });
    await fin;
    console.log(mode, Math.round(total / ((performance.now() - started) / 1000)), 'msg/s');
    await sub.close();
    await t.close();
  } else {
    const bus = await createBus({ transport: t, source: 'b', logger: silentLogger });
    bus.subscribe(E, () => { if (++handled === total) done(); }, { group: 'g', concurrency: 32, prefetch: 32 });
    await bus.start();
    await fin;
    console.log(mode, Math.round(total / ((performance.now() - started) / 1000)), 'msg/s');
    await bus.close();
  }
}
