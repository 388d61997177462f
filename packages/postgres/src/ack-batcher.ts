import type { SqlDriver } from './driver.ts';
import { ACK_SQL, bigintArray } from './sql.ts';
import { wakeableSleep } from './wait.ts';

/**
 * The acks of one subscription, batched: acks arrive one by one from concurrent handlers, and one
 * `DELETE ... = any($4)` settles a burst of them. The acks of one turn of the event loop (a
 * claimed batch handled together) go out at once rather than after a timer, because an unsettled
 * delivery holds a credit of the subscription's window until its DELETE commits. At most
 * {@link ACKS_IN_FLIGHT} DELETEs run at a time; acks arriving meanwhile form the next batch.
 * Each `ack` promise resolves once its DELETE has committed. A failed DELETE (database
 * restarting) is retried until the lease would have expired anyway.
 */
const ACKS_IN_FLIGHT = 2;

/** Acks of the deliveries leased by `key` = (group id, lease token). */
export function ackBatcher(db: SqlDriver, key: readonly [number, string]) {
  let pending: { id: string; done: () => void; failed: (e: unknown) => void }[] = [];
  let scheduled = false;
  const inFlight = new Set<Promise<void>>();
  const send = async (batch: typeof pending): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await db.query(ACK_SQL, [...key, bigintArray(batch.map((b) => b.id))]);
        for (const b of batch) b.done();
        return;
      } catch (error) {
        if (attempt >= 20) {
          for (const b of batch) b.failed(error);
          return;
        }
        await wakeableSleep(Math.min(100 * attempt, 1000));
      }
    }
  };
  const pump = (): void => {
    scheduled = false;
    if (pending.length === 0 || inFlight.size >= ACKS_IN_FLIGHT) return;
    const batch = pending;
    pending = [];
    const sent: Promise<void> = send(batch).finally(() => {
      inFlight.delete(sent);
      pump();
    });
    inFlight.add(sent);
  };
  return {
    ack(id: string): Promise<void> {
      return new Promise((resolve, reject) => {
        pending.push({ id, done: resolve, failed: reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(pump);
        }
      });
    },
    /** Sends what is pending and resolves when every ack so far has settled. */
    async flush(): Promise<void> {
      pump();
      while (inFlight.size > 0 || pending.length > 0) {
        await Promise.all(inFlight);
        pump();
      }
    },
  };
}
