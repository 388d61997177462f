import { ConfigError } from '@eventwire/core';
import { describe, expect, it } from 'vitest';
import { parseAckSubject } from '../src/ack.ts';
import { fromNatsHeaders, percentDecode, percentEncode, toNatsHeaders } from '../src/headers.ts';
import { type IncomingMessageOwner, NatsIncomingMessage } from '../src/incoming-message.ts';
import { nats } from '../src/index.ts';
import { escapeName, Names, topicTokens } from '../src/names.ts';
import { optionsFromUrl } from '../src/url.ts';

/** The wire bytes of a header block (the implementation has `encode`; the `MsgHdrs` type does not say so). */
const encoded = (headers: unknown) => (headers as { encode(): Uint8Array }).encode();

describe('names', () => {
  it('escapes everything JetStream forbids in names, injectively', () => {
    const topics = [
      'order.placed',
      'order_placed',
      'order_2eplaced',
      'a b',
      'a*b',
      'a>b',
      'a/b',
      'ä',
      'a..b',
      '.a',
      'a.',
    ];
    const escaped = topics.map(escapeName);
    for (const name of escaped) expect(name).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(new Set(escaped).size).toBe(topics.length);
    expect(escapeName('order.placed')).toBe('order_2eplaced');
  });

  it('keeps dotted topics readable in subjects and never produces wildcards or empty tokens', () => {
    expect(topicTokens('order.placed')).toBe('order.placed');
    const topics = ['a.b', 'a_2eb', 'a..b', '.a', 'a.', 'a.*', 'a.>', 'a b.c'];
    const subjects = topics.map(topicTokens);
    expect(new Set(subjects).size).toBe(topics.length);
    for (const s of subjects) {
      for (const token of s.split('.')) expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    }
  });

  it('maps topics and groups to streams, subjects and consumers', () => {
    const perTopic = new Names('ew', { kind: 'per-topic' });
    expect(perTopic.stream('order.placed')).toBe('ew_t_order_2eplaced');
    expect(perTopic.subject('order.placed')).toBe('ew.t.order.placed');
    expect(perTopic.consumer('order.placed', 'email')).toBe('email');
    expect(perTopic.deadLetterStream('order.placed', 'email')).toBe('ew_dlq_order_2eplaced__email');
    expect(perTopic.replaySubject('order.placed', 'email')).toBe('ew.r.order_2eplaced.email');
    const single = new Names('ew', { kind: 'single', stream: 'EVENTS' });
    expect(single.stream('x')).toBe('EVENTS');
    expect(single.consumer('order.placed', 'email')).toBe('email__order_2eplaced');
    expect(single.streamSubjects('x')).toEqual(['ew.t.>', 'ew.r.>', 'ew.s.>']);
    // Delayed publishes: one schedule subject per event, outside every group consumer's filter.
    expect(perTopic.streamSubjects('order.placed')).toEqual([
      'ew.t.order.placed',
      'ew.r.order_2eplaced.*',
      'ew.s.order_2eplaced.*',
    ]);
    expect(perTopic.scheduleSubject('order.placed', 'a.b')).toBe('ew.s.order_2eplaced.a_2eb');
    const long = perTopic.scheduleSubject('t', 'x'.repeat(100));
    expect(long).toMatch(/^ew\.s\.t\._h[0-9a-f]{40}$/);
    expect(long).not.toBe(perTopic.scheduleSubject('t', `${'x'.repeat(99)}y`));
    expect(perTopic.delayedConsumer('order.placed')).toBe('__delayed');
    expect(single.delayedConsumer('order.placed')).toBe('__delayed__order_2eplaced');
  });

  it('bounds long names with a hash', () => {
    const names = new Names('ew', { kind: 'per-topic' });
    const a = names.stream('x'.repeat(500));
    const b = names.stream(`${'x'.repeat(499)}y`);
    expect(a.length).toBeLessThanOrEqual(200);
    expect(a).not.toBe(b);
  });
});

