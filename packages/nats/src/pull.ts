/**
 * One subscription = one pull loop on a durable consumer, with exact flow control.
 *
 * Why not the client's `consume()`: it refills on what it *received*, not on what was
 * *settled*, so a slow handler lets its buffer grow, and closing it drops messages already on
 * the wire (they would wait out `ack_wait`). Here every pull request reserves credits
 * (`Credits`) for its whole batch, so delivered-and-unsettled plus still-requested never exceeds
 * `spec.maxInFlight`; each request has its own reply subject, so a request the server has
 * forgotten (restart, missed heartbeats) can be dropped and its credits reused, and anything
 * that later arrives for it is handed straight back (`-NAK`). Closing drains the inbox (the
 * server's in-flight messages still arrive) and naks everything still held, so another
 * consumer gets them at once.
 */
import {
  Credits,
  type DeadLetterFailure,
  type IncomingMessage,
  type Logger,
  type SubscriptionSpec,
  type TransportSubscription,
} from '@eventwire/core/transport';
import {
  createInbox,
  type Msg,
  type NatsConnection,
  nanos,
  type Subscription,
} from '@nats-io/transport-node';
import { deliveryCount, nak, term } from './ack.ts';
import { natsError } from './errors.ts';
import { readHeaders } from './header-block.ts';
import { type IncomingMessageOwner, NatsIncomingMessage } from './incoming-message.ts';

export interface PullDeps {
  nc: NatsConnection;
  /** `$JS.API`, or the domain/prefixed form. */
  apiPrefix: string;
  stream: string;
  consumer: string;
  spec: SubscriptionSpec;
  onMessage: (message: IncomingMessage) => void;
  expiresMs: number;
  heartbeatMs: number;
  /** The consumer's `max_deliver` (-1: none). */
  maxDeliver: number;
  /** Copies a delivery to the (topic, group) dead letters; resolves once JetStream stored it. */
  deadLetter: (msg: Msg, failure: DeadLetterFailure) => Promise<void>;
  /** Checks the consumer and recreates it (and its stream) when it is gone. */
  recover: () => Promise<void>;
  connected: () => boolean;
  logger: Logger;
  /** The connection's custom inbox prefix, if any (subject permissions). */
  inboxPrefix?: string | undefined;
  /** Runs a step of closing (draining the pull requests, flushing the naks) within the close deadline. */
  closing: (work: Promise<unknown>) => Promise<void>;
}

interface PullRequest {
  /**
   * Its own subscription: JetStream delivers messages under their stream subject, so only the
   * subscription (sid) tells which request a message answers.
   */
  sub: Subscription;
  /** Messages the server may still send for this request (credits reserved for them). */
  remaining: number;
  /** Last message or heartbeat seen for it. */
  lastSeen: number;
  expiresAt: number;
}

/** Outstanding pull requests per subscription: one filling while the previous one drains. */
const MAX_REQUESTS = 2;

/** Longest a pull waits for settles to make its batch worthwhile before asking for what is free. */
const BATCH_WAIT_MS = 10;

export class PullSubscription implements TransportSubscription, IncomingMessageOwner {
  readonly nc: NatsConnection;
  readonly topic: string;
  readonly group: string;
  readonly maxDeliver: number;
  readonly #d: PullDeps;
  readonly #credits: Credits;
  readonly #requests = new Map<string, PullRequest>();
  /** Delivered and not settled yet. */
  readonly #held = new Set<NatsIncomingMessage>();
  readonly #inbox: string;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  /**
   * Too little was free to ask at once, with no request out: waiting (`Credits.whenAvailable`)
   * for settles to bring a batch, then pulling for what is free. Aborted once a request is sent.
   */
  #batchWait: AbortController | undefined;
  #closed = false;
  /** stop() was called: no pull requests any more (close follows). */
  #stopped = false;
  #recovering: Promise<void> | undefined;
  #pauseUntil = 0;

  constructor(deps: PullDeps) {
    this.#d = deps;
    this.nc = deps.nc;
    this.topic = deps.spec.topic;
    this.group = deps.spec.group;
    this.maxDeliver = deps.maxDeliver;
    this.#inbox = createInbox(deps.inboxPrefix);
    this.#credits = new Credits(Math.max(1, deps.spec.maxInFlight));
  }

