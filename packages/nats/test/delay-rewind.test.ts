/**
 * Delayed publish (JetStream message schedules) and rewind, beyond what conformance 36 and 40
 * pin down: what the README promises about them. Real server; skipped when it is unreachable,
 * failing instead under EVENTWIRE_REQUIRE_BROKERS=all.
 */
import { randomUUID } from 'node:crypto';
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { DeliverPolicy, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { privateNats } from '../../../test/faults/support/private-brokers.ts';
import { describeBroker, NATS_URL } from '../../../test/support/brokers.ts';
import { type NatsTransport, nats } from '../src/index.ts';
import { hasSchedules } from '../src/transport.ts';

const servers = NATS_URL.split(',').map((s) => (s.startsWith('nats://') ? s : `nats://${s}`));
const prefix = `ewd-${randomUUID().slice(0, 8)}`;
const Item = z.object({ n: z.number().int() });

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('message schedules are used from nats-server 2.12 on', () => {
  expect(hasSchedules('2.12.0')).toBe(true);
  expect(hasSchedules('2.15.2')).toBe(true);
  expect(hasSchedules('3.0.0')).toBe(true);
  expect(hasSchedules('2.11.9')).toBe(false);
  expect(hasSchedules('unknown')).toBe(false);
});

describeBroker('nats', () => {
  let admin: NatsConnection;
  const transports: NatsTransport[] = [];
  const transport = async (extra: Parameters<typeof nats>[0] = {}) => {
    const t = nats({ servers, prefix, ...extra });
    await t.connect();
    transports.push(t);
    return t;
  };
  const jsm = () => jetstreamManager(admin, { timeout: 20_000 });

  beforeAll(async () => {
    admin = await connect({ servers });
  });

  afterAll(async () => {
    await Promise.allSettled(transports.map((t) => t.close()));
    if (!admin) return;
    const m = await jsm();
    for await (const name of m.streams.names())
      if (name.startsWith(`${prefix}_`) || name.startsWith(`${prefix}-`))
        await m.streams.delete(name).catch(() => {});
    await admin.close();
  });

  /** A bus on `t` whose group `g` of a fresh topic records when it handled each event. */
  const setup = async (t: NatsTransport, name: string) => {
    const topic = `${name}-${randomUUID()}`;
    const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic });
    const bus = await createBus({ transport: t, source: 'test', logger: silentLogger });
    const handled = new Map<number, number>();
    bus.subscribe(Event, (e) => void (handled.has(e.data.n) || handled.set(e.data.n, Date.now())), {
      group: 'g',
    });
    await bus.start();
    return { topic, Event, bus, handled };
  };

  it('declares delayedPublish on a 2.12+ server; the schedule waits on a subject no group consumer reads', async () => {
    const t = await transport();
    expect(t.capabilities.delayedPublish).toBe(true);
    const { topic, Event, bus, handled } = await setup(t, 'sched');
    const sent = Date.now();
    await bus.publish(Event, { n: 1 }, { delayMs: 1_500 });
    const m = await jsm();
    const stream = t.names.stream(topic);
    const { config } = await m.streams.info(stream);
    expect(config.allow_msg_schedules).toBe(true);
    expect(config.allow_msg_ttl).toBe(true);
    const group = await m.consumers.info(stream, t.names.consumer(topic, 'g'));
    // Pending: stored in the stream, not pending for the group, counted as delayed.
    expect(group.num_pending + group.num_ack_pending).toBe(0);
    expect(await t.delayed(topic, 'g')).toBe(1);
    expect(await t.lag(topic, 'g')).toBe(0);
    await waitUntil(() => handled.has(1), 10_000);
    expect(handled.get(1)! - sent).toBeGreaterThanOrEqual(1_500);
    expect(await t.delayed(topic, 'g')).toBe(0);
    await bus.close();
  });

  it('a group created after the publish, before the event is due, receives it too', async () => {
    const t = await transport();
    const { topic, Event, bus, handled } = await setup(t, 'meanwhile');
    await bus.publish(Event, { n: 1 }, { delayMs: 1_500 });
    await t.ensureGroup(topic, 'late', 'latest');
    const other = await transport();
    const bus2 = await createBus({ transport: other, source: 'test', logger: silentLogger });
    const late: number[] = [];
    bus2.subscribe(Event, (e) => void late.push(e.data.n), { group: 'late' });
    await bus2.start();
    await waitUntil(() => handled.has(1) && late.length === 1, 10_000);
    await bus.close();
    await bus2.close();
  });

  it('upgrades a topic stream created without schedules (older eventwire, an operator) on the first delayed publish', async () => {
    const t = await transport();
    const topic = `upgrade-${randomUUID()}`;
    const m = await jsm();
    // As the previous version created it: no schedule subjects, no allow_msg_schedules.
    await m.streams.add({
      name: t.names.stream(topic),
      subjects: [t.names.subject(topic), t.names.streamSubjects(topic)[1]!],
    });
    const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic });
    const bus = await createBus({ transport: t, source: 'test', logger: silentLogger });
    const handled: number[] = [];
    bus.subscribe(Event, (e) => void handled.push(e.data.n), { group: 'g' });
    await bus.start();
    await bus.publish(Event, { n: 0 });
    await waitUntil(() => handled.includes(0));
    await bus.publish(Event, { n: 1 }, { delayMs: 500 });
    const { config } = await m.streams.info(t.names.stream(topic));
    expect(config.allow_msg_schedules).toBe(true);
    expect(config.subjects).toContain(t.names.scheduleFilter(topic));
    await waitUntil(() => handled.includes(1), 10_000);
    expect(handled).toEqual([0, 1]);
    await bus.close();
  });

  it('a delay longer than the stream max_age still arrives (the pending schedule has no TTL), and so with interest retention', async () => {
    for (const options of [
      { maxAgeMs: 1_000, duplicateWindowMs: 1_000 },
      { retention: 'interest' as const },
    ]) {
      const t = await transport(options);
      const { Event, bus, handled } = await setup(t, 'limits');
      const sent = Date.now();
      await bus.publish(Event, { n: 1 }, { delayMs: 2_500 });
      await waitUntil(() => handled.has(1), 15_000);
      expect(handled.get(1)! - sent).toBeGreaterThanOrEqual(2_500);
      await bus.close();
    }
  }, 60_000);

  it('the same event published twice with a delay is delivered once', async () => {
    const t = await transport();
    const topic = `twice-${randomUUID()}`;
    const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic });
    const bus = await createBus({ transport: t, source: 'test', logger: silentLogger });
    const handled: string[] = [];
    bus.subscribe(Event, (e) => void handled.push(e.id), { group: 'g' });
    await bus.start();
    const event = await bus.publish(Event, { n: 1 }, { delayMs: 800 });
    // The same wire message again (an outbox relay retrying after a lost ack).
    const m = await jsm();
    const stored = await m.streams.getMessage(t.names.stream(topic), {
      last_by_subj: t.names.scheduleSubject(topic, event.id),
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of stored!.header) if (/^(ce-|ew)/.test(k)) headers[k.replace(/^ce-/, '')] = v[0]!;
    await t.publish([{ topic, id: event.id, headers, body: stored!.data }]);
    await waitUntil(() => handled.length === 1, 10_000);
    await sleep(1_500);
    expect(handled).toEqual([event.id]);
    await bus.close();
  });

  it('a pending delayed event survives a consumer restart and is counted meanwhile', async () => {
    const t = await transport();
    const { topic, Event, bus, handled } = await setup(t, 'restart');
    const sent = Date.now();
    await bus.publish(Event, { n: 1 }, { delayMs: 1_500 });
    await bus.close();
    const other = await transport();
    expect(await other.delayed(topic, 'g')).toBe(1);
    await sleep(2_000);
    const bus2 = await createBus({ transport: other, source: 'test', logger: silentLogger });
    bus2.subscribe(Event, (e) => void handled.set(e.data.n, Date.now()), { group: 'g' });
    await bus2.start();
    await waitUntil(() => handled.has(1), 10_000);
    expect(handled.get(1)! - sent).toBeGreaterThanOrEqual(1_500);
    await bus2.close();
  });

  it('rewind: keeps the consumer settings, counts without moving on a dry run, 0 for a group that never subscribed', async () => {
    const t = await transport({ maxDeliver: 7, leaseMs: 4_000 });
    const topic = `rewind-${randomUUID()}`;
    const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic });
    const bus = await createBus({ transport: t, source: 'test', logger: silentLogger });
    const handled: number[] = [];
    bus.subscribe(Event, (e) => void handled.push(e.data.n), { group: 'g' });
    await bus.start();
    await bus.publishMany(Event, [{ data: { n: 0 } }, { data: { n: 1 } }]);
    await sleep(300);
    const to = new Date();
    await sleep(300);
    await bus.publishMany(Event, [{ data: { n: 2 } }, { data: { n: 3 } }, { data: { n: 4 } }]);
    await waitUntil(() => handled.length === 5);
    await bus.close();
    // The bus closed its transport: another one, as the CLI would use.
    const admin2 = await transport({ maxDeliver: 7, leaseMs: 4_000 });

    const m = await jsm();
    const stream = t.names.stream(topic);
    const name = t.names.consumer(topic, 'g');
    const before = await m.consumers.info(stream, name);
    expect(await admin2.rewind(topic, 'g', to, { dryRun: true })).toBe(3);
    expect(await admin2.rewind(topic, 'g', 'beginning', { dryRun: true })).toBe(5);
    // The dry run moved nothing and left no consumer behind.
    const same = await m.consumers.info(stream, name);
    expect(same.num_pending).toBe(0);
    expect(same.created).toBe(before.created);
    const names: string[] = [];
    for await (const c of m.consumers.list(stream)) names.push(c.name);
    expect(names.sort()).toEqual([name]);

    expect(await admin2.rewind(topic, 'g', to)).toBe(3);
    const after = await m.consumers.info(stream, name);
    expect(after.config.deliver_policy).toBe(DeliverPolicy.StartTime);
    expect(after.config.ack_wait).toBe(nanos(4_000));
    expect(after.config.max_deliver).toBe(7);
    expect(after.config.filter_subjects).toEqual(before.config.filter_subjects);
    expect(after.config.max_ack_pending).toBe(before.config.max_ack_pending);
    expect(await admin2.rewind(topic, 'never-subscribed', 'beginning')).toBe(0);

    const again: number[] = [];
    const bus2 = await createBus({ transport: admin2, source: 'test', logger: silentLogger });
    bus2.subscribe(Event, (e) => void again.push(e.data.n), { group: 'g' });
    await bus2.start();
    await waitUntil(() => again.length === 3);
    await sleep(500);
    expect(again.sort()).toEqual([2, 3, 4]);
    await bus2.close();
  });

  it('rewind is a seek: what the group had not handled before the rewind time is not delivered, and delayed events count from when they fell due', async () => {
    const t = await transport();
    const topic = `seek-${randomUUID()}`;
    const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic });
    const producer = await createBus({ transport: t, source: 'test', logger: silentLogger });
    await t.ensureGroup(topic, 'g', 'latest');
    // Never handled: published before the rewind time, no consumer running.
    await producer.publish(Event, { n: 0 });
    // Published before the rewind time, due after it.
    await producer.publish(Event, { n: 1 }, { delayMs: 1_000 });
    await sleep(300);
    const to = new Date();
    await sleep(1_200);
    expect(await t.rewind(topic, 'g', to)).toBe(1);
    const handled: number[] = [];
    const bus = await createBus({ transport: t, source: 'test', logger: silentLogger });
    bus.subscribe(Event, (e) => void handled.push(e.data.n), { group: 'g' });
    await bus.start();
    await waitUntil(() => handled.length === 1);
    await sleep(500);
    expect(handled).toEqual([1]);
    await bus.close();
    await producer.close();
  });

  it('maxBytes counts pending delayed events too: the oldest message goes first, a pending schedule included', async () => {
    const t = await transport({ maxBytes: 8_192 });
    const { topic, Event, bus, handled } = await setup(t, 'maxbytes');
    await bus.publish(Event, { n: 0 }, { delayMs: 1_500 });
    expect(await t.delayed(topic, 'g')).toBe(1);
    // Well over 8 KiB of later events: the stream drops its oldest messages, the schedule first.
    await bus.publishMany(
      Event,
      Array.from({ length: 40 }, (_, i) => ({ data: { n: 1 + i } })),
    );
    expect(await t.delayed(topic, 'g')).toBe(0);
    await sleep(2_500);
    expect(handled.has(0)).toBe(false);
    await bus.close();
  });

  it('rewind reaches what the stream still holds: with interest retention, handled events are gone', async () => {
    const t = await transport({ retention: 'interest' });
    const { topic, Event, bus, handled } = await setup(t, 'interest-rewind');
    await bus.publishMany(Event, [{ data: { n: 1 } }, { data: { n: 2 } }]);
    await waitUntil(() => handled.size === 2);
    await bus.close();
    const other = await transport({ retention: 'interest' });
    await waitUntil(async () => (await other.rewind(topic, 'g', 'beginning', { dryRun: true })) === 0);
    expect(await other.rewind(topic, 'g', 'beginning')).toBe(0);
  });

  it('a pending delayed event survives a broker kill -9 (a private nats-server), also when it falls due while the server is down', async () => {
    const broker = await privateNats();
    try {
      const own = `${prefix}-kill`;
      const t = nats({ servers: broker.url, prefix: own });
      await t.connect();
      const topic = `kill-${randomUUID()}`;
      const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic });
      await t.ensureGroup(topic, 'g', 'latest');
      const producer = await createBus({ transport: t, source: 'test', logger: silentLogger });
      const sent = Date.now();
      await producer.publish(Event, { n: 1 }, { delayMs: 1_500 });
      await producer.publish(Event, { n: 2 }, { delayMs: 6_000 });
      await producer.close();
      await broker.kill9();
      await sleep(2_000);
      await broker.start();
      const handled = new Map<number, number>();
      const bus = await createBus({
        transport: nats({ servers: broker.url, prefix: own }),
        source: 'test',
        logger: silentLogger,
      });
      bus.subscribe(Event, (e) => void handled.set(e.data.n, Date.now()), { group: 'g' });
      await bus.start();
      await waitUntil(() => handled.size === 2, 20_000);
      expect(handled.get(1)! - sent).toBeGreaterThanOrEqual(1_500);
      expect(handled.get(2)! - sent).toBeGreaterThanOrEqual(6_000);
      await bus.close();
    } finally {
      await broker.stop();
    }
  }, 90_000);
});
