/**
 * Fetched records' header bytes to strings, for the client that hands them over as bytes
 * (`@platformatic/kafka`). This runs for every header of every record consumed, so it reuses
 * what repeats instead of decoding it again.
 */
import { attributeName, withContentType } from '../headers.ts';

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
    // attributeName hands back the same string for a name seen before: one shape per record.
    const name = attributeName(bytes.toString('utf8'));
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
