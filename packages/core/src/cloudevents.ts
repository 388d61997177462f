import secureJson from 'secure-json-parse';
import type { Envelope } from './envelope.ts';
import { DecodeError } from './errors.ts';

/**
 * Bytes plus string attributes: what every broker can carry. In binary mode `headers` holds the
 * CloudEvents attributes by their bare names (`id`, `type`, `specversion`...); each adapter adds
 * its broker's prefix (`ce_` for Kafka, `ce-` for AMQP and NATS, none for Redis fields).
 * In structured mode `headers` only holds `content-type`.
 */
export interface WireMessage {
  headers: Record<string, string>;
  body: Uint8Array;
}

export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json';
const JSON_CONTENT_TYPE = 'application/json';

/** Attributes with a field of their own in the envelope; anything else is an extension. */
const KNOWN_ATTRIBUTES = new Set([
  'specversion',
  'id',
  'type',
  'source',
  'time',
  'subject',
  'datacontenttype',
  'dataschema',
  'dataversion',
  'partitionkey',
  'correlationid',
  'causationid',
  'traceparent',
  'tracestate',
  'content-type',
  'data',
  'data_base64',
]);

function attributesOf(envelope: Envelope): Record<string, string> {
  const attrs: Record<string, string> = {
    specversion: '1.0',
    id: envelope.id,
    type: envelope.type,
    source: envelope.source,
    time: envelope.time,
    datacontenttype: envelope.dataContentType,
    dataversion: String(envelope.version),
    correlationid: envelope.correlationId,
  };
  if (envelope.subject !== undefined) attrs.subject = envelope.subject;
  if (envelope.partitionKey !== undefined) attrs.partitionkey = envelope.partitionKey;
  if (envelope.causationId !== undefined) attrs.causationid = envelope.causationId;
  if (envelope.traceparent !== undefined) attrs.traceparent = envelope.traceparent;
  if (envelope.tracestate !== undefined) attrs.tracestate = envelope.tracestate;
  if (envelope.extensions) Object.assign(attrs, envelope.extensions);
  return attrs;
}

/** Binary mode: attributes as headers, the data alone in the body. */
export function encodeBinary(envelope: Envelope): WireMessage {
  return { headers: attributesOf(envelope), body: Buffer.from(JSON.stringify(envelope.data)) };
}

/** Structured mode: one `application/cloudevents+json` document, for brokers with few headers (SQS). */
export function encodeStructured(envelope: Envelope): WireMessage {
  const document: Record<string, unknown> = attributesOf(envelope);
  document.data = envelope.data;
  return {
    headers: { 'content-type': STRUCTURED_CONTENT_TYPE },
    body: Buffer.from(JSON.stringify(document)),
  };
}

export interface DecodeOptions {
  /** Bodies above this many bytes are refused before parsing. */
  maxBytes: number;
}

/**
 * Decodes either mode. Never trusts input: the size is checked before parsing, JSON with
 * `__proto__` or `constructor.prototype` keys is refused, and required attributes are checked.
 * Throws {@link DecodeError} with a stable `reason`.
 */
export function decode(message: WireMessage, options: DecodeOptions): Envelope {
  const { headers, body } = message;
  if (body.byteLength > options.maxBytes) {
    throw new DecodeError(
      'oversize',
      `body is ${body.byteLength} bytes, over the limit of ${options.maxBytes}`,
    );
  }
  if (headers.specversion !== undefined) return decodeBinary(headers, body);
  if (body.byteLength === 0) throw new DecodeError('empty_body', 'message body is empty');
  const contentType = headers['content-type'];
  if (contentType !== undefined && !contentType.startsWith(STRUCTURED_CONTENT_TYPE) && !isJson(contentType)) {
    throw new DecodeError('unsupported_content_type', `content-type ${contentType} is not a CloudEvent`);
  }
  const document = parseJson(body);
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new DecodeError('invalid_attribute', 'structured CloudEvent must be a JSON object');
  }
  const doc = document as Record<string, unknown>;
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'data' || key === 'data_base64') continue;
    if (value === null || value === undefined) continue;
    attributes[key] = typeof value === 'string' ? value : String(value);
  }
  let data: unknown;
  if ('data_base64' in doc) {
    if (typeof doc.data_base64 !== 'string')
      throw new DecodeError('invalid_attribute', 'data_base64 must be a string');
    data = dataFromBytes(Buffer.from(doc.data_base64, 'base64'), attributes.datacontenttype);
  } else {
    data = doc.data;
  }
  return envelopeFrom(attributes, data);
}

