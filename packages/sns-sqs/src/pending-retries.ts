/**
 * The messages a subscription sent back with a retry delay, until they are visible again.
 *
 * Why a subscription remembers them: closing. SQS counts every receive as an attempt
 * (ApproximateReceiveCount), and a long poll still open when a subscription closes receives a
 * retried message the moment its delay ends, only for the closing subscription to hand it back:
 * a restart during a retry wait would use up an attempt. Aborting the poll does not help, since
 * SQS (and moto) keep an abandoned long poll open on their side and still hand it the message,
 * which then stays hidden for a whole lease (aws/aws-sdk-js#2350, aws/aws-sdk-java-v2#1395). So
 * close() asks this list which retries end while its polls are still open, and postpones them
 * until just after (see SqsSubscription#close).
 */
export class PendingRetries {
  /** Receipt handle -> when the message becomes visible again (epoch ms). */
  readonly #visibleAt = new Map<string, number>();

  add(receipt: string, visibleAt: number): void {
    this.#visibleAt.set(receipt, visibleAt);
  }

  /** Receipts whose message becomes visible after now and no later than `until`; forgets the past ones. */
  endingBy(until: number, now = Date.now()): string[] {
    const due: string[] = [];
    for (const [receipt, at] of this.#visibleAt) {
      if (at <= now) this.#visibleAt.delete(receipt);
      else if (at <= until) due.push(receipt);
    }
    return due;
  }

  /** Forgets the retries that are visible again (called by the heartbeat, to bound the list). */
  prune(now = Date.now()): void {
    for (const [receipt, at] of this.#visibleAt) if (at <= now) this.#visibleAt.delete(receipt);
  }
}
