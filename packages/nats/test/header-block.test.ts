/**
 * Reading delivery headers from the raw header block: same result as the client's own parser,
 * and the fast path really taken with the installed nats.js (a client upgrade that moves its
 * internals must fail here, not silently slow every delivery down).
 */
import { randomUUID } from 'node:crypto';
import { connect, type Msg, MsgHdrsImpl } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { describeBroker, NATS_URL } from '../../../test/support/brokers.ts';
import { headerBlock, parseHeaderBlock, readHeaders } from '../src/header-block.ts';
import { fromNatsHeaders, toNatsHeaders } from '../src/headers.ts';

/** The wire bytes of a header block (the implementation has `encode`; the `MsgHdrs` type does not say so). */
const encoded = (headers: unknown) => (headers as { encode(): Uint8Array }).encode();

const encoder = new TextEncoder();
const attributes = {
  specversion: '1.0',
  id: 'abc',
  type: 'order.placed',
  subject: 'ünïcødé\r\nline: with colon',
  'content-type': 'application/json',
  ewtargetgroup: 'email',
};

describe('header block', () => {
  it('reads what toNatsHeaders wrote, as fromNatsHeaders does', () => {
    const bytes = encoded(toNatsHeaders(attributes, { 'Nats-Msg-Id': 'abc', 'ew-deadletter': '%7B%7D' }));
    expect(parseHeaderBlock(bytes)).toEqual(attributes);
    expect(parseHeaderBlock(bytes)).toEqual(fromNatsHeaders(MsgHdrsImpl.decode(bytes)));
  });

  it('keeps the first value of a name in any case, trims values, ignores lines without a colon', () => {
    const block = encoder.encode(
      'NATS/1.0\r\nce-id: a\r\nCE-ID: b\r\nce-type:  t  \r\nnoise\r\nce-x:\r\n\r\n',
    );
    expect(parseHeaderBlock(block)).toEqual({ id: 'a', type: 't', x: '' });
    expect(parseHeaderBlock(block)).toEqual(fromNatsHeaders(MsgHdrsImpl.decode(block)));
  });

  it('leaves status lines and truncated blocks to the client parser', () => {
    expect(parseHeaderBlock(encoder.encode('NATS/1.0 100 Idle Heartbeat\r\n\r\n'))).toBeUndefined();
    expect(parseHeaderBlock(encoder.encode('NATS/1.0\r\nce-id: a'))).toBeUndefined();
    expect(parseHeaderBlock(encoder.encode('HTTP/1.1\r\n\r\n'))).toBeUndefined();
  });
});

describeBroker('nats', () => {
  it('takes the fast path on messages of the installed client, with the same result', async () => {
    const nc = await connect({ servers: NATS_URL.split(',') });
    try {
      const subject = `ewh.${randomUUID()}`;
      const received = new Promise<Msg>((resolve) => {
        nc.subscribe(subject, { max: 1, callback: (_err, msg) => resolve(msg) });
      });
      await nc.flush();
      nc.publish(subject, encoder.encode('{}'), { headers: toNatsHeaders(attributes) });
      const msg = await received;
      expect(headerBlock(msg)).toBeDefined();
      expect(readHeaders(msg)).toEqual(attributes);
      expect(readHeaders(msg)).toEqual(fromNatsHeaders(msg.headers));
      expect(new TextDecoder().decode(msg.data)).toBe('{}');
    } finally {
      await nc.close();
    }
  });
});
