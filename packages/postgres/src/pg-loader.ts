/**
 * Loads pg-driver.ts, the one module that imports `pg` (an optional peer), only where a Postgres
 * server is used. A missing `pg` is an AdapterNotInstalledError naming it. Kept apart from the
 * modules the public types come from, so that their declarations never reach `pg`'s types.
 */
import { loadOptional } from '@eventwire/core/transport';

export function loadPgDriver(): Promise<typeof import('./pg-driver.ts')> {
  return loadOptional('@eventwire/postgres on a Postgres server', () => import('./pg-driver.ts'));
}
