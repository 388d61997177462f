/**
 * Acknowledgements of one subscription, batched: the acks requested in one turn of the event
 * loop go out as a single `XACK stream group id id ...` instead of one command each, which
 * saves Redis most of the per-command cost at high throughput. Every ack of a batch gets the
 * batch's promise, resolved when Redis has replied (one promise per batch, not per message), or
 * rejected when the batch's XACK failed or missed its deadline (one timer per batch, too).
 */

const MAX_BATCH = 512;

export class AckBatcher {
  /** Sends one `XACK stream group id id ...` (with its deadline). */
  readonly #send: (ids: string[]) => Promise<unknown>;
  #ids: string[] = [];
  #reply: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;

  constructor(send: (ids: string[]) => Promise<unknown>) {
    this.#send = send;
  }

  ack(id: string): Promise<void> {
    if (!this.#reply) {
      this.#reply = new Promise<void>((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
      setImmediate(() => this.#flush());
    }
    const reply = this.#reply;
    this.#ids.push(id);
    if (this.#ids.length >= MAX_BATCH) this.#flush();
    return reply;
  }

  #flush(): void {
    if (!this.#reply) return;
    const ids = this.#ids;
    const resolve = this.#resolve!;
    const reject = this.#reject!;
    this.#ids = [];
    this.#reply = undefined;
    this.#send(ids).then(() => resolve(), reject);
  }
}