describe('headers', () => {
  it('percent-encodes what a NATS header cannot carry and decodes it back', () => {
    const values = ['plain', 'with space', 'crlf\r\nvalue', 'ünïcødé ✓', '100%', '"quoted"', ' padded '];
    for (const v of values) {
      const encoded = percentEncode(v);
      expect(encoded).toMatch(/^[\x21-\x7e]*$/);
      expect(percentDecode(encoded)).toBe(v);
    }
    expect(percentDecode('%E0%A4%A')).toBe('%E0%A4%A');
  });

  it('maps attributes to ce- headers and back, through the bytes on the wire', async () => {
    const { MsgHdrsImpl } = await import('@nats-io/transport-node');
    const attributes = {
      id: 'abc',
      type: 'order.placed',
      subject: 'ünïcødé\r\nline',
      'content-type': 'application/json',
      ewtargetgroup: 'email',
    };
    const headers = toNatsHeaders(attributes, { 'Nats-Msg-Id': 'abc' });
    expect(headers.get('ce-id')).toBe('abc');
    expect(headers.get('ce-subject')).toBe(percentEncode(attributes.subject));
    expect(headers.get('Nats-Msg-Id')).toBe('abc');
    const decoded = MsgHdrsImpl.decode(encoded(headers));
    expect(fromNatsHeaders(decoded)).toEqual(attributes);
  });

  it('refuses header names and extra values that would break the header block', () => {
    expect(() => toNatsHeaders({ 'a:b': 'x' })).toThrow(/header name/);
    expect(() => toNatsHeaders({}, { 'Nats-Msg-Id': 'a\r\nb' })).toThrow(/header value/);
  });
});

describe('ack subjects', () => {
  it('reads the delivery count and stream sequence of both ack subject forms', () => {
    expect(parseAckSubject('$JS.ACK.S.C.3.17.9.1700000000000000000.0')).toEqual({
      delivered: 3,
      streamSeq: 17,
    });
    expect(parseAckSubject('$JS.ACK.dom.hash.S.C.2.5.4.1700000000000000000.0.rand')).toEqual({
      delivered: 2,
      streamSeq: 5,
    });
    expect(parseAckSubject('_INBOX.x')).toBeUndefined();
  });
});

describe('url', () => {
  it('parses servers, credentials and options', () => {
    const o = optionsFromUrl(
      'nats://alice:s3cr%40t@n1:4222,n2:4223?prefix=app&stream=EVENTS&replicas=3&maxAgeMs=60000&storage=memory',
    );
    expect(o.servers).toEqual(['nats://n1:4222', 'nats://n2:4223']);
    expect(o.connection).toMatchObject({ user: 'alice', pass: 's3cr@t' });
    expect(o).toMatchObject({
      prefix: 'app',
      stream: 'EVENTS',
      replicas: 3,
      maxAgeMs: 60000,
      storage: 'memory',
    });
    expect(optionsFromUrl('nats://tok@h:1').connection).toMatchObject({ token: 'tok' });
    expect(optionsFromUrl('tls://h:1').connection?.tls).toEqual({});
  });

  it('takes every numeric option by name, checked like the option', () => {
    const o = optionsFromUrl(
      'nats://h?maxPendingPublishes=64&connectTimeoutMs=500&closeTimeoutMs=300&leaseMs=5000&maxDeliver=-1',
    );
    expect(o).toMatchObject({
      maxPendingPublishes: 64,
      connectTimeoutMs: 500,
      closeTimeoutMs: 300,
      leaseMs: 5000,
      maxDeliver: -1,
    });
    for (const bad of [
      'replicas=0',
      'maxDeliver=0',
      'publishTimeoutMs=',
      'pullExpiresMs=abc',
      'leaseMs=999',
    ]) {
      expect(() => optionsFromUrl(`nats://u:hunter2@h?${bad}`), bad).toThrow(ConfigError);
      expect(() => optionsFromUrl(`nats://u:hunter2@h?${bad}`)).toThrow(/nats URL parameter/);
      expect(() => optionsFromUrl(`nats://u:hunter2@h?${bad}`)).not.toThrow(/hunter2/);
    }
  });

  it('rejects bad URLs with a ConfigError that does not show the password', () => {
    expect(() => optionsFromUrl('nats://u:hunter2@h:1?replicas=many')).toThrow(ConfigError);
    try {
      optionsFromUrl('http://u:hunter2@h:1');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect(String((error as Error).message)).not.toContain('hunter2');
    }
  });
});

