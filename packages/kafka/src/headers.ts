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

/** Kafka header names to core's bare attribute names. */
export function fromKafkaHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  // for...in, not Object.entries: this runs for every consumed record.
  for (const name in headers) {
    const value = headers[name]!;
    if (name.startsWith(PREFIX)) out[name.slice(PREFIX.length)] = value;
    else out[name] = value;
  }
  // Binary mode: the content type of the data is the `content-type` header.
  if (
    out.specversion !== undefined &&
    out.datacontenttype === undefined &&
    out['content-type'] !== undefined
  ) {
    out.datacontenttype = out['content-type'];
    delete out['content-type'];
  }
  return out;
}
