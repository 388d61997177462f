import { randomUUID } from 'node:crypto';
import { nats } from '@eventwire/nats';
import { defineConformanceSuite } from '@eventwire/testing/conformance';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll } from 'vitest';
import { NATS_URL, requireBroker, restartBroker, startBroker, stopBroker } from '../support/brokers.ts';

// A prefix of its own per run: its streams are deleted afterwards, and nothing another run (or
// another test file) created is touched.
const prefix = `ewc-${randomUUID().slice(0, 8)}`;
const servers = NATS_URL.split(',').map((s) => (s.startsWith('nats://') ? s : `nats://${s}`));

beforeAll(async () => {
  await requireBroker('nats');
});

afterAll(async () => {
  const nc = await connect({ servers, reconnect: false }).catch(() => undefined);
  if (!nc) return;
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(`${prefix}_`)) await jsm.streams.delete(name).catch(() => {});
    }
  } finally {
    await nc.close();
  }
}, 60_000);

defineConformanceSuite({
  name: 'nats',
  // Delay precision (test 36): nats-server's scheduler runs every 250 ms (p99 255-309 ms measured); the rest is slack for a loaded CI machine.
  delayPrecisionMs: 2_000,
  transport: () => nats({ servers, prefix }),
  broker: {
    restart: () => restartBroker('nats'),
    stop: () => stopBroker('nats'),
    start: () => startBroker('nats'),
  },
  // JetStream counts every delivery (num_delivered), also one a closing consumer gives back.
  releaseCountsAttempt: true,
  short: process.env.EVENTWIRE_CONFORMANCE_SHORT === '1',
});
