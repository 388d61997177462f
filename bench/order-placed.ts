/**
 * The event the broker benchmarks send: one shape, so that every broker page measures the same
 * payload, and one place that builds the bytes eventwire would put on the wire for the raw side.
 */
import { defineEvent, type Envelope, encodeBinary, newEventId, type WireMessage } from '@eventwire/core';
import { z } from 'zod';

export const OrderSchema = z.object({ orderId: z.string(), totalCents: z.number().int(), note: z.string() });

export const orderData = (n: number) => ({
  orderId: `order-${n}`,
  totalCents: n * 7,
  note: 'benchmark payload of a typical size',
});

/** The event definition eventwire publishes, keyed by order id. */
export const orderPlaced = (topic: string) =>
  defineEvent({ type: 'bench.order_placed', version: 1, schema: OrderSchema, topic, key: (d) => d.orderId });

/** The envelope eventwire builds for event `n`, for a raw producer to encode as is. */
export function orderPlacedEnvelope(
  n: number,
  extra: { partitionKey?: string; traceparent?: string } = {},
): Envelope {
  const id = newEventId();
  return {
    id,
    type: 'bench.order_placed',
    version: 1,
    source: 'bench',
    time: new Date().toISOString(),
    correlationId: id,
    dataContentType: 'application/json',
    data: orderData(n),
    partitionKey: extra.partitionKey ?? `order-${n}`,
    ...(extra.traceparent ? { traceparent: extra.traceparent } : {}),
  };
}

/** What eventwire encodes for event `n` (binary mode), for a raw producer to send as is. */
export function encodeOrderPlaced(
  n: number,
  extra: { partitionKey?: string; traceparent?: string } = {},
): WireMessage & { id: string } {
  const envelope = orderPlacedEnvelope(n, extra);
  return { id: envelope.id, ...encodeBinary(envelope) };
}
