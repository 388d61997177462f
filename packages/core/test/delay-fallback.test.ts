import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import {
  createBus,
  defineEvent,
  type IncomingMessage,
  memoryBroker,
  memoryTransport,
  silentLogger,
  type Transport,
} from '../src/index.ts';

const Ping = defineEvent({ type: 'test.ping', version: 1, schema: z.object({ n: z.number() }) });

/** A memory transport that says it cannot hold a delayed retry, and counts what core asks of it. */
function withoutNativeDelay(): { transport: Transport; retries: number[] } {
  const inner = memoryTransport({ broker: memoryBroker('delay-fallback') });
  const retries: number[] = [];
  const transport: Transport = {
    ...inner,
    capabilities: { ...inner.capabilities, nativeDelay: false },
    subscribe: (spec, onMessage) =>
      inner.subscribe(spec, (message: IncomingMessage) =>
        onMessage({
          ...message,
          retry: (delayMs) => {
            retries.push(delayMs);
            return message.retry(delayMs);
          },
        }),
      ),
  };
  return { transport, retries };
}

describe('a transport without nativeDelay', () => {
  test('core holds a delayed retry in this process and runs it as the next attempt; the transport is never asked', async () => {
    const { transport, retries } = withoutNativeDelay();
    const bus = await createBus({ transport, source: 't', logger: silentLogger });
    const attempts: number[] = [];
    let finish!: () => void;
    const done = { promise: new Promise<void>((resolve) => (finish = resolve)), resolve: () => finish() };
    bus.subscribe(
      Ping,
      async (_event, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw new Error('not yet');
        done.resolve();
      },
      { group: 'g', retry: { attempts: 5, backoff: { initialMs: 20, maxMs: 20, jitter: 'none' } } },
    );
    await bus.start();
    await bus.publish(Ping, { n: 1 });
    await Promise.race([
      done.promise,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`not handled in 5 s: ${attempts} ${retries}`)), 5000),
      ),
    ]);
    expect(attempts).toEqual([1, 2, 3]);
    expect(retries).toEqual([]);
    await bus.close();
  });
});
