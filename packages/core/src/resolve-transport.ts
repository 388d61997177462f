import { ConfigError } from './errors.ts';
import { redactUrl } from './logger.ts';
import { memoryBroker, memoryTransport } from './memory-transport.ts';
import { importOptional } from './optional-import.ts';
import type { Transport } from './transport.ts';

/** URL scheme to adapter package. Each package exports `transportFromUrl(url)`. */
const ADAPTERS: Record<string, string> = {
  'pglite:': '@eventwire/postgres',
  'postgres:': '@eventwire/postgres',
  'postgresql:': '@eventwire/postgres',
  'redis:': '@eventwire/redis',
  'rediss:': '@eventwire/redis',
  'amqp:': '@eventwire/rabbitmq',
  'amqps:': '@eventwire/rabbitmq',
  'nats:': '@eventwire/nats',
  'kafka:': '@eventwire/kafka',
  'sns-sqs:': '@eventwire/sns-sqs',
};

/** What an adapter package exports for URL-based configuration. */
export interface AdapterModule {
  transportFromUrl(url: string): Transport | Promise<Transport>;
}

/**
 * Picks the adapter by URL scheme. Core imports no adapter statically: the package is loaded
 * on demand (see optional-import.ts), and a missing one, or a missing client library inside
 * it, is an AdapterNotInstalledError naming the package to install.
 */
export async function resolveTransport(url: string): Promise<Transport> {
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0]?.toLowerCase();
  if (scheme === 'memory:') {
    const name = url.slice('memory:'.length).replace(/^\/\//, '');
    return memoryTransport({ broker: memoryBroker(name || undefined) });
  }
  const pkg = scheme ? ADAPTERS[scheme] : undefined;
  if (!scheme || !pkg) {
    throw new ConfigError(
      `unknown broker URL "${redactUrl(url)}": expected one of memory:, ${Object.keys(ADAPTERS).join(', ')}`,
    );
  }
  const adapter = await importOptional<AdapterModule>(pkg, `the "${scheme}" URL`);
  return adapter.transportFromUrl(url);
}