  start(): void {
    // A quarter of the lease: even a tick that runs late leaves room before ack_wait.
    const tick = Math.max(100, Math.min(this.#d.heartbeatMs, this.#d.spec.leaseMs / 4));
    this.#timer = setInterval(() => this.#tick(), tick);
    this.#timer.unref();
    this.#pull();
  }

  /** After a reconnect the server may have lost every waiting request: start over. */
  onReconnect(): void {
    for (const id of [...this.#requests.keys()]) this.#end(id);
    this.#pull();
  }

  /**
   * Stops fetching (core calls it when close begins): no new pull request, the outstanding ones
   * end (drained: what the server already sent for them arrives and is given back at once).
   * Held deliveries stay valid: they can be settled or released, and `working()` still keeps
   * their lease, until close.
   */
  stop(): void {
    if (this.#stopped || this.#closed) return;
    this.#stopped = true;
    this.#endBatchWait();
    for (const id of [...this.#requests.keys()]) this.#end(id);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#endBatchWait();
    // drain = unsubscribe, but still receive what the server sent before it saw the
    // unsubscribe; #onMsg naks those since we are closed.
    const requests = [...this.#requests.values()];
    this.#requests.clear();
    await this.#d.closing(Promise.allSettled(requests.map((r) => r.sub.drain())));
    await Promise.allSettled([...this.#held].map((m) => m.release()));
    if (this.#d.connected()) await this.#d.closing(this.#d.nc.flush());
  }

  /** `anyFree`: ask for whatever is free, however little (see {@link BATCH_WAIT_MS}). */
  #pull(anyFree = false): void {
    if (
      this.#closed ||
      this.#stopped ||
      this.#recovering ||
      !this.#d.connected() ||
      Date.now() < this.#pauseUntil
    )
      return;
    while (this.#requests.size < MAX_REQUESTS) {
      const free = this.#credits.available();
      // Ask only for a worthwhile batch: many 1-message requests would cost a round trip each.
      // With no request out, a quarter of the window is enough (what is held will settle and
      // free more); with one out, half of it.
      const max = this.#credits.max;
      const idle = this.#requests.size === 0;
      const threshold = idle ? (anyFree ? 1 : Math.ceil(max / 4)) : Math.ceil(max / 2);
      if (free < threshold) {
        // Handlers stuck on most of the window must not idle the credits still free: if no
        // settle brings the batch up to size within a moment, ask for what there is.
        if (idle && free > 0 && !this.#batchWait) this.#waitForBatch(threshold);
        return;
      }
      const id = String(++this.#seq);
      const now = Date.now();
      const reply = `${this.#inbox}.${id}`;
      const request = {
        batch: free,
        expires: nanos(this.#d.expiresMs),
        idle_heartbeat: nanos(this.#d.heartbeatMs),
      };
      try {
        const sub = this.#d.nc.subscribe(reply, { callback: (err, msg) => this.#onMsg(id, err, msg) });
        this.#credits.take(free);
        this.#requests.set(id, { sub, remaining: free, lastSeen: now, expiresAt: now + this.#d.expiresMs });
        this.#d.nc.publish(
          `${this.#d.apiPrefix}.CONSUMER.MSG.NEXT.${this.#d.stream}.${this.#d.consumer}`,
          JSON.stringify(request),
          {
            reply,
          },
        );
        if (this.#batchWait) this.#endBatchWait();
      } catch (error) {
        // Connection closing or closed: nothing to ask for anymore.
        this.#end(id);
        this.#d.logger.debug({ err: String(error) }, 'nats: could not send a pull request');
        return;
      }
    }
  }

  /**
   * Waits up to {@link BATCH_WAIT_MS} for `threshold` credits, then pulls for whatever is free
   * (at least one: `whenAvailable` resolves only with a credit free).
   */
  #waitForBatch(threshold: number): void {
    const wait = new AbortController();
    this.#batchWait = wait;
    this.#credits.whenAvailable(wait.signal, threshold, BATCH_WAIT_MS).then(
      () => {
        if (this.#batchWait !== wait) return;
        this.#batchWait = undefined;
        this.#pull(true);
      },
      // Aborted: a request went out meanwhile, or the subscription stopped.
      () => {},
    );
  }

  #endBatchWait(): void {
    this.#batchWait?.abort();
    this.#batchWait = undefined;
  }

  /** The request is over (fulfilled, expired, refused or forgotten): free what it still reserved. */
  #end(id: string): void {
    const request = this.#requests.get(id);
    if (!request) return;
    this.#requests.delete(id);
    // Fulfilled: nothing more can come. Otherwise (expired, refused, forgotten) drain: the
    // server stops serving a request once it sees no interest, and whatever it sent before
    // that still reaches #onMsg, which hands it back since the request is no longer known.
    if (request.remaining > 0) void request.sub.drain().catch(() => {});
    else request.sub.unsubscribe();
    if (request.remaining > 0) this.#credits.give(request.remaining);
  }

  #onMsg(id: string, err: Error | null, msg: Msg): void {
    if (err) {
      this.#d.logger.warn({ err: err.message }, 'nats: pull inbox subscription failed');
      return;
    }
    const request = this.#requests.get(id);
    const reply = msg.reply;
    // JetStream deliveries always carry their ack subject as reply; status messages (heartbeat,
    // expiry, errors) never do. Checking that first keeps `msg.headers` (a full header parse)
    // off the path of every delivery.
    if (!reply) {
      if (!request || this.#closed) return;
      const code = msg.headers?.code ?? 0;
      if (code === 100) {
        request.lastSeen = Date.now();
        return;
      }
      this.#end(id);
      this.#status(code, msg.headers?.description ?? '');
      return;
    }
    if (this.#closed || this.#stopped || !request) {
      // For a request we already gave up on (or after stop or close): hand it back at once.
      nak(this.#d.nc, reply);
      return;
    }
    request.lastSeen = Date.now();
    request.remaining--;
    if (request.remaining <= 0) this.#end(id);
    const message = new NatsIncomingMessage(this, msg, reply, deliveryCount(reply), readHeaders(msg));
    this.#held.add(message);
    this.#d.onMessage(message);
  }

  /** {@link IncomingMessageOwner}: a message was settled, its credit is free again. */
  settled(message: NatsIncomingMessage): void {
    this.#held.delete(message);
    this.#credits.give();
    this.#pull();
  }

  /** {@link IncomingMessageOwner}: copy to the dead letters, then `term` the original. */
  async deadLetter(msg: Msg, failure: DeadLetterFailure): Promise<void> {
    try {
      await this.#d.deadLetter(msg, failure);
    } catch (error) {
      // Not stored: give it back (soon, not at once, the broker is likely in trouble) so it
      // fails again and is dead-lettered then.
      try {
        nak(this.#d.nc, msg.reply!, 1_000);
      } catch {
        // The connection is closed: the message comes back after ack_wait.
      }
      throw natsError('dead letter', error);
    }
    term(this.#d.nc, msg.reply!, `dead-lettered: ${failure.reason}`);
  }

  /** A pull request ended with a status: 404/408 (nothing more, expired), 409 (refused), 503 (no consumer). */
  #status(code: number, description: string): void {
    const text = description.toLowerCase();
    if (
      code === 503 ||
      (code === 409 && text.includes('consumer deleted')) ||
      (code === 404 && text.includes('consumer'))
    ) {
      this.#recover(`pull request answered ${code} ${description}`);
      return;
    }
    if (code === 409 && !text.includes('leadership')) {
      // Exceeded MaxWaiting and similar: ask again a little later instead of hammering.
      this.#d.logger.debug({ code, description }, 'nats: pull request refused; retrying shortly');
      this.#pauseUntil = Date.now() + 500;
      return;
    }
    this.#pull();
  }

  #recover(why: string): void {
    if (this.#recovering || this.#closed || this.#stopped) return;
    this.#d.logger.warn(
      { stream: this.#d.stream, consumer: this.#d.consumer, why },
      'nats: checking the consumer',
    );
    this.#recovering = (async () => {
      for (let delay = 250; !this.#closed; delay = Math.min(delay * 2, 5_000)) {
        try {
          await this.#d.recover();
          return;
        } catch (error) {
          this.#d.logger.warn({ err: String(error) }, 'nats: could not recreate the consumer; retrying');
          await new Promise((r) => setTimeout(r, delay).unref());
        }
      }
    })().finally(() => {
      this.#recovering = undefined;
      this.#pull();
    });
  }

  #tick(): void {
    if (this.#closed) return;
    const now = Date.now();
    // Keep the lease of what we hold: ack_wait never redelivers work in progress. Every tick
    // (at most a quarter of the lease apart), for every held message.
    if (this.#d.connected()) for (const message of this.#held) message.keepAlive();
    // Two missed heartbeats (or a request well past its expiry): the server forgot it.
    let missed = false;
    for (const [id, request] of this.#requests) {
      const silent = now - request.lastSeen > 2 * this.#d.heartbeatMs + 1_000;
      if (silent || now > request.expiresAt + this.#d.heartbeatMs + 1_000) {
        missed ||= silent && now <= request.expiresAt;
        this.#end(id);
      }
    }
    if (missed && this.#d.connected()) this.#recover('heartbeats missed');
    this.#pull();
  }
}
