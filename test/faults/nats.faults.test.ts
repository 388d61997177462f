import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { NATS_URL } from '../support/brokers.ts';
import { privateNats } from './support/private-brokers.ts';
import { defineFaultSuite } from './support/suite.ts';

defineFaultSuite({
  broker: 'nats',
  // broker kill -9 and start: a private nats on a free port (never the shared one)
  brokerKill: privateNats,
  publishBoundMs: 5_000, // publishTimeoutMs default
  // ack_wait is the lease, 30 s.
  redeliveryMs: 35_000,
  async cleanup(prefix) {
    const nc = await connect({ servers: NATS_URL, reconnect: false }).catch(() => undefined);
    if (!nc) return;
    try {
      const jsm = await jetstreamManager(nc);
      for await (const name of jsm.streams.names()) {
        if (name.startsWith(`${prefix}_`)) await jsm.streams.delete(name).catch(() => {});
      }
    } finally {
      await nc.close();
    }
  },
});
