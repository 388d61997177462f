/**
 * Wire mapping between a {@link WireMessage} and a stream entry: binary mode, one field per
 * CloudEvents attribute under its bare name (`id`, `type`, `specversion`...), core's `ew*`
 * control headers as they are, and the body in the field `data` (a name no CloudEvents
 * attribute may take). A structured-mode message is `content-type` plus `data`.
 */
import { ConfigError, type WireMessage } from '@eventwire/core';

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
  // toString() without an encoding is UTF-8 and Node's fastest path to it (this runs for every
  // field of every entry read).
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString();
    if (name === BODY_FIELD) body = fields[i + 1]!;
    else headers[name] = fields[i + 1]!.toString();
  }
  return { headers, body };
}
