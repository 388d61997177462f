export { capturePublishes, type Faults, withFaults, wrapTransport } from './fault-injection.ts';
export { type HandledEvent, recorder } from './recorder.ts';
export { gate, waitFor } from './wait.ts';