function decodeBinary(headers: Record<string, string>, body: Uint8Array): Envelope {
  if (body.byteLength === 0) throw new DecodeError('empty_body', 'message body is empty');
  const contentType = headers.datacontenttype ?? headers['content-type'];
  return envelopeFrom(headers, dataFromBytes(body, contentType));
}

function isJson(contentType: string): boolean {
  // Every event eventwire writes says exactly this: skip the parsing below.
  if (contentType === JSON_CONTENT_TYPE) return true;
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  return base === JSON_CONTENT_TYPE || base.endsWith('+json') || base === 'text/json';
}

function dataFromBytes(bytes: Uint8Array, contentType: string | undefined): unknown {
  if (contentType !== undefined && !isJson(contentType)) {
    throw new DecodeError('unsupported_content_type', `datacontenttype ${contentType} is not JSON`);
  }
  return parseJson(bytes);
}

/**
 * Strict JSON: `__proto__` keys and `constructor.prototype` are refused. A key can only spell one
 * of those words literally or with `\u` escapes, so text containing neither word nor a `\u`
 * is provably safe and skips secure-json-parse's scan (its two regular expressions over the whole
 * text cost more than the parse itself for typical events).
 */
function parseJson(bytes: Uint8Array): unknown {
  // Adapters mostly hand over Buffers already: no view to create then.
  const buffer = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = buffer.toString();
  try {
    if (!text.includes('__proto__') && !text.includes('constructor') && !text.includes('\\u')) {
      // secure-json-parse drops a leading byte-order mark; so must the fast path.
      return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    }
    return secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (error) {
    const forbidden = error instanceof SyntaxError && /prototype property/.test(error.message);
    throw forbidden
      ? new DecodeError('forbidden_key', 'JSON contains a __proto__ or constructor.prototype key', error)
      : new DecodeError('malformed_json', `body is not valid JSON: ${(error as Error).message}`, error);
  }
}

function required(attributes: Record<string, string>, name: string): string {
  const value = attributes[name];
  if (value === undefined || value === '') {
    throw new DecodeError('missing_attribute', `required CloudEvents attribute "${name}" is missing`);
  }
  return value;
}

/**
 * The last `time` that parsed. Events published together carry the same millisecond, so most
 * messages skip `Date.parse` (a visible share of decoding) by matching it.
 */
let lastValidTime = '';

function envelopeFrom(attributes: Record<string, string>, data: unknown): Envelope {
  const specversion = required(attributes, 'specversion');
  if (specversion !== '1.0') {
    throw new DecodeError(
      'unsupported_specversion',
      `specversion ${specversion} is not supported (only 1.0)`,
    );
  }
  const id = required(attributes, 'id');
  const type = required(attributes, 'type');
  const source = required(attributes, 'source');
  // Foreign producers (Dapr, Knative) send no dataversion: their events are version 1.
  const rawVersion = attributes.dataversion ?? '1';
  const version = Number(rawVersion);
  if (!Number.isInteger(version) || version < 1) {
    throw new DecodeError('invalid_attribute', `dataversion "${rawVersion}" is not an integer >= 1`);
  }
  const time = attributes.time ?? new Date().toISOString();
  if (time !== lastValidTime) {
    if (Number.isNaN(Date.parse(time)))
      throw new DecodeError('invalid_attribute', `time "${time}" is not RFC 3339`);
    lastValidTime = time;
  }

  const envelope: Envelope = {
    id,
    type,
    version,
    source,
    time,
    correlationId: attributes.correlationid || id,
    dataContentType: attributes.datacontenttype ?? JSON_CONTENT_TYPE,
    data,
  };
  if (attributes.subject !== undefined) envelope.subject = attributes.subject;
  const partitionKey = attributes.partitionkey ?? attributes.subject;
  if (partitionKey !== undefined) envelope.partitionKey = partitionKey;
  if (attributes.causationid !== undefined) envelope.causationId = attributes.causationid;
  if (attributes.traceparent !== undefined) envelope.traceparent = attributes.traceparent;
  if (attributes.tracestate !== undefined) envelope.tracestate = attributes.tracestate;
  // for...in, not Object.entries: this runs for every message received.
  for (const key in attributes) {
    if (KNOWN_ATTRIBUTES.has(key) || key.startsWith('ew')) continue;
    envelope.extensions ??= {};
    envelope.extensions[key] = attributes[key]!;
  }
  return envelope;
}
