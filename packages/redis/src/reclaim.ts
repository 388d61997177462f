/**
 * Taking over what crashed consumers held: entries another consumer of the group held longer
 * than the lease (it stopped refreshing them), and those closing consumers gave back to
 * {@link RELEASED_CONSUMER}, are claimed with `XAUTOCLAIM` within the subscription's free
 * credits and delivered at the attempt their delivery count says. Crashed consumers' names are
 * forgotten once nothing is pending for them.
 */
import type { Credits } from '@eventwire/core/transport';
import { Command } from 'ioredis';
import { FORGET_DEAD_CONSUMERS } from './scripts.ts';
import { RELEASED_CONSUMER, type SubscriptionScope } from './subscription-scope.ts';

type RawEntry = [Buffer, Buffer[] | null] | null;

/** Hands a claimed entry to core, with the number of times the group delivered it. */
export type Deliver = (id: string, fields: Buffer[], deliveries: number) => void;

export class Reclaim {
  /**
   * A reclaim should run before the next read: set at start, every `claimIntervalMs`, after
   * the group vanished, and while XAUTOCLAIM's cursor says there is more to take.
   */
  due = true;
  readonly #scope: SubscriptionScope;
  readonly #credits: Credits;
  /** The subscription's unsettled deliveries, only counted here. */
  readonly #held: ReadonlySet<string>;
  /** Aborted when the subscription stops fetching: a reclaim in flight is abandoned. */
  readonly #fetching: AbortSignal;
  readonly #deliver: Deliver;
  #cursor = '0-0';

  constructor(
    scope: SubscriptionScope,
    credits: Credits,
    held: ReadonlySet<string>,
    fetching: AbortSignal,
    deliver: Deliver,
  ) {
    this.#scope = scope;
    this.#credits = credits;
    this.#held = held;
    this.#fetching = fetching;
    this.#deliver = deliver;
  }

  /** Takes over entries whose lease expired (a crashed consumer's, or those given back on close). */
  async run(): Promise<void> {
    this.due = false;
    const count = this.#credits.available();
    if (count <= 0) {
      this.due = true;
      return;
    }
    const { ctx, spec, stream } = this.#scope;
    this.#credits.take(count);
    let live: [Buffer, Buffer[]][] = [];
    let counts = new Map<string, number>();
    try {
      // Buffer replies keep bodies byte-exact. ioredis 6 has no xautoclaimBuffer, and its
      // callBuffer loses the command name under auto-pipelining, so the command is built by hand.
      const command = new Command(
        'xautoclaim',
        [stream, spec.group, ctx.consumer, spec.leaseMs, this.#cursor, 'COUNT', count],
        { replyEncoding: null },
      );
      const [cursor, entries, deleted] = (await this.#scope.background(
        this.#fetching,
        'XAUTOCLAIM',
        ctx.command.sendCommand(command) as Promise<unknown>,
      )) as [Buffer, RawEntry[], Buffer[] | undefined];
      this.#cursor = cursor.toString();
      if (this.#cursor !== '0-0') this.due = true;
      // Redis 7 lists entries deleted from the stream (trimmed) separately and drops them from
      // the pending list; Redis 6.2 returned them as nil entries.
      if (deleted && deleted.length > 0) {
        ctx.logger.warn(
          { topic: spec.topic, group: spec.group, deleted: deleted.length },
          'pending entries were deleted from the stream before being acknowledged (trimmed?)',
        );
      }
      live = entries.filter((e): e is [Buffer, Buffer[]] => Array.isArray(e) && Array.isArray(e[1]));
      if (live.length > 0) counts = await this.#deliveryCounts(live.map((e) => e[0].toString()));
    } catch (error) {
      if (!this.#fetching.aborted) this.#scope.warn(error, 'XAUTOCLAIM failed; retrying later');
      this.#credits.give(count);
      return;
    }
    const stopped = this.#fetching.aborted;
    this.#credits.give(count - (stopped ? 0 : live.length));
    if (stopped) return;
    for (const [id, fields] of live) {
      const key = id.toString();
      this.#deliver(key, fields, counts.get(key) ?? 2);
    }
  }

  /** Delivery counts from the pending-entries list, for entries this consumer now owns. */
  async #deliveryCounts(ids: string[]): Promise<Map<string, number>> {
    const { ctx, spec, stream } = this.#scope;
    const sorted = [...ids].sort(compareIds);
    const rows = (await this.#scope.background(
      this.#fetching,
      'XPENDING',
      ctx.command.xpending(
        stream,
        spec.group,
        sorted[0]!,
        sorted[sorted.length - 1]!,
        // The range may also hold entries this consumer was delivered earlier and still holds.
        ids.length + this.#held.size + 16,
        ctx.consumer,
      ),
    )) as [string, string, number, number][];
    return new Map(rows.map((row) => [String(row[0]), Number(row[3])]));
  }

  /** Crashed consumers' names: forgotten once their entries were claimed and an hour passed. */
  forgetDeadConsumers(): void {
    const { ctx, spec, stream } = this.#scope;
    FORGET_DEAD_CONSUMERS.run(
      ctx.command,
      [stream],
      [spec.group, Math.max(3_600_000, spec.leaseMs * 2), RELEASED_CONSUMER],
    ).catch((error: unknown) => this.#scope.warn(error, 'could not forget dead consumers'));
  }
}

/** Orders stream ids (`ms-seq`) numerically. */
export function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt);
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt);
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}
