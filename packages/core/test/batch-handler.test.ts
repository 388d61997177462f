import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  createBus,
  defineEvent,
  memoryBroker,
  memoryTransport,
  silentLogger,
} from '../src/index.ts';

const Ping = defineEvent({ type: 'test.batch', version: 1, schema: z.object({ n: z.number() }) });

async function bus(name: string) {
  return createBus({
    transport: memoryTransport({ broker: memoryBroker(name) }),
    source: 't',
    logger: silentLogger,
  });
}

/** Resolves when `check` holds, polling; rejects after `ms`. */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('subscribeBatch', () => {
  test('a lone event runs as a batch of one after maxWaitMs, not before', async () => {
    const b = await bus('batch-wait');
    const batches: { size: number; at: number }[] = [];
    b.subscribeBatch(Ping, (events) => void batches.push({ size: events.length, at: Date.now() }), {
      group: 'g',
      maxBatch: 10,
      maxWaitMs: 300,
    });
    await b.start();
    const sent = Date.now();
    await b.publish(Ping, { n: 1 });
    await until(() => batches.length === 1);
    expect(batches[0]!.size).toBe(1);
    expect(batches[0]!.at - sent).toBeGreaterThanOrEqual(290);
    await b.close();
  });

  test('a full batch runs at once; a throw fails every event of it, each retried on its own', async () => {
    const b = await bus('batch-throw');
    const seen: number[][] = [];
    let firstAt = 0;
    b.subscribeBatch(
      Ping,
      (events, ctx) => {
        firstAt ||= Date.now();
        seen.push(events.map((e) => ctx.of(e).attempt));
        if (seen.length === 1) throw new Error('whole batch fails');
      },
      {
        group: 'g',
        maxBatch: 5,
        maxWaitMs: 10_000,
        retry: { backoff: { initialMs: 10, maxMs: 10, jitter: 'none' } },
      },
    );
    await b.start();
    const sent = Date.now();
    await b.publishMany(
      Ping,
      [1, 2, 3, 4, 5].map((n) => ({ data: { n } })),
    );
    await until(() => seen.flat().filter((a) => a === 2).length === 5, 10_000);
    expect(seen[0]).toEqual([1, 1, 1, 1, 1]);
    // Full: it did not wait out maxWaitMs.
    expect(firstAt - sent).toBeLessThan(1_000);
    await b.close();
  });

  test('bad options are ConfigErrors naming the option', async () => {
    const b = await bus('batch-options');
    expect(() => b.subscribeBatch(Ping, () => {}, { group: 'g', maxBatch: 0 })).toThrow(
      'subscribeBatch(test.batch): maxBatch must be an integer from 1 to 10000, not 0',
    );
    expect(() => b.subscribeBatch(Ping, () => {}, { group: 'g', maxWaitMs: -1 })).toThrow(ConfigError);
    expect(() => b.subscribeBatch(Ping, () => {}, { group: 'g', concurrency: 1.5 })).toThrow(
      'subscribeBatch(test.batch): concurrency must be an integer >= 1, not 1.5',
    );
    await b.close();
  });
});
