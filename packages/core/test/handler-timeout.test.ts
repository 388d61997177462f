import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { Deadlines } from '../src/deadlines.ts';
import { createBus, defineEvent, HandlerTimeoutError, memoryBroker, memoryTransport } from '../src/index.ts';

const Pinged = defineEvent({ type: 'test.pinged', version: 1, schema: z.object({ n: z.number() }) });

describe('handler timeout', () => {
  test('a handler past its timeout sees its signal abort with HandlerTimeoutError and is retried', async () => {
    const bus = await createBus({
      transport: memoryTransport({ broker: memoryBroker('timeout-test-1') }),
      source: 't',
    });
    const attempts: { attempt: number; reason: unknown; elapsedMs: number }[] = [];
    let done!: () => void;
    const retried = new Promise<void>((resolve) => {
      done = resolve;
    });
    bus.subscribe(
      Pinged,
      async (_event, ctx) => {
        if (ctx.attempt > 1) {
          done();
          return;
        }
        const started = performance.now();
        // Never finishes on its own: only the timeout ends it.
        const reason = await new Promise((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason), { once: true }),
        );
        attempts.push({ attempt: ctx.attempt, reason, elapsedMs: performance.now() - started });
        await new Promise(() => {});
      },
      { group: 'g', timeoutMs: 100, retry: { backoff: { initialMs: 10 } } },
    );
    await bus.start();
    await bus.publish(Pinged, { n: 1 });
    await retried;
    await bus.close({ drainMs: 0 });
    expect(attempts).toHaveLength(1);
    expect(attempts[0]!.reason).toBeInstanceOf(HandlerTimeoutError);
    expect(attempts[0]!.elapsedMs).toBeGreaterThanOrEqual(99);
  });

  test('handlers with different timeouts each expire at their own deadline, finished ones never', async () => {
    const deadlines = new Deadlines<{ deadline: number; expire(): void }>();
    const expired: string[] = [];
    const item = (name: string, inMs: number) => {
      let expire!: () => void;
      const whenExpired = new Promise<void>((resolve) => {
        expire = () => {
          expired.push(name);
          resolve();
        };
      });
      return { deadline: performance.now() + inMs, expire, whenExpired };
    };
    const long = item('long', 120);
    const short = item('short', 30);
    const finished = item('finished', 10);
    deadlines.add(long);
    deadlines.add(short);
    deadlines.add(finished);
    deadlines.delete(finished);
    await short.whenExpired;
    expect(expired).toEqual(['short']);
    expect(performance.now()).toBeGreaterThanOrEqual(short.deadline);
    await long.whenExpired;
    expect(expired).toEqual(['short', 'long']);
    expect(performance.now()).toBeGreaterThanOrEqual(long.deadline);
    deadlines.clear();
  });
});
