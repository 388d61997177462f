import { describe, expect, test } from 'vitest';
import {
  DecodeError,
  decode,
  type Envelope,
  encodeBinary,
  encodeStructured,
  STRUCTURED_CONTENT_TYPE,
} from '../src/index.ts';

const full: Envelope = {
  id: '01890a5d-ac96-774b-bcce-b302099a8057',
  type: 'order.placed',
  version: 3,
  source: 'checkout',
  time: '2026-11-22T10:00:00.123Z',
  subject: 'order-42',
  partitionKey: 'customer-7',
  correlationId: '01890a5d-0000-7000-8000-000000000001',
  causationId: '01890a5d-0000-7000-8000-000000000002',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  tracestate: 'vendor=opaque',
  dataContentType: 'application/json',
  data: { orderId: 'order-42', totalCents: 1999, lines: [{ sku: 'a', qty: 2 }] },
  extensions: { tenant: 'acme' },
};
const limits = { maxBytes: 1024 * 1024 };

describe('CloudEvents codec', () => {
  test.each([
    ['binary', encodeBinary],
    ['structured', encodeStructured],
  ])('%s mode round-trips every envelope field', (_mode, encode) => {
    expect(decode(encode(full), limits)).toEqual(full);
  });

  test('binary mode maps each field to its CloudEvents attribute', () => {
    const { headers, body } = encodeBinary(full);
    expect(headers).toEqual({
      specversion: '1.0',
      id: full.id,
      type: 'order.placed',
      source: 'checkout',
      time: full.time,
      subject: 'order-42',
      datacontenttype: 'application/json',
      dataversion: '3',
      partitionkey: 'customer-7',
      correlationid: full.correlationId,
      causationid: full.causationId,
      traceparent: full.traceparent,
      tracestate: 'vendor=opaque',
      tenant: 'acme',
    });
    expect(JSON.parse(Buffer.from(body).toString())).toEqual(full.data);
  });

  test('structured mode is one application/cloudevents+json document', () => {
    const { headers, body } = encodeStructured(full);
    expect(headers).toEqual({ 'content-type': STRUCTURED_CONTENT_TYPE });
    const doc = JSON.parse(Buffer.from(body).toString());
    expect(doc).toMatchObject({
      specversion: '1.0',
      id: full.id,
      dataversion: '3',
      partitionkey: 'customer-7',
      data: full.data,
    });
  });

  test('optional fields stay absent, and foreign events get defaults', () => {
    const doc = {
      specversion: '1.0',
      id: 'x1',
      type: 'thing.happened',
      source: 'urn:dapr',
      time: full.time,
      data: { a: 1 },
    };
    const envelope = decode({ headers: {}, body: Buffer.from(JSON.stringify(doc)) }, limits);
    expect(envelope).toEqual({
      id: 'x1',
      type: 'thing.happened',
      version: 1,
      source: 'urn:dapr',
      time: full.time,
      correlationId: 'x1',
      dataContentType: 'application/json',
      data: { a: 1 },
    });
  });

  test('data_base64 is accepted in structured mode', () => {
    const doc = {
      specversion: '1.0',
      id: 'b1',
      type: 'a.b',
      source: 's',
      data_base64: Buffer.from('{"n":1}').toString('base64'),
    };
    expect(decode({ headers: {}, body: Buffer.from(JSON.stringify(doc)) }, limits).data).toEqual({ n: 1 });
  });

  test('subject is the partition key when none is given', () => {
    const { partitionKey: _omit, ...rest } = full;
    expect(decode(encodeBinary(rest as Envelope), limits).partitionKey).toBe('order-42');
  });
});

describe('bad input (conformance test 26) gets a DecodeError with a reason', () => {
  const structured = (value: unknown) => ({
    headers: { 'content-type': STRUCTURED_CONTENT_TYPE },
    body: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
  });
  const cases: [string, Parameters<typeof decode>[0], string][] = [
    ['malformed bytes', structured('{"specversion":"1.0", nope'), 'malformed_json'],
    ['invalid UTF-8 garbage', { headers: {}, body: Buffer.from([0xff, 0xfe, 0x00, 0x7b]) }, 'malformed_json'],
    [
      'missing source',
      structured({ specversion: '1.0', id: 'x', type: 'a.b', data: {} }),
      'missing_attribute',
    ],
    [
      'missing id (binary)',
      { headers: { specversion: '1.0', type: 'a.b', source: 's' }, body: Buffer.from('{}') },
      'missing_attribute',
    ],
    ['0-byte body (structured)', { headers: {}, body: Buffer.alloc(0) }, 'empty_body'],
    ['0-byte body (binary)', { headers: encodeBinary(full).headers, body: Buffer.alloc(0) }, 'empty_body'],
    [
      'oversize body',
      structured({
        ...JSON.parse(Buffer.from(encodeStructured(full).body).toString()),
        pad: 'x'.repeat(2048),
      }),
      'oversize',
    ],
    [
      '__proto__ payload',
      structured(
        '{"specversion":"1.0","id":"p","type":"a.b","source":"s","data":{"__proto__":{"polluted":true}}}',
      ),
      'forbidden_key',
    ],
    [
      'constructor.prototype payload',
      structured(
        '{"specversion":"1.0","id":"p","type":"a.b","source":"s","data":{"constructor":{"prototype":{"x":1}}}}',
      ),
      'forbidden_key',
    ],
    [
      'unsupported specversion',
      structured({ specversion: '0.3', id: 'x', type: 'a.b', source: 's' }),
      'unsupported_specversion',
    ],
    [
      'non-integer dataversion',
      structured({ specversion: '1.0', id: 'x', type: 'a.b', source: 's', dataversion: '1.5' }),
      'invalid_attribute',
    ],
    [
      'bad time',
      structured({ specversion: '1.0', id: 'x', type: 'a.b', source: 's', time: 'yesterday' }),
      'invalid_attribute',
    ],
    ['JSON array document', structured([1, 2]), 'invalid_attribute'],
    [
      'non-JSON content type',
      {
        headers: { ...encodeBinary(full).headers, datacontenttype: 'application/xml' },
        body: Buffer.from('<a/>'),
      },
      'unsupported_content_type',
    ],
  ];
  test.each(cases)('%s', (_name, message, reason) => {
    const limit = _name === 'oversize body' ? { maxBytes: 1024 } : limits;
    let error: unknown;
    try {
      decode(message, limit);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DecodeError);
    expect((error as DecodeError).reason).toBe(reason);
    expect((error as DecodeError).code).toBe('EW_DECODE');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
