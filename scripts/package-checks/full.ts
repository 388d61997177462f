/**
 * Runs inside the `full` app of scripts/test-package.ts (every package, every client library).
 * Each check fails if its defect comes back.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createBus, redactUrl } from '@eventwire/core';

const problems: string[] = [];
const bin = 'node_modules/.bin/eventwire';

// Defect 7: `eventwire --version` was a usage error.
const version = spawnSync(bin, ['--version'], { encoding: 'utf8' });
if (version.status !== 0 || version.stdout.trim() !== process.env.EW_CLI_VERSION) {
  problems.push(
    `eventwire --version: exit ${version.status}, printed "${version.stdout.trim()}" ${version.stderr.trim()}`,
  );
}
const help = spawnSync(bin, ['--help'], { encoding: 'utf8' });
if (help.status !== 0 || !help.stdout.includes('Usage: eventwire'))
  problems.push('eventwire --help did not print usage');

// Defect 7: one masking style: the whole user info becomes ***, in bus errors and in the CLI.
const secretUrl = 'redis://user:s3cret@127.0.0.1:1';
if (redactUrl(secretUrl) !== 'redis://***@127.0.0.1:1')
  problems.push(`redactUrl gave ${redactUrl(secretUrl)}`);
const busError = await createBus({ url: secretUrl, source: 'c' }).then(
  async (bus) => {
    await bus.close();
    return undefined;
  },
  (error: unknown) => error as Error,
);
if (!busError) problems.push('createBus against an unreachable Redis resolved');
else if (busError.message.includes('s3cret') || /\*\*\*:\*\*\*@/.test(busError.message)) {
  problems.push(`bus error masks differently: ${busError.message}`);
}
writeFileSync('eventwire.config.mjs', 'export default { events: [], groups: {} };\n');
const doctor = spawnSync(bin, ['doctor', '--url', secretUrl], { encoding: 'utf8', timeout: 60_000 });
const printed = doctor.stdout + doctor.stderr;
if (printed.includes('s3cret') || /\*\*\*:\*\*\*@/.test(printed) || !printed.includes('redis://***@')) {
  problems.push(`eventwire doctor masks differently: ${printed.trim()}`);
}

if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('full app checks: ok');
