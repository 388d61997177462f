/**
 * The adapter proves itself with eventwire's conformance suite. Expected skips, each named by the
 * suite: 15 broker-restart and 30 health (an in-process broker has no process to restart or
 * stop), 16 replay-from-start (capability replay: false: the broker keeps no log).
 */
import { defineConformanceSuite } from '@eventwire/testing/conformance';
import { EmitterBroker, emitterTransport } from '../src/emitter-transport.ts';

const broker = new EmitterBroker();

defineConformanceSuite({
  name: 'emitter',
  transport: () => emitterTransport({ broker }), // a new client of the same broker per call
  redeliveryMs: 1000, // close() gives unsettled messages back at once
});
