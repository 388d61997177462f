/**
 * Wire mapping between a {@link WireMessage} and a stream entry: binary mode, one field per
 * CloudEvents attribute under its bare name (`id`, `type`, `specversion`...), core's `ew*`
 * control headers as they are, and the body in the field `data` (a name no CloudEvents
 * attribute may take). A structured-mode message is `content-type` plus `data`.
 */
import { ConfigError, type WireMessage } from '@eventwire/core/transport';

/** The field that holds the body. */
export const BODY_FIELD = 'data';

/** Flattens a message into XADD's `field value ...` arguments. */
export function toFields(message: WireMessage): (string | Buffer)[] {
  const out: (string | Buffer)[] = [];
  const { headers, body } = message;
  for (const name in headers) {
    if (name === BODY_FIELD)
      throw new ConfigError(`header "${BODY_FIELD}" is reserved for the body on Redis`);
    out.push(name, headers[name]!);
  }
  out.push(
    BODY_FIELD,
    Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
  );
  return out;
}

/** Reads an entry's `[field, value, ...]` (as Buffers, so that the body stays byte-exact). */
export function fromFields(fields: readonly Buffer[]): WireMessage {
  const headers: Record<string, string> = {};
  let body: Uint8Array = Buffer.alloc(0);
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fieldName(fields[i]!, i >> 1);
    if (name === BODY_FIELD) body = fields[i + 1]!;
    // toString() without an encoding is UTF-8 and Node's fastest path to it.
    else headers[name] = fields[i + 1]!.toString();
  }
  return { headers, body };
}

/**
 * Field names seen last at each position. Entries of a stream nearly always repeat the same
 * names in the same order, and comparing a few bytes in JavaScript costs a fraction of making a
 * string of them (a call into C++ per field, for every entry read).
 */
const namesByPosition: { bytes: Buffer; name: string }[] = [];
const MAX_POSITIONS = 32;

function fieldName(bytes: Buffer, position: number): string {
  const last = namesByPosition[position];
  if (last !== undefined && sameBytes(bytes, last.bytes)) return last.name;
  const name = bytes.toString();
  // A copy: the reply's slices keep the whole socket chunk they were cut from alive.
  if (position < MAX_POSITIONS) namesByPosition[position] = { bytes: Buffer.from(bytes), name };
  return name;
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
