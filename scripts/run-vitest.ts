/**
 * Runs vitest and ends with one plain line, `<label>: N passed, N failed, N skipped`, listing each
 * failure and each skip with its reason. Used by `pnpm conformance <adapter>` and the full test run.
 *
 *   node scripts/run-vitest.ts <label> [vitest arguments...]
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function runVitest(label: string, args: string[]): number {
  const report = join(mkdtempSync(join(tmpdir(), 'ew-vitest-')), 'report.json');
  const result = spawnSync(
    'pnpm',
    [
      'exec',
      'vitest',
      'run',
      ...args,
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
    ],
    { stdio: 'inherit' },
  );
  interface Assertion {
    fullName: string;
    status: string;
    meta?: { skipReason?: string };
  }
  interface FileResult {
    name: string;
    status: string;
    message?: string;
    assertionResults: Assertion[];
  }
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  if (!existsSync(report)) {
    console.log(`${label}: vitest wrote no report`);
    if (process.env.EW_SUMMARY_FILE) {
      appendFileSync(
        process.env.EW_SUMMARY_FILE,
        `${JSON.stringify({ label, passed: 0, failed: 1, skipped: 0 })}\n`,
      );
    }
    return 1;
  }
  const json = JSON.parse(readFileSync(report, 'utf8')) as { testResults: FileResult[] };
  for (const file of json.testResults) {
    // A file that failed to load (e.g. a required broker is down) has no assertions: count it.
    if (file.status === 'failed' && file.assertionResults.length === 0) {
      failed++;
      console.log(`FAILED  ${file.name}: ${file.message ?? 'failed to load'}`);
    }
    for (const a of file.assertionResults) {
      if (a.status === 'passed') passed++;
      else if (a.status === 'failed') {
        failed++;
        console.log(`FAILED  ${a.fullName}`);
      } else {
        skipped++;
        console.log(`SKIPPED ${a.fullName}${a.meta?.skipReason ? ` (${a.meta.skipReason})` : ''}`);
      }
    }
  }
  console.log(`${label}: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  // scripts/test-all.sh adds the counts of every run up into one closing line.
  if (process.env.EW_SUMMARY_FILE) {
    appendFileSync(process.env.EW_SUMMARY_FILE, `${JSON.stringify({ label, passed, failed, skipped })}\n`);
  }
  return failed > 0 || result.status !== 0 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [label = 'tests', ...args] = process.argv.slice(2);
  process.exit(runVitest(label, args));
}
