/**
 * `nats://` URLs: `nats://[user:pass@]host[:port][,host[:port]...][?option=value...]`, and
 * `tls://` (or `nats://...?tls=true`) for TLS. Credentials in the URL go to the client as
 * `user`/`pass` (or `token` when there is only a user part) and never appear in errors.
 */
import { ConfigError, redactUrl } from '@eventwire/core/transport';
import { checkOption, type NatsTransportOptions, NUMERIC_OPTIONS, type NumericOption } from './options.ts';

/** Parses a `nats://` URL into transport options. Throws ConfigError (credentials redacted). */
export function optionsFromUrl(url: string): NatsTransportOptions {
  const match = /^(nats|tls):\/\/([^?#]*)(?:\?([^#]*))?$/i.exec(url.trim());
  if (!match) throw new ConfigError(`not a nats:// URL: "${redactUrl(url)}"`);
  const scheme = match[1]!.toLowerCase();
  let authority = match[2]!.replace(/\/+$/, '');
  const params = new URLSearchParams(match[3] ?? '');
  const options: NatsTransportOptions = {};
  const connection: NonNullable<NatsTransportOptions['connection']> = {};

  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = userinfo.indexOf(':');
    if (colon >= 0) {
      connection.user = decodeURIComponent(userinfo.slice(0, colon));
      connection.pass = decodeURIComponent(userinfo.slice(colon + 1));
    } else if (userinfo) {
      connection.token = decodeURIComponent(userinfo);
    }
  }
  const hosts = authority.split(',').filter(Boolean);
  if (hosts.length === 0) throw new ConfigError(`nats URL has no host: "${redactUrl(url)}"`);
  options.servers = hosts.map((h) => `nats://${h}`);

  const tls = scheme === 'tls' || params.get('tls') === 'true';
  if (tls) connection.tls = {};
  const prefix = params.get('prefix');
  if (prefix) options.prefix = prefix;
  const stream = params.get('stream');
  if (stream) options.stream = stream;
  const storage = params.get('storage');
  if (storage) {
    if (storage !== 'file' && storage !== 'memory')
      throw new ConfigError(`nats URL: storage must be file or memory, not "${storage}"`);
    options.storage = storage;
  }
  const retention = params.get('retention');
  if (retention) {
    if (retention !== 'limits' && retention !== 'interest') {
      throw new ConfigError(`nats URL: retention must be limits or interest, not "${retention}"`);
    }
    options.retention = retention;
  }
  const name = params.get('name');
  if (name) connection.name = name;
  const domain = params.get('domain');
  if (domain) options.jetstream = { domain };
  // Every numeric option by its name, checked like the option (a ConfigError naming the parameter).
  for (const key of Object.keys(NUMERIC_OPTIONS) as NumericOption[]) {
    const raw = params.get(key);
    if (raw === null) continue;
    // Number('') is 0: an empty value is as wrong as a word.
    const value = raw.trim() === '' ? Number.NaN : Number(raw);
    checkOption(key, value, `nats URL parameter ${key}=${raw}`);
    options[key] = value;
  }
  if (Object.keys(connection).length > 0) options.connection = connection;
  return options;
}
