import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterEach, describe, expect, test } from 'vitest';
import { createPglite } from '../src/pglite-template.ts';

const saved = process.env.EVENTWIRE_PGLITE_TEMPLATE_DIR;
afterEach(() => {
  if (saved === undefined) delete process.env.EVENTWIRE_PGLITE_TEMPLATE_DIR;
  else process.env.EVENTWIRE_PGLITE_TEMPLATE_DIR = saved;
});

describe('a new PGlite data directory starts from a cached template', () => {
  test('the first new directory leaves a template; the next one loads it, quicker; a corrupt one falls back', {
    timeout: 120_000,
  }, async () => {
    const root = mkdtempSync(join(tmpdir(), 'ew-template-'));
    process.env.EVENTWIRE_PGLITE_TEMPLATE_DIR = join(root, 'cache');

    let started = performance.now();
    const first = await createPglite(PGlite, join(root, 'a'));
    const initdbMs = performance.now() - started;
    await first.query('create table marker (n int)');
    await first.close();
    const templates = readdirSync(join(root, 'cache'));
    expect(templates).toEqual([expect.stringMatching(/^pglite-.+-datadir\.tar\.gz$/)]);

    started = performance.now();
    const second = await createPglite(PGlite, join(root, 'b'));
    const fromTemplateMs = performance.now() - started;
    // A fresh cluster: the first one's later changes are not in the template.
    const tables = await second.query<{ n: number }>(
      "select count(*)::int as n from pg_tables where tablename = 'marker'",
    );
    expect(tables.rows[0]!.n).toBe(0);
    await second.close();
    expect(fromTemplateMs).toBeLessThan(initdbMs);

    writeFileSync(join(root, 'cache', templates[0]!), 'not a tarball');
    const third = await createPglite(PGlite, join(root, 'c'));
    expect((await third.query<{ one: number }>('select 1 as one')).rows[0]!.one).toBe(1);
    await third.close();
    expect(existsSync(join(root, 'c', 'PG_VERSION'))).toBe(true);
  });
});
