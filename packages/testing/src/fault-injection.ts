import { type IncomingMessage, type OutgoingMessage, type Transport, TransportError } from '@eventwire/core';
import { settleOnce } from '@eventwire/core/transport';

export interface Faults {
  /** Deliver every message this many times (the broker's copy is settled by the first settle). */
  duplicateDeliveries?: number;
  /** Reject the first N publish calls with a TransportError, sending nothing. */
  failFirstPublishes?: number;
  /** Hold every delivery this long before handing it to the bus. */
  deliveryDelayMs?: number;
}

/**
 * Wraps a real transport to inject faults the application must survive: duplicates, a broker
 * that refuses publishes, slow deliveries.
 */
export function withFaults(inner: Transport, faults: Faults): Transport {
  let publishFailuresLeft = faults.failFirstPublishes ?? 0;
  const copies = Math.max(1, faults.duplicateDeliveries ?? 1);
  return wrapTransport(inner, {
    async publish(messages, options) {
      if (publishFailuresLeft > 0) {
        publishFailuresLeft--;
        throw new TransportError('injected publish failure');
      }
      return inner.publish(messages, options);
    },
    subscribe(spec, onMessage) {
      // Duplicates multiply what is held, so the wrapped subscription asks for fewer.
      const maxInFlight = Math.max(1, Math.floor(spec.maxInFlight / copies));
      return inner.subscribe({ ...spec, maxInFlight }, (message) => {
        const deliver = () => {
          if (copies === 1) return onMessage(message);
          for (const copy of duplicate(message, copies)) onMessage(copy);
        };
        if (faults.deliveryDelayMs) setTimeout(deliver, faults.deliveryDelayMs);
        else deliver();
      });
    },
  });
}

/** `count` deliveries of one message; the first copy settled settles the original, the rest are no-ops. */
function duplicate(message: IncomingMessage, count: number): IncomingMessage[] {
  // One guard shared by every copy: core's settle-once, with nothing to give back.
  const once = settleOnce(message, () => {});
  return Array.from({ length: count }, () => ({ ...message, ...once }));
}

/** Wraps a transport and records every message published through it. */
export function capturePublishes(inner: Transport): Transport & { published: OutgoingMessage[] } {
  const published: OutgoingMessage[] = [];
  const wrapped = wrapTransport(inner, {
    async publish(messages, options) {
      await inner.publish(messages, options);
      published.push(...messages);
    },
  });
  return Object.assign(wrapped, { published });
}

/** A transport that forwards to `inner` except for the methods in `overrides`. */
export function wrapTransport(inner: Transport, overrides: Partial<Transport>): Transport {
  const forwarded: Transport = {
    name: inner.name,
    capabilities: inner.capabilities,
    deadLetters: inner.deadLetters,
    connect: () => inner.connect(),
    publish: (messages, options) => inner.publish(messages, options),
    ensureGroup: (topic, group, from) => inner.ensureGroup(topic, group, from),
    subscribe: (spec, onMessage) => inner.subscribe(spec, onMessage),
    health: () => inner.health(),
    close: () => inner.close(),
  };
  if (inner.lag) forwarded.lag = (topic, group) => inner.lag!(topic, group);
  return { ...forwarded, ...overrides };
}
