/** Names of the instrumentation scope, span attributes and metrics (messaging conventions + eventwire's own). */

export const INSTRUMENTATION_NAME = '@eventwire/otel';
export const INSTRUMENTATION_VERSION = '0.1.0';

/** Attribute names used on spans and metrics (messaging semantic conventions + eventwire's own). */
export const ATTR = {
  system: 'messaging.system',
  destination: 'messaging.destination.name',
  group: 'messaging.consumer.group.name',
  messageId: 'messaging.message.id',
  conversationId: 'messaging.message.conversation_id',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  batchCount: 'messaging.batch.message_count',
  errorType: 'error.type',
  eventType: 'cloudevents.event_type',
  attempt: 'eventwire.delivery.attempt',
  deadLetterReason: 'eventwire.dead_letter.reason',
  retryDelay: 'eventwire.retry.delay_ms',
} as const;

/** Metric names. */
export const METRIC = {
  sent: 'messaging.client.sent.messages',
  consumed: 'messaging.client.consumed.messages',
  processDuration: 'messaging.process.duration',
  retries: 'eventwire.retries',
  deadLetters: 'eventwire.dead_letters',
  consumerLag: 'eventwire.consumer.lag',
  outboxLag: 'eventwire.outbox.lag',
} as const;

/** Bucket boundaries (seconds) advised for `messaging.process.duration` by the conventions. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** `messaging.system` values of the semantic conventions for eventwire's transport names. */
export const WELL_KNOWN_SYSTEMS: Record<string, string> = {
  'sns-sqs': 'aws_sqs',
  sqs: 'aws_sqs',
  nats: 'nats',
  kafka: 'kafka',
  rabbitmq: 'rabbitmq',
  redis: 'redis',
  postgres: 'postgresql',
  pglite: 'postgresql',
};
