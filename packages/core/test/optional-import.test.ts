import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { AdapterNotInstalledError, importOptional, missingPackage } from '../src/transport-toolkit.ts';

const cwd = process.cwd();
/** The rejection of `work` (which must reject). */
const failure = (work: Promise<unknown>) =>
  work.then(
    () => {
      throw new Error('resolved, expected a rejection');
    },
    (error: unknown) => error as AdapterNotInstalledError,
  );
afterEach(() => process.chdir(cwd));

/** An app directory whose node_modules holds `fake-adapter`, which imports a client that is not installed. */
function appWithAdapterMissingItsClient(): string {
  const app = mkdtempSync(join(tmpdir(), 'ew-optional-'));
  writeFileSync(join(app, 'package.json'), '{"name":"app","type":"module"}');
  const adapter = join(app, 'node_modules', 'fake-adapter');
  mkdirSync(adapter, { recursive: true });
  writeFileSync(join(adapter, 'package.json'), '{"name":"fake-adapter","type":"module","main":"index.js"}');
  writeFileSync(join(adapter, 'index.js'), "import 'not-installed-client';\nexport const x = 1;\n");
  return app;
}

describe('optional peers', () => {
  test('a missing package is named, with the npm and pnpm install commands', async () => {
    const error = await failure(importOptional('@eventwire/not-a-package', 'the "x:" URL'));
    expect(error).toBeInstanceOf(AdapterNotInstalledError);
    expect(error.package).toBe('@eventwire/not-a-package');
    expect(error.message).toBe(
      'the "x:" URL needs the package @eventwire/not-a-package, which is not installed: `npm install @eventwire/not-a-package` (or `pnpm add @eventwire/not-a-package`)',
    );
  });
  test('an installed adapter missing its client library blames the client, not the adapter', async () => {
    process.chdir(appWithAdapterMissingItsClient());
    const error = await failure(importOptional('fake-adapter', 'the "fake:" URL'));
    expect(error).toBeInstanceOf(AdapterNotInstalledError);
    expect(error.package).toBe('not-installed-client');
    expect(error.message).not.toContain('install fake-adapter');
  });
  test('missingPackage reads the package of ESM and CommonJS not-found errors, and only those', () => {
    const esm = Object.assign(
      new Error("Cannot find package 'pg' imported from /app/node_modules/@eventwire/postgres/dist/url.js"),
      { code: 'ERR_MODULE_NOT_FOUND' },
    );
    const scoped = Object.assign(new Error("Cannot find module '@aws-sdk/client-sqs/dist'"), {
      code: 'MODULE_NOT_FOUND',
    });
    const path = Object.assign(
      new Error("Cannot find module '/app/node_modules/@eventwire/kafka/dist/index.js' imported from /x.js"),
      { code: 'ERR_MODULE_NOT_FOUND' },
    );
    expect(missingPackage(esm)).toBe('pg');
    expect(missingPackage(scoped)).toBe('@aws-sdk/client-sqs');
    expect(missingPackage(path)).toBe('@eventwire/kafka');
    expect(missingPackage(new Error("Cannot find package 'pg'"))).toBeUndefined();
  });
});
