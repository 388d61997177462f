import { randomUUID } from 'node:crypto';
import { type OutgoingMessage, STRUCTURED_CONTENT_TYPE } from '@eventwire/core';
import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import type { ConformanceTest, Item } from '../fixture.ts';

export const cloudeventsInterop: ConformanceTest = {
  number: 25,
  name: 'cloudevents-interop',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const consumer = await fx.bus();
    const rec = recorder<Item>();
    const sub = consumer.subscribe(Event, rec.handler, { group: fx.group('g') });
    await consumer.start();
    await sub.ready;
    const raw = await fx.raw();
    const structuredId = randomUUID();
    // Written by hand, as a foreign CloudEvents producer would: no eventwire extensions.
    const document = {
      specversion: '1.0',
      id: structuredId,
      type: 'conformance.item_recorded',
      source: 'urn:other-producer',
      time: '2026-01-02T03:04:05.678Z',
      subject: 'order-7',
      datacontenttype: 'application/json',
      data: { n: 7 },
    };
    const messages: OutgoingMessage[] = [
      {
        topic: Event.topic,
        id: structuredId,
        headers: { 'content-type': STRUCTURED_CONTENT_TYPE },
        body: Buffer.from(JSON.stringify(document)),
      },
    ];
    const binaryId = randomUUID();
    if (fx.capabilities.wireMode === 'binary') {
      messages.push({
        topic: Event.topic,
        id: binaryId,
        headers: {
          specversion: '1.0',
          id: binaryId,
          type: 'conformance.item_recorded',
          source: 'urn:other-producer',
          time: '2026-01-02T03:04:05.678Z',
          datacontenttype: 'application/json',
          dataversion: '1',
          partitionkey: 'p-8',
        } as Record<string, string>,
        body: Buffer.from(JSON.stringify({ n: 8 })),
      });
    }
    await raw.publish(messages);
    await rec.waitForCount(messages.length);
    const structured = rec.handled.find((d) => d.event.id === structuredId)!.event;
    expect(structured).toMatchObject({
      id: structuredId,
      type: 'conformance.item_recorded',
      version: 1,
      source: 'urn:other-producer',
      time: '2026-01-02T03:04:05.678Z',
      subject: 'order-7',
      partitionKey: 'order-7',
      correlationId: structuredId,
      data: { n: 7 },
    });
    if (fx.capabilities.wireMode === 'binary') {
      const binary = rec.handled.find((d) => d.event.id === binaryId)!.event;
      expect(binary).toMatchObject({
        id: binaryId,
        version: 1,
        partitionKey: 'p-8',
        correlationId: binaryId,
        data: { n: 8 },
      });
    }
  },
};
