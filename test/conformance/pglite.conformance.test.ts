import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pglite } from '@eventwire/postgres';
import { defineConformanceSuite } from '@eventwire/testing/conformance';

// One on-disk database shared by every bus of the run, as `pglite://<dir>` buses in one process do.
const dataDir = mkdtempSync(join(tmpdir(), 'ew-pglite-conformance-'));

defineConformanceSuite({
  name: 'pglite',
  // Delay precision (test 36): bounded by pollIntervalMs 500 (p99 554 ms measured); the rest is slack for a loaded CI machine.
  delayPrecisionMs: 2_000,
  transport: () => pglite({ dataDir, pollIntervalMs: 250 }),
  // PGlite runs inside this process: there is no separate server to restart or stop.
  redeliveryMs: 5000,
});
