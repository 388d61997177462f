/**
 * Core alone: how many events per second the consumer path (decode, route, validate, handler,
 * settle) handles when the transport costs nothing. Every adapter's consume ratio is bounded by it.
 * Prints wall-clock µs/event and this process's CPU µs/event (user + system): on a shared,
 * loaded machine the CPU figure is the steadier one.
 *
 *   node --conditions=source bench/core-consume.bench.ts [events]
 */
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { Credits, encodeBinary, settleOnce, type Transport } from '@eventwire/core/transport';
import { z } from 'zod';

const Event = defineEvent({
  type: 'bench.happened',
  version: 1,
  schema: z.object({ n: z.number(), pad: z.string() }),
});
const N = Number(process.argv[2] ?? 100_000);
const wire = encodeBinary({
  id: 'x',
  type: Event.type,
  version: 1,
  source: 's',
  time: new Date().toISOString(),
  correlationId: 'x',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  dataContentType: 'application/json',
  data: { n: 1, pad: 'x'.repeat(200) },
});
let finished!: () => void;
const done = new Promise<void>((r) => (finished = r));
let handled = 0;
const transport: Transport = {
  name: 'null',
  capabilities: {
    ordering: 'partition',
    nativeDelay: true,
    replay: false,
    maxMessageBytes: 1e6,
    wireMode: 'binary',
    transactionalPublish: false,
  },
  deadLetters: { list: async () => [], replay: async () => 0, purge: async () => 0 },
  connect: async () => {},
  publish: async () => {},
  ensureGroup: async () => {},
  health: async () => ({ status: 'up' }),
  close: async () => {},
  async subscribe(spec, onMessage) {
    const credits = new Credits(spec.maxInFlight);
    let sent = 0;
    const pump = () => {
      while (credits.available() > 0 && sent < N) {
        credits.take();
        sent++;
        const headers = { ...wire.headers, id: `id-${sent}` };
        onMessage({
          headers,
          body: wire.body,
          attempt: 1,
          ...settleOnce({ ack: async () => {}, retry: async () => {}, deadLetter: async () => {} }, () => {
            credits.give();
            queueMicrotask(pump);
          }),
        });
      }
    };
    pump();
    return { close: async () => {} };
  },
};
const bus = await createBus({ transport, source: 'b', logger: silentLogger });
const t = performance.now();
const cpu = process.cpuUsage();
bus.subscribe(
  Event,
  () => {
    if (++handled === N) finished();
  },
  { group: 'g', concurrency: 64 },
);
await bus.start();
await done;
const s = (performance.now() - t) / 1000;
const used = process.cpuUsage(cpu);
console.log(
  'core consume ev/s',
  Math.round(N / s),
  'us/event',
  ((s * 1e6) / N).toFixed(1),
  'cpu us/event',
  ((used.user + used.system) / N).toFixed(1),
);
await bus.close({ drainMs: 0 });
