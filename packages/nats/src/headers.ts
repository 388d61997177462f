/**
 * CloudEvents binary mode over NATS headers (the CloudEvents NATS protocol binding): each
 * attribute travels as a `ce-<name>` header, and values are percent-encoded so that any
 * Unicode text (and CR/LF, which would break the header block) survives. eventwire's own
 * control headers (`ew*`) and `content-type` pass through under their own names.
 */
import { type MsgHdrs, MsgHdrsImpl } from '@nats-io/transport-node';

export const CE_PREFIX = 'ce-';
/** Header holding the dead-letter failure (JSON, percent-encoded) on a dead-letter stream. */
export const FAILURE_HEADER = 'ew-deadletter';
/** JetStream's publish-side dedup header. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';
/** JetStream message schedules (ADR-51, nats-server 2.12+): `@at <RFC 3339 time>` for a delayed publish. */
export const SCHEDULE_HEADER = 'Nats-Schedule';
/** The subject the server publishes a due schedule to (a subject of the same stream). */
export const SCHEDULE_TARGET_HEADER = 'Nats-Schedule-Target';
/** Per-message TTL (`allow_msg_ttl`); `never` exempts a pending schedule from the stream's max_age. */
export const TTL_HEADER = 'Nats-TTL';

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

/**
 * WireMessage headers (attribute name to value) to NATS headers, plus `extra` headers under
 * their own names, whose values must already be printable ASCII (percent-encoded JSON,
 * `Nats-Msg-Id`): they are checked, not encoded again.
 *
 * Built with `MsgHdrsImpl.fromRecord` rather than `headers().set()`: `set` re-scans every key
 * already present and validates each value with a regex, quadratic in the header count and a
 * visible share of publish CPU. Here every value is percent-encoded (printable ASCII only, so
 * no CR/LF can break the header block) and each distinct attribute name is mapped and
 * validated once.
 */
export function toNatsHeaders(headers: Record<string, string>, extra?: Record<string, string>): MsgHdrs {
  const record: Record<string, string[]> = {};
  for (const name in headers) record[wireName(name)] = [percentEncode(headers[name]!)];
  if (extra) for (const name in extra) record[checkedName(name)] = [checkedValue(extra[name]!)];
  return MsgHdrsImpl.fromRecord(record);
}

/** Attribute name to header name (`ce-` added where due), checked once per distinct name. */
const wireNames = new Map<string, string>();

function wireName(attribute: string): string {
  let name = wireNames.get(attribute);
  if (name === undefined) {
    const own = attribute === 'content-type' || attribute.startsWith('ew');
    name = checkedName(own ? attribute : CE_PREFIX + attribute);
    // Attribute names are few (CloudEvents attributes and extensions); the bound is a guard.
    if (wireNames.size < 1024) wireNames.set(attribute, name);
  }
  return name;
}

/** Printable ASCII; spaces only inside (`Nats-Schedule: @at <time>`), none to be trimmed. */
const PRINTABLE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;

/** A value that goes on the wire as is: printable ASCII (no CR/LF, no leading or trailing space). */
function checkedValue(value: string): string {
  if (!PRINTABLE.test(value)) throw new TypeError(`invalid NATS header value ${JSON.stringify(value)}`);
  return value;
}

const NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/** A NATS header name: printable ASCII without `:` (what `MsgHdrs.set` would enforce). */
function checkedName(name: string): string {
  if (!NAME.test(name)) throw new TypeError(`invalid NATS header name ${JSON.stringify(name)}`);
  return name;
}

/**
 * NATS headers back to WireMessage headers: `ce-` is stripped, names are lower-cased (header
 * names are case-insensitive in the binding), values decoded. Broker headers (`Nats-*`) and
 * the dead-letter failure header are dropped. Walks the entries once (`keys()` + `get()` would
 * re-scan every key per lookup). The consume path reads the bytes directly instead
 * (`header-block.ts`), with the same rules.
 */
export function fromNatsHeaders(headers: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const [name, values] of headers) if (values[0] !== undefined) headerAttribute(out, name, values[0]);
  return out;
}

/**
 * Adds one NATS header to WireMessage headers if eventwire reads it (`ce-*`, `content-type`,
 * `ew*` control headers); the first value of a name, in any case, wins.
 */
export function headerAttribute(out: Record<string, string>, name: string, value: string): void {
  const lower = name.toLowerCase();
  let key: string;
  if (lower.startsWith(CE_PREFIX)) key = lower.slice(CE_PREFIX.length);
  else if (lower === 'content-type' || (lower.startsWith('ew') && lower !== FAILURE_HEADER)) key = lower;
  else return;
  if (!Object.hasOwn(out, key)) out[key] = percentDecode(value);
}

/** Bytes the header block takes on the wire (`NATS/1.0\r\n`, `k: v\r\n` lines, final CRLF). */
export function headerBytes(headers: MsgHdrs): number {
  let bytes = 12;
  for (const [key, values] of headers) for (const v of values) bytes += key.length + 4 + Buffer.byteLength(v);
  return bytes;
}
