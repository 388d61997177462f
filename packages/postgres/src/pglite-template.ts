/**
 * A new PGlite data directory starts from a copy of an initialised one. PGlite runs Postgres's
 * initdb in WebAssembly for every new directory: about 5 s here, most of the time to the first
 * handled event of a new app. Loading a dump of a fresh cluster (`loadDataDir`) takes about 1 s.
 * The first new directory on a machine pays initdb once and leaves its dump in a cache folder,
 * keyed by the PGlite version; every later new directory loads that dump. Any trouble with the
 * cache (unwritable, corrupt, another version) falls back to initdb: it is an optimisation only.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';

/** `EVENTWIRE_PGLITE_TEMPLATE_DIR`, else `$XDG_CACHE_HOME/eventwire`, else `~/.cache/eventwire`. */
function cacheDir(): string {
  const given = process.env.EVENTWIRE_PGLITE_TEMPLATE_DIR;
  if (given) return given;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'eventwire');
}

/** The installed PGlite's version: a dump is only loaded by the version that wrote it. */
function pgliteVersion(): string | undefined {
  try {
    let dir = dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite')));
    for (let i = 0; i < 4; i++, dir = dirname(dir)) {
      const manifest = join(dir, 'package.json');
      if (!existsSync(manifest)) continue;
      const { name, version } = JSON.parse(readFileSync(manifest, 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (name === '@electric-sql/pglite') return version;
    }
  } catch {
    // Not resolvable this way (a bundler): no template.
  }
  return undefined;
}

/** A data directory PGlite has not initialised yet. */
function isNew(dataDir: string): boolean {
  return !existsSync(join(dataDir, 'PG_VERSION'));
}

/** Creates the database in `dataDir`, from the cached template when the directory is new. */
export async function createPglite(Pglite: typeof PGlite, dataDir: string): Promise<PGlite> {
  const version = isNew(dataDir) ? pgliteVersion() : undefined;
  if (!version) return Pglite.create(dataDir);
  const template = join(cacheDir(), `pglite-${version}-datadir.tar.gz`);
  if (existsSync(template)) {
    try {
      return await Pglite.create(dataDir, { loadDataDir: new Blob([readFileSync(template)]) });
    } catch {
      // A corrupt template: initdb as if there were none (and write a new one below).
    }
  }
  const db = await Pglite.create(dataDir);
  try {
    const dump = Buffer.from(await (await db.dumpDataDir('gzip')).arrayBuffer());
    mkdirSync(dirname(template), { recursive: true });
    // Written aside and renamed: a process starting meanwhile never reads half a file.
    const partial = `${template}.${process.pid}.partial`;
    writeFileSync(partial, dump);
    renameSync(partial, template);
  } catch {
    // No cache then; the next new directory runs initdb too.
  }
  return db;
}
