import { expect, test } from 'vitest';
import { z } from 'zod';
import { createBus, defineEvent, type Envelope, memoryBroker, memoryTransport } from '../src/index.ts';

const Parent = defineEvent({ type: 'test.parent_seen', version: 1, schema: z.object({ n: z.number() }) });
const Child = defineEvent({ type: 'test.child_seen', version: 1, schema: z.object({ n: z.number() }) });

test('ctx: fields, destructured signal/logger/publish, no tx without an inbox transaction', async () => {
  const entries: Record<string, unknown>[] = [];
  const log = (fields: Record<string, unknown>) => void entries.push(fields);
  const bus = await createBus({
    transport: memoryTransport({ broker: memoryBroker('ctx-test-1') }),
    source: 't',
    logger: { debug: log, info: log, warn: log, error: log },
  });
  let seen: { attempt: number; topic: string; group: string; aborted: boolean; hasTx: boolean } | undefined;
  let child!: (event: Envelope<{ n: number }>) => void;
  const childSeen = new Promise<Envelope<{ n: number }>>((resolve) => {
    child = resolve;
  });
  bus.subscribe(
    Parent,
    async (event, ctx) => {
      const { attempt, topic, group, signal, logger, publish } = ctx;
      seen = { attempt, topic, group, aborted: signal.aborted, hasTx: 'tx' in ctx };
      logger.info({ step: 'handling' }, 'handling');
      await publish(Child, { n: event.data.n + 1 });
    },
    { group: 'g' },
  );
  bus.subscribe(Child, (event) => child(event), { group: 'g' });
  await bus.start();
  const parent = await bus.publish(Parent, { n: 1 });
  const received = await childSeen;
  await bus.close();
  expect(seen).toEqual({ attempt: 1, topic: Parent.topic, group: 'g', aborted: false, hasTx: false });
  expect(entries).toContainEqual({
    eventId: parent.id,
    type: Parent.type,
    group: 'g',
    correlationId: parent.correlationId,
    step: 'handling',
  });
  expect(received.data).toEqual({ n: 2 });
  expect(received.correlationId).toBe(parent.correlationId);
  expect(received.causationId).toBe(parent.id);
});
