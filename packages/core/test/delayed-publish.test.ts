import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  createBus,
  DELIVER_AT_HEADER,
  defineEvent,
  memoryBroker,
  memoryTransport,
  type OutgoingMessage,
  silentLogger,
  type Transport,
} from '../src/index.ts';

const Ping = defineEvent({ type: 'test.ping', version: 1, schema: z.object({ n: z.number() }) });

/** A memory transport that records what is published, with `delayedPublish` as given. */
function recording(delayedPublish: boolean) {
  const inner = memoryTransport({ broker: memoryBroker(`delayed-${delayedPublish}`) });
  const sent: OutgoingMessage[] = [];
  const transport: Transport = {
    ...inner,
    capabilities: { ...inner.capabilities, delayedPublish },
    publish: (messages, options) => {
      sent.push(...messages);
      return inner.publish(messages, options);
    },
  };
  return { transport, sent };
}

describe('delayed publish', () => {
  test('carries the delivery time in the ewdeliverat header, only when it is in the future', async () => {
    const { transport, sent } = recording(true);
    const bus = await createBus({ transport, source: 't', logger: silentLogger });
    const before = Date.now();
    await bus.publish(Ping, { n: 1 }, { delayMs: 5000 });
    await bus.publish(Ping, { n: 2 }, { deliverAt: new Date(before + 60_000) });
    await bus.publish(Ping, { n: 3 }, { deliverAt: new Date(before - 1000) });
    await bus.publish(Ping, { n: 4 });
    const at = sent.map((m) => m.headers[DELIVER_AT_HEADER]);
    expect(Number(at[0])).toBeGreaterThanOrEqual(before + 5000);
    expect(Number(at[0])).toBeLessThanOrEqual(Date.now() + 5000);
    expect(at[1]).toBe(String(before + 60_000));
    expect(at.slice(2)).toEqual([undefined, undefined]);
    await bus.close();
  });

  test('a transport without delayedPublish refuses a delayed publish with a ConfigError and sends nothing', async () => {
    const { transport, sent } = recording(false);
    const bus = await createBus({ transport, source: 't', logger: silentLogger });
    await expect(bus.publish(Ping, { n: 1 }, { delayMs: 1000 })).rejects.toThrow(
      'publish(test.ping): the memory transport does not support delayed publish',
    );
    await expect(
      bus.publishMany(Ping, [{ data: { n: 1 } }, { data: { n: 2 }, options: { delayMs: 1 } }]),
    ).rejects.toBeInstanceOf(ConfigError);
    // A delay of 0 or a time already past is no delay: allowed everywhere.
    await bus.publish(Ping, { n: 3 }, { delayMs: 0 });
    expect(sent).toHaveLength(1);
    await bus.close();
  });

  test('bad delays are ConfigErrors naming the option', async () => {
    const { transport } = recording(true);
    const bus = await createBus({ transport, source: 't', logger: silentLogger });
    await expect(bus.publish(Ping, { n: 1 }, { delayMs: -1 })).rejects.toThrow(
      'publish(test.ping): delayMs must be an integer from 0',
    );
    await expect(bus.publish(Ping, { n: 1 }, { delayMs: Number.NaN })).rejects.toBeInstanceOf(ConfigError);
    await expect(bus.publish(Ping, { n: 1 }, { deliverAt: new Date('nope') })).rejects.toThrow(
      'deliverAt must be a valid Date',
    );
    await expect(bus.publish(Ping, { n: 1 }, { delayMs: 1, deliverAt: new Date() })).rejects.toThrow(
      'give deliverAt or delayMs, not both',
    );
    await bus.close();
  });
});
