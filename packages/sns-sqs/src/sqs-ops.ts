/**
 * Small SQS building blocks shared by the subscription and the dead-letter store: batched
 * deletes, batched visibility changes, and turning a received SQS message into a WireMessage.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { sleep, type WireMessage } from '@eventwire/core/transport';
import { awsError, isNotFound } from './errors.ts';

/** The longest visibility timeout SQS accepts (12 hours). */
export const MAX_VISIBILITY_SECONDS = 43_200;

export function visibilitySeconds(ms: number): number {
  // Rounded up: "no earlier than delayMs" must hold even though SQS counts whole seconds.
  return Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.ceil(ms / 1000)));
}

/** Headers (String message attributes) and body of a received message. */
export function wireOf(message: Message, skip?: string): WireMessage {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    if (name === skip || value.StringValue === undefined) continue;
    headers[name] = value.StringValue;
  }
  return { headers, body: Buffer.from(message.Body ?? '', 'utf8') };
}

function chunks<T>(list: readonly T[], size = 10): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/** Sets the visibility timeout of many messages, 10 per request. Best effort: failures are returned, not thrown. */
export async function changeVisibility(
  sqs: SQSClient,
  queueUrl: string,
  receipts: readonly string[],
  seconds: number,
): Promise<number> {
  let failures = 0;
  await Promise.all(
    chunks(receipts).map(async (chunk) => {
      try {
        const out = await sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((ReceiptHandle, i) => ({
              Id: String(i),
              ReceiptHandle,
              VisibilityTimeout: seconds,
            })),
          }),
        );
        failures += out.Failed?.length ?? 0;
      } catch {
        failures += chunk.length;
      }
    }),
  );
  return failures;
}

interface PendingDelete {
  receipt: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Acks go out as DeleteMessageBatch: every delete asked for in the same tick shares a request
 * (up to 10). A delete that fails for a network reason is retried for a while, because the
 * receipt handle stays valid while the message is invisible; giving up early would only make
 * SQS deliver an already handled message again once the lease runs out. Closing stops those
 * retries (see `drain`).
 */
export class BatchDeleter {
  readonly #sqs: SQSClient;
  readonly #queueUrl: string;
  readonly #retryForMs: number;
  #queue: PendingDelete[] = [];
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();
  /** Aborted by drain(): a failed delete is not tried again, and a backoff under way ends. */
  readonly #closing = new AbortController();

  constructor(sqs: SQSClient, queueUrl: string, retryForMs = 30_000) {
    this.#sqs = sqs;
    this.#queueUrl = queueUrl;
    this.#retryForMs = retryForMs;
  }

  delete(receipt: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ receipt, resolve, reject });
      if (this.#queue.length >= 10) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /**
   * Sends what is queued and resolves when every delete asked for so far has finished, each
   * with at most the attempt under way: the subscription is closing and must not wait the whole
   * retry period (a delete that fails now is a duplicate delivery later, never a loss).
   */
  async drain(): Promise<void> {
    this.#closing.abort();
    this.#flush();
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #flush(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, 10);
      const work = this.#send(batch);
      this.#inFlight.add(work);
      void work.finally(() => this.#inFlight.delete(work));
    }
  }

  async #send(batch: PendingDelete[]): Promise<void> {
    const deadline = Date.now() + this.#retryForMs;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        const out = await this.#sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: this.#queueUrl,
            Entries: batch.map((p, i) => ({ Id: String(i), ReceiptHandle: p.receipt })),
          }),
        );
        const failed = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
        batch.forEach((p, i) => {
          const failure = failed.get(String(i));
          if (!failure) p.resolve();
          else
            p.reject(
              awsError(
                'ack (DeleteMessage)',
                Object.assign(new Error(failure.Message ?? ''), { name: failure.Code, code: failure.Code }),
              ),
            );
        });
        return;
      } catch (error) {
        // A service-side refusal (not a network failure) will not change by retrying.
        const serviceRefusal = (error as { $fault?: string }).$fault === 'client' || isNotFound(error);
        if (serviceRefusal || Date.now() > deadline || this.#closing.signal.aborted) {
          const wrapped = awsError('ack (DeleteMessageBatch)', error);
          for (const p of batch) p.reject(wrapped);
          return;
        }
        await sleep(delay, this.#closing.signal);
      }
    }
  }
}
