/**
 * `pnpm conformance <adapter>`: runs the conformance suite against one adapter and ends with
 * `<adapter>: N passed, N failed, N skipped`. Skipped tests carry their reason in their name.
 */
import { existsSync } from 'node:fs';
import { runVitest } from './run-vitest.ts';

const adapter = process.argv[2];
const file = `test/conformance/${adapter}.conformance.test.ts`;
if (!adapter || !existsSync(file)) {
  console.error(`usage: pnpm conformance <adapter>\nno suite at ${file}`);
  process.exit(2);
}
process.exit(runVitest(adapter, [file]));
