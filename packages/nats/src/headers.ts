/**
 * CloudEvents binary mode over NATS headers (the CloudEvents NATS protocol binding): each
 * attribute travels as a `ce-<name>` header, and values are percent-encoded so that any
 * Unicode text (and CR/LF, which would break the header block) survives. eventwire's own
 * control headers (`ew*`) and `content-type` pass through under their own names.
 */
import { type MsgHdrs, headers as natsHeaders } from '@nats-io/transport-node';

export const CE_PREFIX = 'ce-';
/** Header holding the dead-letter failure (JSON, percent-encoded) on a dead-letter stream. */
export const FAILURE_HEADER = 'ew-deadletter';
/** JetStream's publish-side dedup header. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

const SAFE = /^[\x21\x23-\x24\x26-\x7e]*$/;

/** Percent-encodes everything outside printable ASCII, plus `%` and `"` (CloudEvents HTTP/NATS rule). */
export function percentEncode(value: string): string {
  // Most values (ids, types, times, traceparent) need no escaping: skip the per-character walk.
  if (SAFE.test(value)) return value;
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (code >= 0x21 && code <= 0x7e && ch !== '%' && ch !== '"') out += ch;
    else
      for (const byte of Buffer.from(ch, 'utf8'))
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Decodes `%XX` sequences as UTF-8; malformed input is returned as is rather than thrown on. */
export function percentDecode(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** WireMessage headers (attribute name to value) to NATS headers. */
export function toNatsHeaders(headers: Record<string, string>, extra: Record<string, string> = {}): MsgHdrs {
  const out = natsHeaders();
  for (const [name, value] of Object.entries(headers)) {
    const key = name === 'content-type' || name.startsWith('ew') ? name : `${CE_PREFIX}${name}`;
    out.set(key, percentEncode(value));
  }
  for (const [name, value] of Object.entries(extra)) out.set(name, value);
  return out;
}

/**
 * NATS headers back to WireMessage headers: `ce-` is stripped, names are lower-cased (header
 * names are case-insensitive in the binding), values decoded. Broker headers (`Nats-*`) and
 * the dead-letter failure header are dropped.
 */
export function fromNatsHeaders(headers: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const key of headers.keys()) {
    const lower = key.toLowerCase();
    const value = percentDecode(headers.get(key));
    if (lower.startsWith(CE_PREFIX)) out[lower.slice(CE_PREFIX.length)] = value;
    else if (lower === FAILURE_HEADER) continue;
    else if (lower === 'content-type' || lower.startsWith('ew')) out[lower] = value;
  }
  return out;
}

/** Bytes the header block takes on the wire (`NATS/1.0\r\n`, `k: v\r\n` lines, final CRLF). */
export function headerBytes(headers: MsgHdrs): number {
  let bytes = 12;
  for (const key of headers.keys())
    for (const v of headers.values(key)) bytes += key.length + 4 + Buffer.byteLength(v);
  return bytes;
}
