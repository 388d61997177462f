import { join } from 'node:path';
import { describe } from 'vitest';
import { tempDir } from './harness.ts';
import { operationsTests } from './operations.ts';

// PGlite: one process at a time opens the directory, so the CLI runs while the test's bus is
// closed, and tail (which needs a concurrent publisher) runs on the Postgres server only.
describe('eventwire CLI on PGlite', () => {
  operationsTests({ url: () => `pglite://${join(tempDir(), 'db')}`, concurrent: false, suffix: '' });
});
