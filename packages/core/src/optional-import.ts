/**
 * Loading packages that are optional peers: an adapter (core resolves `@eventwire/kafka` from a
 * `kafka://` URL) or a client library an adapter needs only on one path (`pg` for a Postgres
 * server, not for PGlite). A missing one is an {@link AdapterNotInstalledError} naming exactly
 * the package that is missing, which is not always the one asked for: a missing `pg` inside an
 * installed `@eventwire/postgres` must not be reported as "install @eventwire/postgres".
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AdapterNotInstalledError } from './errors.ts';

/**
 * Imports `pkg`, from the caller's dependencies or else from the application's (the current
 * directory), so that strict package managers (pnpm) find it either way. `neededFor` says what
 * needs it (`the "kafka:" URL`, `@eventwire/postgres on a Postgres server`).
 */
export async function importOptional<T>(pkg: string, neededFor: string): Promise<T> {
  try {
    return (await import(pkg)) as T;
  } catch (first) {
    const missing = missingPackage(first);
    if (missing === undefined) throw first;
    if (missing !== pkg) throw new AdapterNotInstalledError(neededFor, missing, first);
    try {
      const resolved = createRequire(join(process.cwd(), 'package.json')).resolve(pkg);
      return (await import(pathToFileURL(resolved).href)) as T;
    } catch (second) {
      const stillMissing = missingPackage(second);
      if (stillMissing === undefined) throw second;
      throw new AdapterNotInstalledError(neededFor, stillMissing, first);
    }
  }
}

/**
 * Runs `load` (typically a dynamic `import()` of an adapter's own module that imports a client
 * library) and turns a missing package into an {@link AdapterNotInstalledError} naming it.
 */
export async function loadOptional<T>(neededFor: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const missing = missingPackage(error);
    if (missing === undefined) throw error;
    throw new AdapterNotInstalledError(neededFor, missing, error);
  }
}

/**
 * The package a module-not-found error is about, or undefined for any other error. Node words
 * it "Cannot find package 'pg' imported from …" (ESM) or "Cannot find module 'pg'" (require).
 */
export function missingPackage(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return undefined;
  const named = /Cannot find (?:package|module) '([^']+)'/.exec(String((error as Error).message));
  if (!named) return undefined;
  const specifier = named[1]!;
  // A bare specifier's package name: `@scope/name` or `name`, without a subpath.
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:')) {
    return packageOfPath(specifier);
  }
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** `/app/node_modules/@eventwire/kafka/dist/index.js` -> `@eventwire/kafka`. */
function packageOfPath(path: string): string | undefined {
  const at = path.lastIndexOf('node_modules/');
  if (at < 0) return undefined;
  const parts = path.slice(at + 'node_modules/'.length).split('/');
  return parts[0]?.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}
