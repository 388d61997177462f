/**
 * Deadlines on the Redis calls someone waits for: connect, settle, admin and close.
 *
 * ioredis has `commandTimeout`, but under auto-pipelining its timers leave unhandled rejections
 * behind, and a blocking read must never have one; so these calls are raced against a timer
 * here instead. Without it a call during a silent partition (packets dropped, no reset) waits
 * until the kernel gives up on the socket, many minutes later.
 *
 * A call that missed its deadline may still run on the server later (its bytes are on the
 * wire). Every call the adapter bounds is safe to run late or never: a late XACK acknowledges,
 * a late release gives back, and an entry whose settle never arrived stays pending and is
 * reclaimed after its lease.
 *
 * It also remembers that Redis stopped answering: once a call missed its deadline, and until
 * some call is answered again, `silent` is true, and close() does not spend another deadline
 * on a QUIT nobody will answer.
 */
import { DeadlineError, type EventwireError, TransportError, withDeadline } from '@eventwire/core/transport';
import { redisError } from './errors.ts';

export class Bounded {
  /** The masked URL (or "shared client"), for error messages. */
  readonly #where: string;
  #silent = false;

  constructor(where: string) {
    this.#where = where;
  }

  /** A bounded call timed out, and no call has been answered since. */
  get silent(): boolean {
    return this.#silent;
  }

  /**
   * Resolves with `work`'s result, or rejects with a TransportError: `work`'s error wrapped, or
   * a retryable `ETIMEDOUT` one when it did not settle within `ms`.
   */
  call<T>(operation: string, ms: number, work: Promise<T>): Promise<T> {
    return withDeadline(work, ms, '').then(
      (value) => {
        this.#silent = false;
        return value;
      },
      (error: unknown) => {
        if (!(error instanceof DeadlineError)) throw this.error(operation, error);
        this.#silent = true;
        throw this.timeout(operation, ms);
      },
    );
  }

  /** The error for a call that got no reply within `ms`. */
  timeout(operation: string, ms: number): TransportError {
    return new TransportError(`redis: ${operation} (${this.#where}): no reply within ${ms} ms`, {
      driverCode: 'ETIMEDOUT',
    });
  }

  /** `error` of `operation`, as the TransportError that leaves the adapter. */
  error(operation: string, error: unknown): EventwireError {
    return redisError(operation, error, this.#where);
  }
}
