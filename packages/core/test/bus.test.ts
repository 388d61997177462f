import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  createBus,
  defineEvent,
  type Middleware,
  memoryBroker,
  memoryTransport,
  resolveTransport,
} from '../src/index.ts';

const Pinged = defineEvent({ type: 'test.pinged', version: 1, schema: z.object({ n: z.number() }) });

describe('createBus', () => {
  test('needs a source', async () => {
    await expect(createBus({ url: 'memory:', source: '' })).rejects.toBeInstanceOf(ConfigError);
  });
  test('unknown schemes are a ConfigError that hides credentials', async () => {
    const error = await resolveTransport('mqtt://user:pw@host').catch((e) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).not.toContain('pw');
  });
  test('publish with { tx } and no outbox on a non-transactional transport is a ConfigError', async () => {
    const bus = await createBus({
      transport: memoryTransport({ broker: memoryBroker('bus-test-1') }),
      source: 't',
    });
    await expect(bus.publish(Pinged, { n: 1 }, { tx: {} })).rejects.toBeInstanceOf(ConfigError);
    await bus.close();
  });
  test('two handlers of one type in one group are refused', async () => {
    const bus = await createBus({
      transport: memoryTransport({ broker: memoryBroker('bus-test-2') }),
      source: 't',
    });
    bus.subscribe(Pinged, () => {}, { group: 'g' });
    expect(() => bus.subscribe(Pinged, () => {}, { group: 'g' })).toThrow(ConfigError);
    await bus.close();
  });
  test('middleware wraps publish and process, and observes outcomes', async () => {
    const seen: string[] = [];
    const middleware: Middleware = {
      async publish(envelopes, info, next) {
        seen.push(`publish ${info.topic} ${envelopes.length}`);
        await next();
      },
      async process(_envelope, info, next) {
        seen.push(`process ${info.group} attempt ${info.attempt}`);
        await next();
      },
      onRetry: (_e, info) => void seen.push(`retry ${info.delayMs >= 10}`),
      onHandled: (_e, info) => void seen.push(`handled duplicate=${info.duplicate}`),
    };
    const bus = await createBus({
      transport: memoryTransport({ broker: memoryBroker('bus-test-3') }),
      source: 't',
      middleware: [middleware],
    });
    let done!: () => void;
    const handled = new Promise<void>((r) => {
      done = r;
    });
    bus.subscribe(
      Pinged,
      (_e, ctx) => {
        if (ctx.attempt === 1) throw new Error('once');
        done();
      },
      { group: 'g', retry: { backoff: { initialMs: 10 } } },
    );
    await bus.start();
    await bus.publish(Pinged, { n: 1 });
    await handled;
    await bus.close();
    expect(seen).toEqual([
      'publish test.pinged 1',
      'process g attempt 1',
      'retry true',
      'process g attempt 2',
      'handled duplicate=false',
    ]);
  });
});
