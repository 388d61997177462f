import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));

test('the example prints one trace crossing producer, broker, consumer and child event', async () => {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--conditions=source', main],
      {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: { ...process.env, EVENTWIRE_URL: '' },
        timeout: 30_000,
      },
      (error, out, err) => (error ? reject(new Error(`${error.message}\n${out}\n${err}`)) : resolve(out)),
    );
  });
  expect(stdout).toContain('=== 5 spans in 1 trace(s)');
  const tree = stdout.slice(stdout.indexOf('=== 5 spans'));
  for (const line of [
    /^POST \/signup \[SERVER\]/m,
    /^ {2}send user\.signed_up \[PRODUCER\]/m,
    /^ {4}process user\.signed_up \[CONSUMER\] memory group=email/m,
    /^ {6}send email\.sent \[PRODUCER\]/m,
    /^ {8}process email\.sent \[CONSUMER\] memory group=audit/m,
  ]) {
    expect(tree).toMatch(line);
  }
});
