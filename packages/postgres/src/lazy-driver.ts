/**
 * A driver whose real one is made on first use. Transports are created synchronously while
 * opening PGlite, or loading `pg` (an optional peer, loaded only where a server is used), is
 * asynchronous: `createBus` then awaits `connect()`, the first use.
 */
import { queryableFrom, type SqlDriver } from './driver.ts';

export function lazyDriver(
  kind: SqlDriver['kind'],
  identity: () => unknown,
  open: () => Promise<SqlDriver>,
): SqlDriver {
  let opened: Promise<SqlDriver> | undefined;
  const driver = () => {
    opened ??= open();
    // A failed open (a package missing, a database that does not open) is tried again next time.
    opened.catch(() => {
      opened = undefined;
    });
    return opened;
  };
  return {
    kind,
    get identity() {
      return identity();
    },
    query: async (sql, params, options) => (await driver()).query(sql, params, options),
    transaction: async (work, options) => (await driver()).transaction(work, options),
    listen: async (channel, onNotify) => (await driver()).listen(channel, onNotify),
    wrapTransaction: queryableFrom,
    close: async () => {
      const open = opened;
      if (open) await (await open.catch(() => undefined))?.close();
    },
  };
}
