import { privateRabbitmq } from './support/private-brokers.ts';
import { defineFaultSuite } from './support/suite.ts';

defineFaultSuite({
  broker: 'rabbitmq',
  publishBoundMs: 10_000, // publishTimeoutMs default
  // A killed consumer's unacked deliveries are requeued as soon as the broker sees its connection
  // close (a kill closes the socket at once); the lease (30 s) bounds a silent one.
  redeliveryMs: 35_000,
  // broker kill -9 and start: a private rabbitmq-server (own node name, ports, data dir)
  brokerKill: privateRabbitmq,
});
