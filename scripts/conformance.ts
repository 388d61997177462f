/**
 * `pnpm conformance <adapter>`: runs the conformance suite against one adapter and ends with
 * `N passed, N failed, N skipped`, naming the capability behind each skip.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const adapter = process.argv[2];
const file = `test/conformance/${adapter}.conformance.test.ts`;
if (!adapter || !existsSync(file)) {
  console.error(`usage: pnpm conformance <adapter>\nno suite at ${file}`);
  process.exit(2);
}
const report = join(mkdtempSync(join(tmpdir(), 'ew-conformance-')), 'report.json');
const result = spawnSync(
  'pnpm',
  ['exec', 'vitest', 'run', file, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`],
  { stdio: 'inherit' },
);

interface Assertion {
  title: string;
  status: string;
  failureMessages: string[];
  meta?: { skipReason?: string };
}
let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(report)) {
  const json = JSON.parse(readFileSync(report, 'utf8')) as { testResults: { assertionResults: Assertion[] }[] };
  for (const a of json.testResults.flatMap((r) => r.assertionResults)) {
    if (a.status === 'passed') passed++;
    else if (a.status === 'failed') {
      failed++;
      console.log(`FAILED  ${a.title}`);
    } else {
      skipped++;
      console.log(`SKIPPED ${a.title}${a.meta?.skipReason ? ` (${a.meta.skipReason})` : ''}`);
    }
  }
} else failed = 1;
console.log(`${adapter}: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || result.status !== 0 ? 1 : 0);
