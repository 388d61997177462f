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
  TransportError,
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

describe('group settings and option checks', () => {
  // Both types on one topic: one (topic, group) consumer serves both handlers.
  const Pinged = defineEvent({
    type: 'test.pinged',
    version: 1,
    schema: z.object({ n: z.number() }),
    topic: 'test.shared',
  });
  const Other = defineEvent({
    type: 'test.ponged',
    version: 1,
    schema: z.object({ n: z.number() }),
    topic: 'test.shared',
  });
  test('two handlers of a group with different concurrency: a ConfigError naming both', async () => {
    const bus = await createBus({
      transport: memoryTransport({ broker: memoryBroker('bus-test-g1') }),
      source: 't',
    });
    bus.subscribe(Pinged, () => {}, { group: 'g', concurrency: 8 });
    expect(() => bus.subscribe(Other, () => {}, { group: 'g', concurrency: 4 })).toThrow(
      /concurrency 4 conflicts with 8 set by subscribe\(test\.pinged\)/,
    );
    // The same value, or none, is fine; another group is independent.
    bus.subscribe(Other, () => {}, { group: 'g', concurrency: 8, ordering: 'key' });
    bus.subscribe(Other, () => {}, { group: 'h', concurrency: 2 });
    await bus.close();
  });
  test('a group setting given only after the consumer started is refused', async () => {
    const bus = await createBus({
      transport: memoryTransport({ broker: memoryBroker('bus-test-g2') }),
      source: 't',
    });
    await bus.start();
    await bus.subscribe(Pinged, () => {}, { group: 'g' }).ready;
    expect(() => bus.subscribe(Other, () => {}, { group: 'g', ordering: 'key' })).toThrow(
      /after the consumer/,
    );
    await bus.close();
  });
  test('a later handler does not inherit the retry policy of the first', async () => {
    const broker = memoryBroker('bus-test-g3');
    const bus = await createBus({ transport: memoryTransport({ broker }), source: 't' });
    const attempts: number[] = [];
    bus.subscribe(Pinged, () => {}, { group: 'g', retry: { attempts: 1 } });
    bus.subscribe(
      Other,
      (_e, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw new Error('again');
      },
      // No retry policy of its own: the default (5 attempts), not the first handler's single one.
      { group: 'g' },
    );
    await bus.start();
    await bus.publish(Other, { n: 1 });
    const deadline = Date.now() + 5000;
    while (attempts.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(attempts).toEqual([1, 2, 3]);
    expect(await bus.deadLetters(Other, 'g').list()).toEqual([]);
    await bus.close();
  });
  test('numeric options out of range name the option, the value and the range', async () => {
    const bus = await createBus({
      transport: memoryTransport({ broker: memoryBroker('bus-test-g4') }),
      source: 't',
    });
    expect(() => bus.subscribe(Pinged, () => {}, { group: 'g', concurrency: Number.NaN })).toThrow(
      'subscribe(test.pinged): concurrency must be an integer >= 1, not NaN',
    );
    expect(() => bus.subscribe(Pinged, () => {}, { group: '' })).toThrow(ConfigError);
    await expect(bus.close({ drainMs: -5 })).rejects.toThrow('bus.close: drainMs must be an integer from 0');
    await bus.close();
  });
});

describe('process middleware sees the outcome', () => {
  test('next() resolves to what core decided: acked, retry with its delay, dead letter with its reason', async () => {
    const outcomes: string[] = [];
    const middleware: Middleware = {
      async process(_envelope, info, next) {
        const outcome = await next();
        outcomes.push(
          outcome.status === 'retry'
            ? `${info.attempt} retry ${outcome.delayMs}`
            : outcome.status === 'dead_letter'
              ? `${info.attempt} dead_letter ${outcome.reason}`
              : `${info.attempt} ${outcome.status}`,
        );
        return outcome;
      },
    };
    const bus = await createBus({
      transport: memoryTransport({ broker: memoryBroker('bus-test-outcome') }),
      source: 't',
      middleware: [middleware],
    });
    bus.subscribe(
      Pinged,
      (e, ctx) => {
        if (e.data.n === 2 && ctx.attempt < 2) throw new Error('once');
        if (e.data.n === 3) throw new Error('always');
      },
      { group: 'g', retry: { attempts: 2, backoff: { initialMs: 5, maxMs: 5, jitter: 'none' } } },
    );
    await bus.start();
    await bus.publishMany(Pinged, [{ data: { n: 1 } }, { data: { n: 2 } }, { data: { n: 3 } }]);
    const deadline = Date.now() + 5000;
    while (outcomes.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(outcomes.sort()).toEqual([
      '1 acked',
      '1 retry 5',
      '1 retry 5',
      '2 acked',
      '2 dead_letter max_attempts',
    ]);
    await bus.close();
  });
  test('a hook that never calls next() fails the attempt instead of acknowledging', async () => {
    const bus = await createBus({
      transport: memoryTransport({ broker: memoryBroker('bus-test-no-next') }),
      source: 't',
      middleware: [{ process: async () => {} }],
    });
    let ran = false;
    bus.subscribe(
      Pinged,
      () => {
        ran = true;
      },
      { group: 'g', retry: { attempts: 1 } },
    );
    await bus.start();
    await bus.publish(Pinged, { n: 1 });
    const dead = bus.deadLetters(Pinged, 'g');
    const deadline = Date.now() + 5000;
    while ((await dead.list()).length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    expect(ran).toBe(false);
    expect((await dead.list())[0]?.error.message).toContain('without calling next()');
    await bus.close();
  });
});

test('a publish hook that never calls next() rejects the publish instead of resolving unsent', async () => {
  const broker = memoryBroker('bus-test-publish-no-next');
  const bus = await createBus({
    transport: memoryTransport({ broker }),
    source: 't',
    middleware: [{ publish: async () => {} }],
  });
  await expect(bus.publish(Pinged, { n: 1 })).rejects.toThrow('without calling next()');
  await bus.close();
});

test('close() is bounded: a transport that never finishes closing makes it reject with a TransportError', async () => {
  const transport = memoryTransport({ broker: memoryBroker('bus-test-hung-close') });
  // A broker behind a silent partition: the close call is never answered.
  transport.close = () => new Promise<void>(() => {});
  const bus = await createBus({ transport, source: 't', closeTimeoutMs: 200 });
  const started = performance.now();
  const error = await bus.close({ drainMs: 0 }).catch((e: unknown) => e as Error);
  const took = performance.now() - started;
  expect(error).toBeInstanceOf(TransportError);
  expect(error?.message).toContain('close did not finish within 1200 ms');
  expect(took).toBeGreaterThanOrEqual(1100);
  expect(took).toBeLessThan(3000);
});

test('a failed connect closes the transport before createBus rejects', async () => {
  const transport = memoryTransport({ broker: memoryBroker('bus-test-connect-fails') });
  let closed = 0;
  transport.connect = async () => {
    throw new TransportError('broker down');
  };
  transport.close = async () => {
    closed++;
  };
  await expect(createBus({ transport, source: 't' })).rejects.toThrow('broker down');
  expect(closed).toBe(1);
});
