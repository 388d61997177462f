/**
 * Broker behaviour the conformance suite does not pin down: dedup by Nats-Msg-Id, the `ce-`
 * headers on the wire, `working()` heartbeats, a consumer deleted under a running subscription,
 * and progress when max_ack_pending is below the subscription's window. Real server; skipped
 * when it is unreachable, failing instead under EVENTWIRE_REQUIRE_BROKERS=all.
 */
import { randomUUID } from 'node:crypto';
import { createBus, defineEvent, encodeBinary, type IncomingMessage, silentLogger } from '@eventwire/core';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { describeBroker, NATS_URL } from '../../../test/support/brokers.ts';
import { type NatsTransport, nats } from '../src/index.ts';

const servers = NATS_URL.split(',').map((s) => (s.startsWith('nats://') ? s : `nats://${s}`));
const prefix = `ewt-${randomUUID().slice(0, 8)}`;
const Item = z.object({ n: z.number().int(), label: z.string().optional() });

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeBroker('nats', () => {
  let admin: NatsConnection;
  const transports: NatsTransport[] = [];
  const transport = async (extra: Parameters<typeof nats>[0] = {}) => {
    const t = nats({ servers, prefix, ...extra });
    await t.connect();
    transports.push(t);
    return t;
  };

  beforeAll(async () => {
    admin = await connect({ servers });
  });

  afterAll(async () => {
    await Promise.allSettled(transports.map((t) => t.close()));
    if (!admin) return;
    const jsm = await jetstreamManager(admin, { timeout: 20_000 });
    for await (const name of jsm.streams.names())
      if (name.startsWith(`${prefix}_`)) await jsm.streams.delete(name).catch(() => {});
    await admin.close();
  });

  it('stores an event once when it is published twice with the same id (Nats-Msg-Id)', async () => {
    const t = await transport();
    const topic = `dedup-${randomUUID()}`;
    const id = randomUUID();
    const message = {
      topic,
      id,
      headers: { specversion: '1.0', id, type: 't.x', source: 's' },
      body: Buffer.from('{"n":1}'),
    };
    await t.publish([message]);
    await t.publish([message]);
    const jsm = await jetstreamManager(admin, { timeout: 20_000 });
    expect((await jsm.streams.info(t.names.stream(topic))).state.messages).toBe(1);
  });

  it('recreates a stream deleted by an operator and publishes into it (no-stream answer, then retry)', async () => {
    const t = await transport();
    const topic = `gone-${randomUUID()}`;
    const message = () => {
      const id = randomUUID();
      return {
        topic,
        id,
        headers: { specversion: '1.0', id, type: 't.x', source: 's' },
        body: Buffer.from('{"n":1}'),
      };
    };
    await t.publish([message()]);
    const jsm = await jetstreamManager(admin, { timeout: 20_000 });
    await jsm.streams.delete(t.names.stream(topic));
    // The transport still believes the stream exists: the publish gets "no responders", the
    // transport recreates the stream and sends again.
    await t.publish([message(), message()]);
    expect((await jsm.streams.info(t.names.stream(topic))).state.messages).toBe(2);
  });

  it('writes CloudEvents attributes as percent-encoded ce- headers and reads them back', async () => {
    const t = await transport();
    const topic = `headers-${randomUUID()}`;
    const Event = defineEvent({ type: 'test.labelled', version: 1, schema: Item, topic });
    const seen: string[] = [];
    const sub = admin.subscribe(t.names.subject(topic), {
      callback: (_err, msg) => {
        for (const key of msg.headers?.keys() ?? []) seen.push(`${key}=${msg.headers!.get(key)}`);
      },
    });
    const bus = await createBus({ transport: t, source: 'naïve service', logger: silentLogger });
    const received: unknown[] = [];
    bus.subscribe(Event, (e) => void received.push([e.source, e.subject]), { group: 'g' });
    await bus.start();
    await bus.publish(Event, { n: 1 }, { subject: 'ünï cödé\r\nline' });
    await waitUntil(() => received.length === 1 && seen.length > 0);
    expect(received[0]).toEqual(['naïve service', 'ünï cödé\r\nline']);
    expect(seen).toContain('ce-specversion=1.0');
    expect(seen).toContain('ce-source=na%C3%AFve%20service');
    expect(seen.find((h) => h.startsWith('ce-subject='))).toBe(
      'ce-subject=%C3%BCn%C3%AF%20c%C3%B6d%C3%A9%0D%0Aline',
    );
    expect(seen.find((h) => h.startsWith('Nats-Msg-Id='))).toBeDefined();
    await sub.drain();
    await bus.close();
  });

  it('keeps a long-running message leased with working(): no redelivery past ack_wait', async () => {
    const t = await transport();
    const topic = `lease-${randomUUID()}`;
    await t.ensureGroup(topic, 'g', 'latest');
    const spec = {
      topic,
      group: 'g',
      from: 'latest' as const,
      maxInFlight: 4,
      ordering: 'none' as const,
      leaseMs: 2_000,
    };
    const first: IncomingMessage[] = [];
    const second: IncomingMessage[] = [];
    const subA = await t.subscribe(spec, (m) => void first.push(m));
    const other = await transport();
    const subB = await other.subscribe(spec, (m) => void second.push(m));
    const id = randomUUID();
    const wire = encodeBinary({
      id,
      type: 't.x',
      version: 1,
      source: 's',
      time: new Date().toISOString(),
      correlationId: id,
      dataContentType: 'application/json',
      data: { n: 1 },
    });
    await t.publish([{ topic, id, ...wire }]);
    await waitUntil(() => first.length + second.length === 1);
    // Hold it for two and a half times ack_wait: the holder's heartbeats must keep it from moving.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(first.length + second.length).toBe(1);
    const [held] = [...first, ...second];
    expect(held!.attempt).toBe(1);
    await held!.ack();
    await subA.close();
    await subB.close();
  }, 30_000);

  it('recreates a consumer deleted under a running subscription', async () => {
    const t = await transport({ idleHeartbeatMs: 1_000 });
    const topic = `deleted-${randomUUID()}`;
    const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic });
    const bus = await createBus({ transport: t, source: 'test', logger: silentLogger });
    const seen = new Set<number>();
    bus.subscribe(Event, (e) => void seen.add(e.data.n), { group: 'g', concurrency: 4 });
    await bus.start();
    await bus.publish(Event, { n: 1 });
    await waitUntil(() => seen.has(1));
    const jsm = await jetstreamManager(admin, { timeout: 20_000 });
    await jsm.consumers.delete(t.names.stream(topic), t.names.consumer(topic, 'g'));
    // The subscription notices (409 consumer deleted, or missed heartbeats) and recreates it;
    // events published once it exists again are delivered.
    await waitUntil(async () => {
      try {
        await jsm.consumers.info(t.names.stream(topic), t.names.consumer(topic, 'g'));
        return true;
      } catch {
        return false;
      }
    });
    await bus.publish(Event, { n: 2 });
    await waitUntil(() => seen.has(2));
    await bus.close();
  }, 40_000);

  it('keeps going when max_ack_pending is smaller than the subscription window', async () => {
    const t = await transport({ maxAckPending: 3 });
    const topic = `ackpending-${randomUUID()}`;
    const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic });
    const bus = await createBus({ transport: t, source: 'test', logger: silentLogger });
    const seen = new Set<number>();
    bus.subscribe(
      Event,
      async (e) => {
        await new Promise((r) => setTimeout(r, 2));
        seen.add(e.data.n);
      },
      { group: 'g', concurrency: 8, prefetch: 8 },
    );
    await bus.start();
    await bus.publishMany(
      Event,
      Array.from({ length: 200 }, (_, n) => ({ data: { n } })),
    );
    await waitUntil(() => seen.size === 200);
    await bus.close();
  }, 40_000);

  it('close() while connect() is under way: connect rejects and no connection is kept', async () => {
    const t = nats({ servers, prefix });
    const connecting = t.connect();
    await t.close();
    await expect(connecting).rejects.toThrow(/the transport is closed/);
    expect(t.connection).toBeUndefined();
    await expect(t.connect()).rejects.toThrow(/the transport is closed/);
  });

  it('reads with the credits still free while handlers are stuck on most of the window', async () => {
    const t = await transport();
    const topic = `stuck-${randomUUID()}`;
    const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic });
    const bus = await createBus({ transport: t, source: 'test', logger: silentLogger });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const started: number[] = [];
    const handled: number[] = [];
    try {
      // A window of 8 (concurrency 8, no prefetch). The first pull asks for 8 and gets them:
      // one quick event, then 7 whose handlers stay stuck, leaving one credit free, below the
      // quarter of the window a pull normally waits for.
      const sub = bus.subscribe(
        Event,
        async (e) => {
          started.push(e.data.n);
          if (e.data.label === 'stuck') await gate;
          handled.push(e.data.n);
        },
        { group: 'g', concurrency: 8, prefetch: 0 },
      );
      await bus.start();
      await sub.ready;
      await bus.publishMany(Event, [
        { data: { n: 0 } },
        ...Array.from({ length: 7 }, (_, i) => ({ data: { n: i + 1, label: 'stuck' } })),
      ]);
      await waitUntil(() => started.length === 8 && handled.length === 1, 10_000);
      await bus.publish(Event, { n: 8 });
      await waitUntil(() => handled.length === 2, 5_000);
      expect(handled).toEqual([0, 8]);
      release();
      await waitUntil(() => handled.length === 9, 10_000);
    } finally {
      release();
      await bus.close();
    }
  }, 40_000);
});
