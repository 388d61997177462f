/**
 * The whole conformance suite on the memory transport with the tracing middleware installed
 * (always-on SDK, default options): tracing must change no delivery semantics, and a child
 * event stays in the handled event's trace (test 24).
 * With `processParent: 'link'` test 24's trace assertion does not hold, by design: the child
 * continues the process span's trace, which links to the creation trace (see the README).
 */
import { memoryBroker, memoryTransport } from '@eventwire/core';
import { defineConformanceSuite, memoryBrokerControls } from '@eventwire/testing/conformance';
import { openTelemetry } from '../src/index.ts';
import { harness } from './harness.ts';

const h = harness();
const broker = memoryBroker('otel-conformance');

defineConformanceSuite({
  name: 'memory + otel',
  transport: () => memoryTransport({ broker }),
  broker: memoryBrokerControls(broker),
  redeliveryMs: 1000,
  short: process.env.EVENTWIRE_CONFORMANCE_SHORT === '1',
  busOptions: {
    middleware: [openTelemetry({ tracerProvider: h.tracerProvider, meterProvider: h.meterProvider })],
  },
});
