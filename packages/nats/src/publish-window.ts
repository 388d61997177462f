/**
 * Bounds the JetStream publishes awaiting their ack on one connection. A publish's timeout
 * starts when it is handed to the client, so 10,000 fire-and-forget publishes sent at once
 * would all be timing out behind each other on a busy server; queued here (FIFO, so the
 * order in which they reach the stream is kept), each one's clock starts only when it is sent.
 */
export class PublishWindow {
  readonly size: number;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.size = Math.max(1, size);
  }

  /** Runs `send` once a slot is free; slots are granted in call order. */
  async run<T>(send: () => Promise<T>): Promise<T> {
    if (this.#inFlight >= this.size || this.#waiting.length > 0) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#inFlight++;
    }
    try {
      return await send();
    } finally {
      const next = this.#waiting.shift();
      // The slot passes straight to the next in line, so nobody can jump the queue.
      if (next) next();
      else this.#inFlight--;
    }
  }
}
