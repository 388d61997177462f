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
      // A copy: `bytes` is a view into a fetch response that must not be kept alive.
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
