/**
 * CloudEvents Kafka protocol binding, binary mode: every attribute travels as a `ce_<name>`
 * header, except `datacontenttype`, which is the `content-type` header. eventwire's control
 * headers (`ew*`) pass through unprefixed. Structured mode (`content-type:
 * application/cloudevents+json`) needs no mapping: the body is the event.
 */
const PREFIX = 'ce_';

/** Core's bare attribute names to Kafka header names. */
export function toKafkaHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const binary = headers.specversion !== undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('ew') || name === 'content-type') out[name] = value;
    else if (binary && name === 'datacontenttype') out['content-type'] = value;
    else out[PREFIX + name] = value;
  }
  return out;
}

/**
 * Kafka header name to attribute name, for names seen before: every record repeats the same
 * few names, and slicing each `ce_` prefix off would make a new string per header per record.
 * Bounded, so a producer inventing header names cannot grow it without limit.
 */
const attributeNames = new Map<string, string>();
const MAX_NAMES = 512;

/** The attribute name of a Kafka header name (`ce_id` -> `id`; others unchanged). */
export function attributeName(name: string): string {
  let attribute = attributeNames.get(name);
  if (attribute === undefined) {
    attribute = name.startsWith(PREFIX) ? name.slice(PREFIX.length) : name;
    if (attributeNames.size < MAX_NAMES) attributeNames.set(name, attribute);
  }
  return attribute;
}

/** Kafka header names to core's bare attribute names. */
export function fromKafkaHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  let contentType: string | undefined;
  // for...in, not Object.entries: this runs for every consumed record.
  for (const name in headers) {
    const attribute = attributeName(name);
    if (attribute === CONTENT_TYPE) contentType = headers[name];
    else out[attribute] = headers[name]!;
  }
  return withContentType(out, contentType);
}

const CONTENT_TYPE = 'content-type';

/**
 * Adds the `content-type` header to attributes read header by header through
 * {@link attributeName}, which leave it out: in binary mode it is the content type of the data
 * (`datacontenttype`); otherwise it stays what it is. Set last rather than renamed afterwards:
 * deleting a property would turn every record's attribute object into a slow dictionary.
 */
export function withContentType(
  out: Record<string, string>,
  contentType: string | undefined,
): Record<string, string> {
  if (contentType === undefined) return out;
  if (out.specversion !== undefined && out.datacontenttype === undefined) out.datacontenttype = contentType;
  else out[CONTENT_TYPE] = contentType;
  return out;
}
