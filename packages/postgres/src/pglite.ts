/**
 * `@eventwire/postgres/pglite`: what only PGlite users need, with PGlite's own types. Apart from
 * the main entry so that an app on a Postgres server alone compiles without PGlite installed.
 */
export { openPglite } from './pglite-driver.ts';
