/**
 * `sns-sqs://<region>?endpoint=<url>&fifo=true&prefix=prod-&waitTimeSeconds=5&maxReceiveCount=100&maxPollers=4`
 *
 * The host is the region (`sns-sqs://eu-west-1`); `sns-sqs://` alone takes it from the
 * environment. Credentials never go in the URL: they come from the AWS default chain (or the
 * `credentials` option of `snsSqs()`).
 */
import { ConfigError, redactUrl } from '@eventwire/core';
import type { SnsSqsOptions } from './options.ts';

const KNOWN = new Set([
  'endpoint',
  'fifo',
  'prefix',
  'waitTimeSeconds',
  'maxReceiveCount',
  'maxPollers',
  'retentionSeconds',
]);

export function parseUrl(url: string): SnsSqsOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(
      `invalid sns-sqs URL "${redactUrl(url)}": expected sns-sqs://<region>?endpoint=<url>`,
    );
  }
  if (parsed.protocol !== 'sns-sqs:') throw new ConfigError(`not an sns-sqs URL: "${redactUrl(url)}"`);
  if (parsed.username || parsed.password) {
    throw new ConfigError(
      'sns-sqs URLs carry no credentials: use the AWS default chain or the `credentials` option of snsSqs()',
    );
  }
  const options: SnsSqsOptions = {};
  if (parsed.hostname) options.region = parsed.hostname;
  for (const key of parsed.searchParams.keys()) {
    if (!KNOWN.has(key))
      throw new ConfigError(`unknown sns-sqs URL parameter "${key}" (known: ${[...KNOWN].join(', ')})`);
  }
  const q = parsed.searchParams;
  const endpoint = q.get('endpoint');
  if (endpoint) {
    try {
      new URL(endpoint);
    } catch {
      throw new ConfigError(`sns-sqs URL: endpoint "${redactUrl(endpoint)}" is not a URL`);
    }
    options.endpoint = endpoint;
  }
  const fifo = q.get('fifo');
  if (fifo !== null) {
    if (fifo !== 'true' && fifo !== 'false') throw new ConfigError('sns-sqs URL: fifo must be true or false');
    options.fifo = fifo === 'true';
  }
  const prefix = q.get('prefix');
  if (prefix !== null) options.namePrefix = prefix;
  const int = (name: string): number | undefined => {
    const value = q.get(name);
    if (value === null) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new ConfigError(`sns-sqs URL: ${name} must be a non-negative integer`);
    return n;
  };
  const wait = int('waitTimeSeconds');
  if (wait !== undefined) options.waitTimeSeconds = wait;
  const receives = int('maxReceiveCount');
  if (receives !== undefined) options.maxReceiveCount = receives;
  const pollers = int('maxPollers');
  if (pollers !== undefined) options.maxPollers = pollers;
  const retention = int('retentionSeconds');
  if (retention !== undefined) options.retentionSeconds = retention;
  return options;
}
