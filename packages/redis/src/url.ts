/**
 * `redis://` and `rediss://` URLs. Everything ioredis understands (user, password, host, port,
 * database path, TLS for `rediss:`) is passed to it; the query parameters below are eventwire's
 * and are removed before the URL reaches ioredis.
 *
 * | parameter | meaning |
 * |---|---|
 * | `prefix` | key prefix, default `ew:` |
 * | `maxMessageBytes` | largest event accepted, default 1 MiB |
 * | `trim` | `acked` (default): trim entries every group has acknowledged; `off`: never trim |
 * | `maxLen` | hard cap on a stream's length, even over unacknowledged entries (logged when it bites) |
 * | `retainMs` | keep entries at least this long after every group acknowledged them (for rewind) |
 */
import { ConfigError, checkNumber, type NumericRange, redactUrl } from '@eventwire/core/transport';
import type { RedisTransportOptions } from './options.ts';

const OWN_PARAMS = ['prefix', 'maxMessageBytes', 'trim', 'maxLen', 'retainMs'] as const;

export function optionsFromUrl(url: string): RedisTransportOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`not a valid Redis URL: "${redactUrl(url)}"`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(`a Redis URL starts with redis:// or rediss://, not "${parsed.protocol}"`);
  }
  const options: RedisTransportOptions = {};
  const params = parsed.searchParams;
  const prefix = params.get('prefix');
  if (prefix !== null) options.prefix = prefix;
  const maxBytes = params.get('maxMessageBytes');
  if (maxBytes !== null) options.maxMessageBytes = urlNumber('maxMessageBytes', maxBytes, { min: 1 });
  const trim = params.get('trim');
  const maxLen = params.get('maxLen');
  if (trim !== null && trim !== 'acked' && trim !== 'off') {
    throw new ConfigError(`trim=${trim} is not one of: acked, off`);
  }
  const cap = maxLen === null ? undefined : urlNumber('maxLen', maxLen, { min: 1 });
  const retain = params.get('retainMs');
  const retainMs =
    retain === null ? undefined : urlNumber('retainMs', retain, { min: 0, max: Number.MAX_SAFE_INTEGER });
  if (trim === 'off') options.trim = false;
  else if (cap !== undefined || retainMs !== undefined)
    options.trim = {
      ...(cap === undefined ? {} : { maxLen: cap }),
      ...(retainMs === undefined ? {} : { retainMs }),
    };
  for (const name of OWN_PARAMS) params.delete(name);
  options.url = parsed.toString();
  return options;
}

/** A numeric parameter, checked like the option it sets (a ConfigError naming it otherwise). */
function urlNumber(name: string, raw: string, range: NumericRange): number {
  // Number('') is 0: an empty value is as wrong as a word.
  const value = raw.trim() === '' ? Number.NaN : Number(raw);
  return checkNumber(`redis URL parameter ${name}=${raw}`, value, range);
}
