/**
 * The SNS + SQS transport: SNS topics fanned out to one SQS queue per consumer group.
 * See README.md for the semantics (ordering, retries, dead letters, limits).
 */
import { ListTopicsCommand } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, ListQueuesCommand } from '@aws-sdk/client-sqs';
import {
  type Capabilities,
  ConfigError,
  deliverAtOf,
  type IncomingMessage,
  type OutgoingMessage,
  type StartFrom,
  type SubscriptionSpec,
  type Transport,
  type TransportHealth,
  type TransportSubscription,
  withDeadline,
} from '@eventwire/core/transport';
import { createClients } from './clients.ts';
import { SqsDeadLetters } from './dead-letters.ts';
import { connectBoundMs, HEALTH_TIMEOUT_MS } from './deadlines.ts';
import { awsError } from './errors.ts';
import { resolveOptions, type SnsSqsOptions } from './options.ts';
import { MAX_MESSAGE_BYTES, Publisher } from './publisher.ts';
import { MAX_VISIBILITY_SECONDS } from './sqs-ops.ts';
import { SqsSubscription } from './subscription.ts';
import { Topology } from './topology.ts';

/**
 * The longest delayed publish: delivered before the queue's retention discards it (5 min to
 * spare), and with at least half of the redrive policy's receives left for real attempts (a
 * pending delay costs one receive per 12 h).
 */
export function longestDelayMs(o: { retentionSeconds: number; maxReceiveCount: number }): number {
  const retention = o.retentionSeconds * 1000;
  const byRetention = retention - Math.min(300_000, retention / 2);
  const byRedrive = Math.floor((o.maxReceiveCount - 1) / 2) * MAX_VISIBILITY_SECONDS * 1000;
  return Math.min(byRetention, byRedrive);
}

/**
 * A transport on AWS SNS + SQS.
 *
 * ```ts
 * const bus = await createBus({ source: 'checkout', transport: snsSqs({ region: 'eu-west-1', fifo: true }) });
 * ```
 */
export function snsSqs(options: SnsSqsOptions = {}): Transport {
  const resolved = resolveOptions(options);
  const clients = createClients(resolved);
  const topology = new Topology(clients, resolved);
  const publisher = new Publisher(clients, topology);
  const deadLetters = new SqsDeadLetters(clients, topology, resolved);
  const subscriptions = new Set<SqsSubscription>();
  let closed = false;
  const maxDelay = longestDelayMs(resolved);

  const capabilities: Capabilities = {
    // Only FIFO topics hand a group each key's messages in order.
    ordering: resolved.allFifo ? 'partition' : 'none',
    // ChangeMessageVisibility: the queue itself holds the message back for the delay.
    nativeDelay: true,
    // A queue only holds what was published after it was subscribed: no log to replay.
    replay: false,
    // The group queue hides a message received before its time: see subscription.ts.
    delayedPublish: true,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    // SQS carries at most 10 message attributes: CloudEvents go as one JSON document in the body.
    wireMode: 'structured',
    transactionalPublish: false,
  };

  /**
   * One round trip to each service, abandoned after `timeoutMs`: core's deadline (a
   * DeadlineError, code ETIMEDOUT), and the requests still out are aborted.
   */
  async function probe(timeoutMs: number): Promise<void> {
    const abort = new AbortController();
    const where = resolved.endpoint ?? `AWS in ${resolved.region}`;
    try {
      await withDeadline(
        Promise.all([
          clients.sqs.send(new ListQueuesCommand({ MaxResults: 1 }), { abortSignal: abort.signal }),
          clients.sns.send(new ListTopicsCommand({}), { abortSignal: abort.signal }),
        ]),
        timeoutMs,
        `no answer from ${where} within ${timeoutMs} ms`,
      );
    } finally {
      // Past the deadline, or one call failed: the other one goes too (nothing left if both answered).
      abort.abort();
    }
  }

  return {
    name: 'sns-sqs',
    capabilities,
    deadLetters,

    async connect() {
      try {
        await probe(connectBoundMs(resolved));
      } catch (error) {
        // Nothing of this transport may keep the process alive after a failed connect (DESIGN.md
        // section 13): the sockets go now. The clients stay usable, so connect() can be retried.
        clients.destroy();
        throw awsError('connect (ListQueues, ListTopics)', error);
      }
    },

    async publish(messages: readonly OutgoingMessage[]) {
      const now = Date.now();
      for (const m of messages) {
        const at = deliverAtOf(m.headers);
        if (at !== undefined && at - now > maxDelay)
          throw new ConfigError(
            `sns-sqs: publish: a delay of ${at - now} ms is longer than this transport keeps a message (${maxDelay} ms: ` +
              'the queue retention, and half the redrive budget at one receive per 12 h; see retentionSeconds and maxReceiveCount)',
          );
      }
      return publisher.publish(messages);
    },

    async ensureGroup(topic: string, group: string, _from: StartFrom) {
      // `from: 'beginning'` cannot be honoured (capability replay: false): a new queue starts empty.
      try {
        await topology.group(topic, group);
      } catch (error) {
        throw awsError(`create topic ${topic} / group ${group}`, error);
      }
    },

    async subscribe(
      spec: SubscriptionSpec,
      onMessage: (message: IncomingMessage) => void,
    ): Promise<TransportSubscription> {
      const subscription = new SqsSubscription(clients, topology, deadLetters, resolved, spec, onMessage);
      await subscription.start();
      subscriptions.add(subscription);
      return {
        stop: () => subscription.stop(),
        async close() {
          subscriptions.delete(subscription);
          await subscription.close();
        },
      };
    },

    async health(): Promise<TransportHealth> {
      if (closed) return { status: 'down', reason: 'transport is closed' };
      try {
        await probe(HEALTH_TIMEOUT_MS);
        return { status: 'up' };
      } catch (error) {
        return { status: 'down', reason: awsError('health check (ListQueues, ListTopics)', error).message };
      }
    },

    async lag(topic: string, group: string) {
      try {
        const info = await topology.group(topic, group);
        const out = await clients.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: info.queueUrl,
            AttributeNames: [
              'ApproximateNumberOfMessages',
              'ApproximateNumberOfMessagesNotVisible',
              'ApproximateNumberOfMessagesDelayed',
            ],
          }),
        );
        const a = out.Attributes ?? {};
        return (
          Number(a.ApproximateNumberOfMessages ?? 0) +
          Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
          Number(a.ApproximateNumberOfMessagesDelayed ?? 0)
        );
      } catch (error) {
        throw awsError(`lag of ${topic} / ${group} (GetQueueAttributes)`, error);
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...subscriptions].map((s) => s.close()));
      subscriptions.clear();
      clients.destroy();
    },
  };
}