describe('options', () => {
  const cases: [Record<string, number>, RegExp][] = [
    [{ replicas: 0 }, /nats\(\{ replicas \}\) must be an integer from 1 to 5, not 0/],
    [{ replicas: Number.NaN }, /replicas/],
    [{ maxAgeMs: -1 }, /maxAgeMs \}\) must be an integer >= 0, not -1/],
    [{ maxBytes: 0 }, /maxBytes \}\) must be an integer >= 1, not 0 \(or -1 for no limit\)/],
    [{ duplicateWindowMs: 0 }, /duplicateWindowMs/],
    [{ maxDeliver: 0 }, /maxDeliver .*\(or -1 for no limit\)/],
    [{ maxAckPending: -2 }, /maxAckPending/],
    [{ maxPendingPublishes: 0 }, /maxPendingPublishes/],
    [{ publishTimeoutMs: 0 }, /publishTimeoutMs/],
    [{ maxMessageBytes: 1.5 }, /maxMessageBytes/],
    [{ pullExpiresMs: 999 }, /pullExpiresMs \}\) must be an integer from 1000/],
    [{ idleHeartbeatMs: 99 }, /idleHeartbeatMs/],
    [
      { pullExpiresMs: 4_000, idleHeartbeatMs: 2_500 },
      /idleHeartbeatMs \}\) must be at most half of pullExpiresMs \(4000\), not 2500/,
    ],
    [{ connectTimeoutMs: Number.NaN }, /connectTimeoutMs/],
    [{ closeTimeoutMs: 2 ** 31 }, /closeTimeoutMs/],
    [{ leaseMs: 500 }, /leaseMs \}\) must be an integer from 1000/],
  ];
  it.each(cases)('%o is a ConfigError naming the option, the value and the range', (options, message) => {
    expect(() => nats(options)).toThrow(ConfigError);
    expect(() => nats(options)).toThrow(message);
  });

  it('accepts -1 (no limit) where JetStream does, and the defaults', () => {
    expect(nats({ maxDeliver: -1, maxAckPending: -1, maxBytes: -1, maxAgeMs: 0 })).toBeDefined();
    expect(nats()).toBeDefined();
  });
});

describe('NatsIncomingMessage', () => {
  const owner = () => {
    const sent: [string, string][] = [];
    const settled: NatsIncomingMessage[] = [];
    const nc = {
      publish: (subject: string, data: Uint8Array | string) =>
        sent.push([subject, typeof data === 'string' ? data : new TextDecoder().decode(data)]),
    };
    const o = {
      nc,
      topic: 't',
      group: 'g',
      maxDeliver: 3,
      deadLetter: async () => {},
      settled: (m: NatsIncomingMessage) => void settled.push(m),
    } as unknown as IncomingMessageOwner;
    return { o, sent, settled };
  };
  const msg = { data: new Uint8Array([1]) } as never;

  it('settles once, with detached or copied settle functions, and tells its owner once', async () => {
    const { o, sent, settled } = owner();
    const d = new NatsIncomingMessage(o, msg, '$JS.ACK.S.C.1.1.1.0.0', 1, { id: 'x' });
    const copy = { ...d };
    const { ack } = d;
    await ack();
    await copy.retry(10);
    await d.ack();
    expect(sent).toEqual([['$JS.ACK.S.C.1.1.1.0.0', '+ACK']]);
    expect(settled).toEqual([d]);
    expect(copy.headers).toEqual({ id: 'x' });
  });

  it('release() is an own property like the other settles: detached or copied, it naks once, and never dead-letters', async () => {
    const { o, sent, settled } = owner();
    const d = new NatsIncomingMessage(o, msg, 'r3', 3, {});
    const copy = { ...d };
    expect(typeof copy.release).toBe('function');
    const { release } = d;
    await release();
    await copy.release!();
    await d.ack();
    // At max_deliver (3) a retry would dead-letter; a release only gives the message back.
    expect(sent).toEqual([['r3', '-NAK']]);
    expect(settled).toEqual([d]);
  });

  it('naks with a delay, and dead-letters instead once max_deliver is reached', async () => {
    const { o, sent } = owner();
    await new NatsIncomingMessage(o, msg, 'r1', 1, {}).retry(1500);
    expect(sent).toEqual([['r1', '-NAK {"delay":1500000000}']]);
    const failures: unknown[] = [];
    o.deadLetter = async (_m, failure) => void failures.push(failure);
    await new NatsIncomingMessage(o, msg, 'r3', 3, {}).retry(10);
    expect(failures).toMatchObject([{ reason: 'max_attempts', attempts: 3, topic: 't', group: 'g' }]);
  });
});
