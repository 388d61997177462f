/**
 * The Postgres server of the tests: each test file works in schemas of its own (so that a table
 * lock or a truncate here never touches the conformance suites running against the same
 * database), dropped when the file is done.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll } from 'vitest';
import { POSTGRES_URL } from '../../../test/support/brokers.ts';

export { POSTGRES_URL };

const created: string[] = [];
let admin: pg.Pool | undefined;

/** A pool outside any test schema, for what a test does behind the adapter's back. */
export function adminPool(): pg.Pool {
  admin ??= new pg.Pool({ connectionString: POSTGRES_URL, max: 4 });
  return admin;
}

/** A new empty schema; `poolOptions` makes a pool (or the adapter's) work in it. */
export async function freshSchema(prefix: string): Promise<{ schema: string; poolOptions: pg.PoolConfig }> {
  const schema = `${prefix}_${randomUUID().slice(0, 8)}`;
  await adminPool().query(`create schema ${schema}`);
  created.push(schema);
  return { schema, poolOptions: { options: `-c search_path=${schema}` } };
}

afterAll(async () => {
  if (!admin) return;
  for (const schema of created.splice(0)) await admin.query(`drop schema if exists ${schema} cascade`);
  await admin.end();
  admin = undefined;
});
