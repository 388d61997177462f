import { memoryBroker, memoryTransport } from '@eventwire/core';
import { defineConformanceSuite, memoryBrokerControls } from '@eventwire/testing/conformance';

// A named broker of its own, so an outage simulated here touches no other test file.
const broker = memoryBroker('conformance');

defineConformanceSuite({
  name: 'memory',
  // Delay precision (test 36): a timer in the process; the rest is slack for a loaded CI machine.
  delayPrecisionMs: 500,
  transport: () => memoryTransport({ broker }),
  broker: memoryBrokerControls(broker),
  redeliveryMs: 1000,
  short: process.env.EVENTWIRE_CONFORMANCE_SHORT === '1',
});
