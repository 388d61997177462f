import type { Message } from '@platformatic/kafka';
import { describe, expect, test } from 'vitest';
import { AttributeDecoder } from '../src/clients/header-decoding.ts';
import { recordOf } from '../src/clients/platformatic.ts';
import { attributeName, fromKafkaHeaders, toKafkaHeaders } from '../src/headers.ts';

const binary = {
  specversion: '1.0',
  id: 'e-1',
  type: 'order.placed',
  source: 'shop',
  datacontenttype: 'application/json',
  ewattempt: '2',
};

/** A fetched message as @platformatic/kafka yields it: header names and values as byte views. */
function fetched(headers: Record<string, string>): Message<Buffer, Buffer, Buffer, Buffer> {
  const wire = Buffer.from(Object.entries(headers).flat().join(''));
  let at = 0;
  const view = (text: string) => {
    const start = at;
    at += Buffer.byteLength(text);
    return wire.subarray(start, at);
  };
  const map = new Map<Buffer, Buffer>();
  for (const [k, v] of Object.entries(headers)) map.set(view(k), view(v));
  return {
    topic: 't',
    partition: 3,
    offset: 7n,
    key: Buffer.from('k'),
    value: Buffer.from('{}'),
    headers: map,
  } as unknown as Message<Buffer, Buffer, Buffer, Buffer>;
}

describe('CloudEvents Kafka binding', () => {
  test('binary mode round trip: ce_ prefix, content-type is datacontenttype, ew* unprefixed', () => {
    const kafka = toKafkaHeaders(binary);
    expect(kafka).toEqual({
      ce_specversion: '1.0',
      ce_id: 'e-1',
      ce_type: 'order.placed',
      ce_source: 'shop',
      'content-type': 'application/json',
      ewattempt: '2',
    });
    expect(fromKafkaHeaders(kafka)).toEqual(binary);
  });

  test('structured mode keeps content-type as it is', () => {
    const kafka = { 'content-type': 'application/cloudevents+json', traceid: 'x' };
    expect(fromKafkaHeaders(kafka)).toEqual(kafka);
  });

  test('an explicit ce_datacontenttype wins over content-type, which is kept', () => {
    const kafka = { ce_specversion: '1.0', ce_datacontenttype: 'application/json', 'content-type': 'text/x' };
    expect(fromKafkaHeaders(kafka)).toEqual({
      specversion: '1.0',
      datacontenttype: 'application/json',
      'content-type': 'text/x',
    });
  });

  test('attribute names', () => {
    expect(attributeName('ce_time')).toBe('time');
    expect(attributeName('ewgroup')).toBe('ewgroup');
    expect(attributeName('x-custom')).toBe('x-custom');
  });
});

describe('AttributeDecoder', () => {
  const decoder = new AttributeDecoder();
  const attributes = (headers: Record<string, string>) => decoder.attributes(fetched(headers).headers);

  test('repeated names and values at a position reuse their strings; changed bytes are decoded again', () => {
    const first = attributes(toKafkaHeaders(binary));
    const second = attributes(toKafkaHeaders({ ...binary, id: 'e-2', type: 'order.paid' }));
    expect(first).toEqual(binary);
    expect(second).toEqual({ ...binary, id: 'e-2', type: 'order.paid' });
    // Same length, one byte different: compared in full, not by length.
    expect(attributes(toKafkaHeaders({ ...binary, id: 'e-3' })).id).toBe('e-3');
  });

  test('headers in another order or another set decode correctly', () => {
    attributes(toKafkaHeaders(binary));
    const reordered = { ewattempt: '1', ce_type: 'x.y', ce_specversion: '1.0', ce_id: 'e-9', ce_source: 's' };
    expect(attributes(reordered)).toEqual({
      ewattempt: '1',
      type: 'x.y',
      specversion: '1.0',
      id: 'e-9',
      source: 's',
    });
    expect(attributes({ 'content-type': 'application/cloudevents+json' })).toEqual({
      'content-type': 'application/cloudevents+json',
    });
  });

  test('names and values decode as UTF-8', () => {
    expect(attributes({ ce_größe: 'straße', 'x-note': 'été' })).toEqual({ größe: 'straße', 'x-note': 'été' });
  });
});

describe('fetched record (@platformatic/kafka)', () => {
  test('attributes decode straight from bytes; Kafka-named headers stay available for dead letters', () => {
    const kafka = toKafkaHeaders(binary);
    const record = recordOf(fetched(kafka));
    expect(record.attributes).toEqual(binary);
    expect(record.attributes).toBe(record.attributes);
    expect(record.headers).toEqual(kafka);
    expect(record).toMatchObject({ partition: 3, offset: 7n });
    expect(record.key?.toString()).toBe('k');
  });

  test('an empty key is no key', () => {
    const m = fetched({});
    (m as { key: Buffer }).key = Buffer.alloc(0);
    expect(recordOf(m).key).toBeNull();
  });
});
