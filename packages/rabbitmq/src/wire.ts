/**
 * CloudEvents over AMQP 0-9-1 headers (binary mode): each attribute is a `ce-<name>` header,
 * `content-type` is the AMQP `content-type` property, and eventwire's control headers (`ew*`)
 * travel as they are. Receiving also accepts the `cloudEvents_` / `cloudEvents:` prefixes of the
 * CloudEvents AMQP binding, and structured mode (`application/cloudevents+json` body).
 */
import type { WireMessage } from '@eventwire/core/transport';
import type { Message, MessageProperties } from 'amqplib';

const PREFIX = 'ce-';
const RECEIVE_PREFIXES = ['ce-', 'ce_', 'cloudevents:', 'cloudevents_'];

/** AMQP headers and content type for a wire message. */
export function toAmqp(message: WireMessage): { headers: Record<string, string>; contentType?: string } {
  const headers: Record<string, string> = {};
  let contentType: string | undefined;
  for (const [key, value] of Object.entries(message.headers)) {
    if (key === 'content-type') contentType = value;
    else if (key.startsWith('ew')) headers[key] = value;
    else headers[PREFIX + key] = value;
  }
  // Binary mode: the data's content type is the AMQP content type too (CloudEvents AMQP binding).
  if (contentType === undefined && message.headers.datacontenttype !== undefined)
    contentType = message.headers.datacontenttype;
  return contentType === undefined ? { headers } : { headers, contentType };
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return undefined;
}

/** The wire message carried by an AMQP message. Broker headers (`x-*`) and unknown ones are left out. */
export function fromAmqp(message: Pick<Message, 'content' | 'properties'>): WireMessage {
  const headers: Record<string, string> = {};
  const raw = (message.properties.headers ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(raw)) {
    const lower = key.toLowerCase();
    const prefix = RECEIVE_PREFIXES.find((p) => lower.startsWith(p));
    const name = prefix ? lower.slice(prefix.length) : lower.startsWith('ew') ? lower : undefined;
    if (name === undefined || name === '') continue;
    const value_ = text(value);
    if (value_ !== undefined) headers[name] = value_;
  }
  const contentType = message.properties.contentType as string | undefined;
  if (contentType) {
    headers['content-type'] = contentType;
    if (headers.specversion !== undefined && headers.datacontenttype === undefined)
      headers.datacontenttype = contentType;
  }
  return { headers, body: message.content };
}

/** Broker-added headers that must not be copied onto a re-published message. */
export function withoutBrokerHeaders(headers: MessageProperties['headers']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (key.startsWith('x-')) continue;
    out[key] = value;
  }
  return out;
}
