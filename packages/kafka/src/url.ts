/**
 * `kafka://host:port[,host:port][?option=value...]`
 *
 * Query options: `client` (`platformatic` | `kafkajs`), `clientId`, `partitions`,
 * `replicationFactor`, `connectionTimeoutMs`, `requestTimeoutMs`, `tls` (`true`), `sasl` (`plain` |
 * `scram-sha-256` | `scram-sha-512`, with the user and password of the URL's user info). Numbers
 * are checked like the options of the same name. Options that do not fit a URL (CA certificates,
 * a logger) go through `kafka({ ... })`.
 */
import { ConfigError, checkNumber, redactUrl } from '@eventwire/core/transport';
import type { KafkaClientName, KafkaOptions, KafkaSaslOptions } from './options.ts';

const MECHANISMS = new Set(['plain', 'scram-sha-256', 'scram-sha-512']);
const KNOWN = new Set([
  'client',
  'clientId',
  'partitions',
  'replicationFactor',
  'connectionTimeoutMs',
  'requestTimeoutMs',
  'tls',
  'ssl',
  'sasl',
]);

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
  // A misspelt option must not be ignored silently (`requestTimeout=1000` would keep 30 s).
  for (const key of params.keys()) {
    if (!KNOWN.has(key))
      throw new ConfigError(`unknown kafka URL parameter "${key}" (known: ${[...KNOWN].join(', ')})`);
  }
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
  const int = (name: string, max: number): number | undefined => {
    const raw = params.get(name);
    if (raw === null) return undefined;
    // An empty parameter is a mistake, not 0.
    return checkNumber(`kafka URL parameter ${name}`, raw === '' ? Number.NaN : Number(raw), { min: 1, max });
  };
  const partitions = int('partitions', 2_147_483_647);
  const replicationFactor = int('replicationFactor', 32_767);
  if (partitions !== undefined || replicationFactor !== undefined) {
    options.topics = {
      ...(partitions === undefined ? {} : { partitions }),
      ...(replicationFactor === undefined ? {} : { replicationFactor }),
    };
  }
  const connectionTimeoutMs = int('connectionTimeoutMs', 2_147_483_647);
  if (connectionTimeoutMs !== undefined) options.connectionTimeoutMs = connectionTimeoutMs;
  const requestTimeoutMs = int('requestTimeoutMs', 2_147_483_647);
  if (requestTimeoutMs !== undefined) options.requestTimeoutMs = requestTimeoutMs;
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
