/**
 * JetStream acknowledgements, sent by hand on a delivery's reply subject
 * (`$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or the v2 form with
 * domain and account hash). The pull loop of this package reads raw messages rather than
 * going through the client's `consume()` so that it controls exactly how many messages are
 * requested and can give back, at close, every message it still holds.
 */
import { type NatsConnection, nanos } from '@nats-io/transport-node';

export interface DeliveryInfo {
  /** How many times JetStream delivered this message to the consumer (1 on the first). */
  delivered: number;
  /** Sequence of the message in its stream. */
  streamSeq: number;
}

/** Reads the delivery count and stream sequence from an ack subject; undefined if it is not one. */
export function parseAckSubject(reply: string | undefined): DeliveryInfo | undefined {
  if (!reply?.startsWith('$JS.ACK.')) return undefined;
  const t = reply.split('.');
  // v1: $JS.ACK.stream.consumer.delivered.sseq.cseq.ts.pending (9 tokens)
  // v2: $JS.ACK.domain.hash.stream.consumer.delivered.sseq.cseq.ts.pending[.random] (11-12 tokens)
  const base = t.length === 9 ? 4 : t.length >= 11 ? 6 : -1;
  if (base < 0) return undefined;
  const delivered = Number(t[base]);
  const streamSeq = Number(t[base + 1]);
  if (!Number.isInteger(delivered) || !Number.isInteger(streamSeq)) return undefined;
  return { delivered, streamSeq };
}

/** The delivery count of a delivery (1 when the reply subject is not a JetStream ack subject). */
export function deliveryCount(reply: string): number {
  return parseAckSubject(reply)?.delivered ?? 1;
}

const ACK = new TextEncoder().encode('+ACK');
const NAK = new TextEncoder().encode('-NAK');
const WPI = new TextEncoder().encode('+WPI');

export function ack(nc: NatsConnection, reply: string): void {
  nc.publish(reply, ACK);
}

/** Negative ack: redeliver after `delayMs` (JetStream's own timer, nothing held in this process). */
export function nak(nc: NatsConnection, reply: string, delayMs = 0): void {
  if (delayMs <= 0) nc.publish(reply, NAK);
  else nc.publish(reply, `-NAK ${JSON.stringify({ delay: nanos(delayMs) })}`);
}

/** In progress: restarts the `ack_wait` timer of a message a handler is still working on. */
export function working(nc: NatsConnection, reply: string): void {
  nc.publish(reply, WPI);
}

/** Terminate: never redeliver (after it was copied to the dead letters). */
export function term(nc: NatsConnection, reply: string, reason: string): void {
  nc.publish(reply, `+TERM ${reason.replace(/[\r\n]+/g, ' ').slice(0, 200)}`);
}
