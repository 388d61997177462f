/**
 * The JetStream publisher on a real server: acks, the window (order kept, everything acked when
 * far more publishes than the window are handed over at once), and each failure reason.
 */
import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeBroker, NATS_URL } from '../../../test/support/brokers.ts';
import { toNatsHeaders } from '../src/headers.ts';
import { JetStreamPublishError, JetStreamPublisher } from '../src/publisher.ts';

const servers = NATS_URL.split(',').map((s) => (s.startsWith('nats://') ? s : `nats://${s}`));
const prefix = `ewp-${randomUUID().slice(0, 8)}`;
const body = new TextEncoder().encode('{"n":1}');

describeBroker('nats', () => {
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await connect({ servers });
  });

  afterAll(async () => {
    if (!nc) return;
    const jsm = await jetstreamManager(nc, { timeout: 20_000 });
    for await (const name of jsm.streams.names())
      if (name.startsWith(prefix)) await jsm.streams.delete(name).catch(() => {});
    await nc.close();
  });

  async function stream(): Promise<string> {
    const jsm = await jetstreamManager(nc, { timeout: 20_000 });
    const name = `${prefix}-${randomUUID().slice(0, 8)}`;
    await jsm.streams.add({ name, subjects: [`${name}.>`] });
    return `${name}.x`;
  }

  it('acks every publish in send order when far more are handed over than the window holds', async () => {
    const subject = await stream();
    const publisher = new JetStreamPublisher(nc, { size: 4 });
    const acks = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        publisher.publish(subject, body, toNatsHeaders({ n: String(i) }), 5_000),
      ),
    );
    expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    publisher.close();
  });

  it('reports a duplicate by Nats-Msg-Id', async () => {
    const subject = await stream();
    const publisher = new JetStreamPublisher(nc, { size: 8 });
    const headers = () => toNatsHeaders({}, { 'Nats-Msg-Id': 'same-id' });
    const first = await publisher.publish(subject, body, headers(), 5_000);
    const second = await publisher.publish(subject, body, headers(), 5_000);
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.seq).toBe(first.seq);
    publisher.close();
  });

  it('fails with no_stream when no stream captures the subject', async () => {
    const publisher = new JetStreamPublisher(nc, { size: 8 });
    const error = await publisher
      .publish(`${prefix}.nowhere.${randomUUID()}`, body, toNatsHeaders({}), 5_000)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetStreamPublishError);
    expect((error as JetStreamPublishError).reason).toBe('no_stream');
    publisher.close();
  });

  it('times out when nothing acks, and sends what waited behind it', async () => {
    // A plain subscriber that never answers: the publish is received but never acked.
    const silent = `${prefix}.silent.${randomUUID()}`;
    const sub = nc.subscribe(silent, { callback: () => {} });
    await nc.flush();
    const subject = await stream();
    const publisher = new JetStreamPublisher(nc, { size: 1 });
    const started = Date.now();
    const stuck = publisher.publish(silent, body, toNatsHeaders({}), 300).catch((e: unknown) => e);
    const behind = publisher.publish(subject, body, toNatsHeaders({}), 5_000);
    const error = await stuck;
    expect(error).toBeInstanceOf(JetStreamPublishError);
    expect((error as JetStreamPublishError).reason).toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect((await behind).seq).toBe(1);
    sub.unsubscribe();
    publisher.close();
  });

  it('rejects what is still waiting when closed', async () => {
    const silent = `${prefix}.silent.${randomUUID()}`;
    const sub = nc.subscribe(silent, { callback: () => {} });
    await nc.flush();
    const publisher = new JetStreamPublisher(nc, { size: 1 });
    const inFlight = publisher.publish(silent, body, toNatsHeaders({}), 60_000).catch((e: unknown) => e);
    const queued = publisher.publish(silent, body, toNatsHeaders({}), 60_000).catch((e: unknown) => e);
    publisher.close();
    for (const error of [await inFlight, await queued]) {
      expect(error).toBeInstanceOf(JetStreamPublishError);
      expect((error as JetStreamPublishError).reason).toBe('closed');
    }
    await expect(publisher.publish(silent, body, toNatsHeaders({}), 1_000)).rejects.toThrow(/closed/);
    sub.unsubscribe();
  });
});
