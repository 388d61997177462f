import type { EventDefinition } from '@eventwire/core';

export interface AsyncApiOptions {
  title: string;
  version: string;
  description?: string;
  /** topic -> definitions on it. */
  topics: ReadonlyMap<string, readonly EventDefinition<any>[]>;
  /** topic -> consumer groups. */
  groups: ReadonlyMap<string, readonly string[]>;
}

/** AsyncAPI ids must match `^[\w\d.\-_]+$`. */
const id = (text: string) => text.replace(/[^\w.-]/g, '_');
const messageId = (d: EventDefinition<any>) => id(`${d.type}.v${d.version}`);

/** JSON Schema of data as an AsyncAPI Schema Object (a JSON Schema draft-07 superset). */
function payloadOf(d: EventDefinition<any>): Record<string, unknown> {
  const { $schema: _ignored, ...schema } = d.jsonSchema();
  return schema;
}

/** CloudEvents binary-mode attributes that travel next to the payload. */
const HEADERS = {
  type: 'object',
  description:
    'CloudEvents 1.0 attributes (binary mode: one header per attribute; structured mode: in the body).',
  properties: {
    'ce-id': { type: 'string', description: 'Event id (UUIDv7); the dedup key.' },
    'ce-type': { type: 'string' },
    'ce-source': { type: 'string' },
    'ce-specversion': { type: 'string', const: '1.0' },
    'ce-time': { type: 'string', format: 'date-time' },
    'ce-subject': { type: 'string' },
    'ce-dataversion': { type: 'string', description: 'Schema version of data.' },
    'ce-partitionkey': { type: 'string' },
    'ce-correlationid': { type: 'string' },
    'ce-causationid': { type: 'string' },
    'ce-traceparent': { type: 'string' },
  },
  required: ['ce-id', 'ce-type', 'ce-source', 'ce-specversion', 'ce-dataversion'],
};

/**
 * An AsyncAPI 3.0 document: one channel per topic with a message per event version, a `send`
 * operation per topic (the app publishes) and a `receive` operation per consumer group.
 */
export function asyncApiDocument(options: AsyncApiOptions): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  const topics = [...options.topics.keys()].sort();
  for (const topic of topics) {
    const defs = [...options.topics.get(topic)!].sort(
      (a, b) => a.type.localeCompare(b.type) || a.version - b.version,
    );
    const channelId = id(topic);
    const channelMessages: Record<string, unknown> = {};
    for (const d of defs) {
      const mid = messageId(d);
      messages[mid] = {
        name: d.type,
        title: `${d.type} v${d.version}`,
        contentType: 'application/json',
        headers: { $ref: '#/components/schemas/CloudEventsHeaders' },
        payload: payloadOf(d),
        'x-eventwire-type': d.type,
        'x-eventwire-version': d.version,
      };
      channelMessages[mid] = { $ref: `#/components/messages/${mid}` };
    }
    channels[channelId] = {
      address: topic,
      title: topic,
      messages: channelMessages,
    };
    const refs = defs.map((d) => ({ $ref: `#/channels/${channelId}/messages/${messageId(d)}` }));
    operations[id(`send.${topic}`)] = {
      action: 'send',
      title: `Publish to ${topic}`,
      channel: { $ref: `#/channels/${channelId}` },
      messages: refs,
    };
    for (const group of options.groups.get(topic) ?? []) {
      operations[id(`receive.${topic}.${group}`)] = {
        action: 'receive',
        title: `Group ${group} consumes ${topic}`,
        description: `Consumer group "${group}": receives every event of ${topic} once; failures go to its own dead letters.`,
        channel: { $ref: `#/channels/${channelId}` },
        messages: refs,
        'x-eventwire-group': group,
      };
    }
  }
  const info: Record<string, unknown> = { title: options.title, version: options.version };
  if (options.description) info.description = options.description;
  return {
    asyncapi: '3.0.0',
    info,
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { messages, schemas: { CloudEventsHeaders: HEADERS } },
  };
}
