import { memoryBroker, memoryTransport } from '@eventwire/core';
import { defineRoundTripTests } from './round-trip.ts';

defineRoundTripTests('the memory transport', {
  bus: () => ({ transport: memoryTransport({ broker: memoryBroker(`otel-${Math.random()}`) }) }),
  system: 'memory',
});
