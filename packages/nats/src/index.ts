/**
 * `@eventwire/nats`: the NATS JetStream transport for eventwire.
 *
 * ```ts
 * const bus = await createBus({ url: 'nats://127.0.0.1:4222', source: 'checkout' });
 * // or, with options that do not fit a URL:
 * const bus = await createBus({ transport: nats({ servers: ['nats://a:4222'], connection: { tls: {} } }), source: 'checkout' });
 * ```
 */
import type { Transport } from '@eventwire/core/transport';
import type { NatsTransportOptions } from './options.ts';
import { NatsTransport } from './transport.ts';
import { optionsFromUrl } from './url.ts';

export { escapeName, Names, type StreamLayout, topicTokens } from './names.ts';
export type { NatsTransportOptions } from './options.ts';
/** The `cause` of a failed publish's TransportError: why JetStream did not ack (`reason`). */
export { JetStreamPublishError, type PublishFailure } from './publisher.ts';
export { NatsTransport } from './transport.ts';
export { optionsFromUrl } from './url.ts';

/** A JetStream transport for `createBus({ transport })`. Connects when the bus is created. */
export function nats(options: NatsTransportOptions = {}): NatsTransport {
  return new NatsTransport(options);
}

/** Called by core for `nats://` (and `tls://`) URLs: `createBus({ url })`. */
export function transportFromUrl(url: string): Transport {
  return nats(optionsFromUrl(url));
}
