export { backoffDelay, type RetryPolicy } from './backoff.ts';
export type { BatchContext, BatchHandler } from './batch-handler.ts';
export {
  type Bus,
  type BusHealth,
  type BusOptions,
  createBus,
  type DeadLetters,
  type Outbox,
  type PublishOptions,
  type RewindOptions,
  type Subscription,
} from './bus.ts';
export {
  type DecodeOptions,
  decode,
  encodeBinary,
  encodeStructured,
  STRUCTURED_CONTENT_TYPE,
  type WireMessage,
} from './cloudevents.ts';
export { type DataOf, defineEvent, type EventDefinition, type EventDefinitionInput } from './define-event.ts';
export { type Envelope, newEventId } from './envelope.ts';
export * from './errors.ts';
export type {
  ChildPublishOptions,
  ConsumerStats,
  Handler,
  HandlerContext,
  PublishFn,
  SubscribeOptions,
} from './handler-types.ts';
export {
  type IdempotencyKey,
  type IdempotencyResult,
  type IdempotencyStore,
  memoryInbox,
} from './idempotency.ts';
export {
  jsonLogger,
  type LogFn,
  type Logger,
  type LogLevel,
  redactText,
  redactUrl,
  silentLogger,
  withFields,
} from './logger.ts';
export {
  MemoryBroker,
  type MemoryTransportOptions,
  memoryBroker,
  memoryTransport,
} from './memory-transport.ts';
export type { Middleware, ProcessInfo, ProcessOutcome } from './middleware.ts';
export { memoryRateLimitStore, type RateLimit, type RateLimitStore } from './rate-limit.ts';
export { type AdapterModule, resolveTransport } from './resolve-transport.ts';
export type { BatchSubscribeOptions } from './subscribe-options.ts';
export { childTraceparent, parseTraceparent } from './trace-context.ts';
export * from './transport.ts';
