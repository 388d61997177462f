/**
 * Runs inside the `embedded` app of scripts/test-package.ts: @eventwire/core, @eventwire/postgres,
 * zod and PGlite (the postgres README's embedded install), plus @eventwire/kafka with only its
 * default client. Each check fails if its defect comes back.
 */
import { AdapterNotInstalledError, createBus } from '@eventwire/core';
import { kafka } from '@eventwire/kafka';
// Defect 1: importing the package (and createBus on pglite://) loaded `pg`, an optional peer
// not installed here.
import { postgresInbox } from '@eventwire/postgres';
import { openPglite } from '@eventwire/postgres/pglite';

const problems: string[] = [];

/** `work` must reject with an AdapterNotInstalledError naming exactly `pkg`. */
async function expectMissing(what: string, work: () => Promise<unknown>, pkg: string): Promise<void> {
  try {
    await work();
    problems.push(`${what}: no error, expected the missing package ${pkg} to be named`);
  } catch (error) {
    if (!(error instanceof AdapterNotInstalledError) || error.package !== pkg) {
      problems.push(`${what}: expected AdapterNotInstalledError naming ${pkg}, got ${String(error)}`);
    } else if (!error.message.includes(`npm install ${pkg}`) || !error.message.includes(`pnpm add ${pkg}`)) {
      problems.push(`${what}: the message lacks the npm and pnpm install commands: ${error.message}`);
    }
  }
}

if (typeof openPglite !== 'function')
  problems.push('openPglite is not exported by @eventwire/postgres/pglite');
if (typeof postgresInbox !== 'function')
  problems.push('postgresInbox is not exported by @eventwire/postgres');
// The embedded path end to end: a PGlite database, the queue on it, one event handled.
const db = await openPglite();
await db.query('select 1');
await db.close();
// Defect 2: a missing client library inside an installed adapter was blamed on the adapter.
await expectMissing(
  'postgres:// without pg',
  () => createBus({ url: 'postgres://127.0.0.1:1/x', source: 'c' }),
  'pg',
);
await expectMissing(
  'redis:// without @eventwire/redis',
  () => createBus({ url: 'redis://127.0.0.1:1', source: 'c' }),
  '@eventwire/redis',
);
// Defect 3: @eventwire/kafka imported kafkajs and @platformatic/kafka statically.
await expectMissing(
  'kafka client kafkajs not installed',
  async () => {
    const transport = kafka({ brokers: ['127.0.0.1:1'], client: 'kafkajs' });
    await transport.connect();
  },
  'kafkajs',
);

if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('embedded app checks: ok');
