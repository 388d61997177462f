/**
 * Fetched records' header bytes to strings, for the client that hands them over as bytes
 * (`@platformatic/kafka`). This runs for every header of every record consumed, so it reuses
 * what repeats instead of decoding it again.
 */
import { attributeName, withContentType } from '../headers.ts';

/**
 * Header names decoded from bytes (and mapped, e.g. to attribute names), one string per
 * distinct name.
 *
 * Every record carries about ten headers, and every record of a topic the same few names
 * (`ce_id`, `ce_type`...). Decoding each name into a fresh string costs a native call and an
 * allocation per header, and gives every record's header object keys V8 has not seen, so no two
 * objects share a shape. Names seen before are found by a hash of their bytes instead, and the
 * same string comes back each time. The table is bounded: past `limit` distinct names (a
 * producer inventing header names), new ones are decoded plainly, never cached.
 */
export class HeaderNames {
  readonly #byHash = new Map<number, { bytes: Buffer; name: string }[]>();
  readonly #map: (name: string) => string;
  readonly #limit: number;
  #size = 0;

  constructor(map: (name: string) => string = (name) => name, limit = 512) {
    this.#map = map;
    this.#limit = limit;
  }

  decode(bytes: Buffer): string {
    // FNV-1a over the bytes: names are short, and this stays in JavaScript (no native call).
    let hash = 0x811c9dc5;
    const length = bytes.length;
    for (let i = 0; i < length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
    const bucket = this.#byHash.get(hash);
    if (bucket !== undefined) {
      for (const known of bucket) if (sameBytes(known.bytes, bytes)) return known.name;
    }
    const name = this.#map(bytes.toString('utf8'));
    if (this.#size < this.#limit) {
      // A copy: this table lives as long as the process, and `bytes` is a view that would keep
      // a whole fetch response alive.
      const entry = { bytes: Buffer.from(bytes), name };
      if (bucket) bucket.push(entry);
      else this.#byHash.set(hash, [entry]);
      this.#size++;
    }
    return name;
  }
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A record's headers as core's attributes. Records of a topic mostly carry the same headers in
 * the same order, and several values repeat from one record to the next (`specversion`, `type`,
 * `source`, `dataversion`, the content type; often `time`). So the decoder remembers, per
 * position, the last name and value bytes with their strings, and reuses a string when the
 * bytes are equal (compared in full): a byte comparison costs a fraction of a decode and its
 * allocation. Anything else is decoded as usual. What it keeps is one name and one value per
 * position: views into a recent fetch response, released as the next records replace them.
 * Keeping views (not copies) is safe because the client never reuses a response's memory: the
 * records it hands out are views into it too, and they are the application's to keep.
 */
export class AttributeDecoder {
  readonly #names = new HeaderNames(attributeName);
  readonly #nameBytes: (Buffer | undefined)[] = [];
  readonly #nameTexts: string[] = [];
  readonly #valueBytes: (Buffer | undefined)[] = [];
  readonly #valueTexts: string[] = [];

  attributes(headers: Map<Buffer, Buffer | undefined>): Record<string, string> {
    const out: Record<string, string> = {};
    let contentType: string | undefined;
    let i = 0;
    // forEach, not for...of: no [key, value] array per header.
    headers.forEach((value, key) => {
      const name = this.#name(i, key);
      const text = value ? this.#value(i, value) : '';
      if (name === 'content-type') contentType = text;
      else out[name] = text;
      i++;
    });
    return withContentType(out, contentType);
  }

  #name(i: number, bytes: Buffer): string {
    const known = this.#nameBytes[i];
    if (known !== undefined && sameBytes(known, bytes)) return this.#nameTexts[i]!;
    const name = this.#names.decode(bytes);
    this.#nameBytes[i] = bytes;
    this.#nameTexts[i] = name;
    return name;
  }

  #value(i: number, bytes: Buffer): string {
    const known = this.#valueBytes[i];
    if (known !== undefined && sameBytes(known, bytes)) return this.#valueTexts[i]!;
    const text = bytes.toString('utf8');
    this.#valueBytes[i] = bytes;
    this.#valueTexts[i] = text;
    return text;
  }
}
