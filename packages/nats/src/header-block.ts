/**
 * A delivery's headers read straight from the bytes of its header block.
 *
 * The public way, `msg.headers`, builds a `MsgHdrs` first: per header line it canonicalises the
 * name, re-scans every name seen so far and checks the value with a regex, and reading the
 * result back (`fromNatsHeaders`) walks it again. On the consume path that was the largest
 * per-message cost of this adapter after the socket itself. Here the block is decoded once and
 * each `name: value` line goes straight into the attribute record, with the same rules as
 * `fromNatsHeaders` (`headerAttribute`: names lower-cased, `ce-` stripped, values
 * percent-decoded, first value of a name kept, broker and dead-letter headers dropped).
 *
 * The header block is not exposed by nats.js's `Msg` interface; its `MsgImpl` keeps the raw
 * bytes (`_rdata`) and the header length (`_msg.hdr`). Both are checked before use and anything
 * unexpected (another client version, a status line) falls back to `msg.headers`, so this can
 * only ever be slower, never different. `test/unit.test.ts` fails if the fast path stops
 * being taken with the installed client.
 */
import type { Msg } from '@nats-io/transport-node';
import { fromNatsHeaders, headerAttribute } from './headers.ts';

const PREAMBLE = 'NATS/1.0\r\n';
const decoder = new TextDecoder();

/** The WireMessage headers of a delivery (see {@link fromNatsHeaders} for the mapping). */
export function readHeaders(msg: Msg): Record<string, string> {
  const block = headerBlock(msg);
  if (block) {
    const parsed = parseHeaderBlock(block);
    if (parsed) return parsed;
  }
  return fromNatsHeaders(msg.headers);
}

/** The raw header block of a message, when the client keeps it where nats.js 3.x does. */
export function headerBlock(msg: Msg): Uint8Array | undefined {
  const impl = msg as unknown as { _rdata?: unknown; _msg?: { hdr?: unknown } };
  const length = impl._msg?.hdr;
  const bytes = impl._rdata;
  if (typeof length !== 'number' || length <= 0 || !(bytes instanceof Uint8Array)) return undefined;
  if (length > bytes.byteLength) return undefined;
  return bytes.subarray(0, length);
}

/**
 * Parses `NATS/1.0\r\n(name: value\r\n)*\r\n`. Undefined for anything else (a status line,
 * a malformed block): the caller then takes the client's own parser.
 */
export function parseHeaderBlock(block: Uint8Array): Record<string, string> | undefined {
  const text = decoder.decode(block);
  if (!text.startsWith(PREAMBLE)) return undefined;
  const out: Record<string, string> = {};
  let start = PREAMBLE.length;
  for (;;) {
    const end = text.indexOf('\r\n', start);
    if (end < 0) return undefined; // truncated
    if (end === start) return out; // the empty line that ends the block
    const colon = text.indexOf(':', start);
    if (colon > start && colon < end)
      headerAttribute(out, text.slice(start, colon), text.slice(colon + 1, end).trim());
    start = end + 2;
  }
}
