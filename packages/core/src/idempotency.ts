/**
 * Idempotency stores (inboxes) make a handler's effect happen once per (group, event id),
 * however many times the broker delivers the event.
 */
export interface IdempotencyKey {
  group: string;
  id: string;
}

export type IdempotencyResult<T> = { duplicate: true } | { duplicate: false; value: T };

export interface IdempotencyStore {
  /**
   * Runs `work` unless (group, id) was already recorded, and records it only if `work`
   * succeeds: a failed handler leaves no record, so its retry runs. Stores that can join the
   * handler's database transaction pass it as `scope.tx` (it reaches the handler as `ctx.tx`).
   */
  run<T>(key: IdempotencyKey, work: (scope: { tx?: unknown }) => Promise<T>): Promise<IdempotencyResult<T>>;
}

/**
 * An in-process inbox: for tests and single-process apps. Concurrent deliveries of one event
 * wait for the first to finish rather than run twice.
 */
export function memoryInbox(options: { maxEntries?: number } = {}): IdempotencyStore {
  const max = options.maxEntries ?? 100_000;
  const done = new Set<string>();
  const running = new Map<string, Promise<unknown>>();
  return {
    async run(key, work) {
      const id = `${key.group}\u0000${key.id}`;
      for (let pending = running.get(id); pending; pending = running.get(id)) await pending.catch(() => {});
      if (done.has(id)) return { duplicate: true };
      const promise = work({});
      running.set(id, promise);
      try {
        const value = await promise;
        done.add(id);
        // Sets iterate in insertion order: evict the oldest record.
        if (done.size > max) done.delete(done.values().next().value!);
        return { duplicate: false, value };
      } finally {
        running.delete(id);
      }
    },
  };
}
