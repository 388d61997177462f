import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AdapterNotInstalledError, ConfigError } from './errors.ts';
import { redactUrl } from './logger.ts';
import { memoryBroker, memoryTransport } from './memory-transport.ts';
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
 * on demand, from core's own dependencies or else from the application's (the current
 * directory), so that strict package managers (pnpm) find it either way.
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
  const adapter = await importAdapter(scheme, pkg);
  return adapter.transportFromUrl(url);
}

async function importAdapter(scheme: string, pkg: string): Promise<AdapterModule> {
  try {
    return (await import(pkg)) as AdapterModule;
  } catch (first) {
    if (!isNotFound(first, pkg)) throw first;
    try {
      const resolved = createRequire(join(process.cwd(), 'package.json')).resolve(pkg);
      return (await import(pathToFileURL(resolved).href)) as AdapterModule;
    } catch (second) {
      if (!isNotFound(second, pkg)) throw second;
      throw new AdapterNotInstalledError(scheme, pkg, first);
    }
  }
}

function isNotFound(error: unknown, pkg: string): boolean {
  const code = (error as { code?: string }).code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String(error).includes(pkg);
}
