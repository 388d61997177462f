/**
 * `kafka://host:port[,host:port][?option=value...]`
 *
 * Query options: `client` (`platformatic` | `kafkajs`), `clientId`, `partitions`,
 * `replicationFactor`, `tls` (`true`), `sasl` (`plain` | `scram-sha-256` | `scram-sha-512`, with
 * the user and password of the URL's user info). Options that do not fit a URL (CA
 * certificates, a logger) go through `kafka({ ... })`.
 */
import { ConfigError, redactUrl } from '@eventwire/core';
import type { KafkaClientName, KafkaOptions, KafkaSaslOptions } from './options.ts';

const MECHANISMS = new Set(['plain', 'scram-sha-256', 'scram-sha-512']);

export function optionsFromUrl(url: string): KafkaOptions {
  const match = /^kafka:\/\/(?:([^@/?#]*)@)?([^/?#]+)\/?(?:\?([^#]*))?$/i.exec(url);
  if (!match)
    throw new ConfigError(`"${redactUrl(url)}" is not a kafka URL: expected kafka://host:port[,host:port]`);
  const [, userInfo, hosts, query] = match;
  const brokers = hosts!
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  for (const broker of brokers) {
    if (!/^[^:]+:\d{1,5}$/.test(broker) && !/^\[[^\]]+\]:\d{1,5}$/.test(broker)) {
      throw new ConfigError(`kafka URL "${redactUrl(url)}": "${broker}" must be host:port`);
    }
  }
  const params = new URLSearchParams(query ?? '');
  const options: KafkaOptions = { brokers };
  const client = params.get('client');
  if (client !== null) {
    if (client !== 'platformatic' && client !== 'kafkajs') {
      throw new ConfigError(`kafka URL: client must be "platformatic" or "kafkajs", not "${client}"`);
    }
    options.client = client as KafkaClientName;
  }
  const clientId = params.get('clientId');
  if (clientId) options.clientId = clientId;
  const int = (name: string): number | undefined => {
    const raw = params.get(name);
    if (raw === null) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1)
      throw new ConfigError(`kafka URL: ${name} must be an integer >= 1, not "${raw}"`);
    return n;
  };
  const partitions = int('partitions');
  const replicationFactor = int('replicationFactor');
  if (partitions !== undefined || replicationFactor !== undefined) {
    options.topics = {
      ...(partitions === undefined ? {} : { partitions }),
      ...(replicationFactor === undefined ? {} : { replicationFactor }),
    };
  }
  const tls = params.get('tls') ?? params.get('ssl');
  if (tls === 'true' || tls === '1') options.ssl = true;
  const mechanism = params.get('sasl');
  if (mechanism !== null) {
    if (!MECHANISMS.has(mechanism))
      throw new ConfigError(`kafka URL: sasl must be one of ${[...MECHANISMS].join(', ')}`);
    if (!userInfo) throw new ConfigError('kafka URL: sasl needs user:password@ in the URL');
    const [user, password = ''] = userInfo.split(':');
    options.sasl = {
      mechanism: mechanism as KafkaSaslOptions['mechanism'],
      username: decodeURIComponent(user!),
      password: decodeURIComponent(password),
    };
  } else if (userInfo) {
    throw new ConfigError('kafka URL: user info needs ?sasl=plain|scram-sha-256|scram-sha-512');
  }
  return options;
}
