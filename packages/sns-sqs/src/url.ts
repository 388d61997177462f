/**
 * `sns-sqs://<region>?endpoint=<url>&fifo=true&prefix=prod-&waitTimeSeconds=5&maxReceiveCount=100&maxPollers=4`
 *
 * Every numeric option of options.ts is a parameter of the same name, checked against the same
 * range (`requestTimeoutMs=0` is a ConfigError here, not a surprise later).
 *
 * The host is the region (`sns-sqs://eu-west-1`); `sns-sqs://` alone takes it from the
 * environment. Credentials never go in the URL: they come from the AWS default chain (or the
 * `credentials` option of `snsSqs()`).
 */
import { ConfigError, checkNumber, redactUrl } from '@eventwire/core/transport';
import { NUMERIC_OPTIONS, type NumericOption, type SnsSqsOptions } from './options.ts';

const NUMERIC = Object.keys(NUMERIC_OPTIONS) as NumericOption[];
const KNOWN = new Set(['endpoint', 'fifo', 'prefix', ...NUMERIC]);

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
  for (const name of NUMERIC) {
    const value = q.get(name);
    if (value === null) continue;
    // An empty parameter is a mistake, not 0.
    options[name] = checkNumber(
      `sns-sqs URL parameter ${name}`,
      value === '' ? Number.NaN : Number(value),
      NUMERIC_OPTIONS[name],
    );
  }
  return options;
}
