/**
 * Publish rate of a PGlite bus publishing back to back (4 lanes, each awaiting its publish in a
 * loop, for 3 s), and the largest gap of a 10 ms interval meanwhile: what the driver's yield to
 * the event loop after each statement costs, and what it buys.
 *
 *   node --conditions=source packages/postgres/test/pglite-publish-rate.ts
 */
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { z } from 'zod';
import { pglite } from '../src/index.ts';

const Event = defineEvent({ type: 'rate.ping', version: 1, schema: z.object({ n: z.number() }) });
const transport = pglite();
const bus = await createBus({ transport, source: 'rate', logger: silentLogger });
await transport.ensureGroup(Event.topic, 'g', 'latest');
let last = performance.now();
let maxGapMs = 0;
const tick = setInterval(() => {
  maxGapMs = Math.max(maxGapMs, performance.now() - last);
  last = performance.now();
}, 10);
const began = performance.now();
let published = 0;
await Promise.all(
  Array.from({ length: 4 }, async () => {
    while (performance.now() - began < 3_000) {
      await bus.publish(Event, { n: published++ });
    }
  }),
);
const ms = performance.now() - began;
maxGapMs = Math.max(maxGapMs, performance.now() - last);
clearInterval(tick);
console.log(
  JSON.stringify({
    published,
    perSecond: Math.round((published / ms) * 1000),
    maxTimerGapMs: Math.round(maxGapMs),
  }),
);
await bus.close();
