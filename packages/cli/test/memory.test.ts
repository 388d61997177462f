import { randomUUID } from 'node:crypto';
import { describe } from 'vitest';
import { operationsTests } from './operations.ts';

// The in-process `memory:` broker cannot be shared with a subprocess, so this file runs the
// CLI's run() (the same code the binary runs) in the test process, on a named memory broker.
describe('eventwire CLI on the memory broker (in process)', () => {
  operationsTests({
    url: () => `memory://cli-${randomUUID().slice(0, 8)}`,
    concurrent: true,
    suffix: '',
    inProcess: true,
  });
});
