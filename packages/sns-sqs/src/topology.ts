/**
 * Topology: a topic is an SNS topic; a group is an SQS queue subscribed to it with raw message
 * delivery, a queue policy that lets that topic (and only it) send, and a redrive policy onto the
 * group's dead-letter queue. FIFO topics get FIFO queues. Every call is idempotent (AWS
 * create-calls return the existing resource), and results are cached per transport, with
 * concurrent callers sharing one in-flight creation.
 */
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueUrlCommand,
  type QueueAttributeName,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import type { Clients } from './clients.ts';
import { queueNames, topicName } from './names.ts';
import type { ResolvedOptions } from './options.ts';

export interface TopicInfo {
  arn: string;
  fifo: boolean;
}

export interface GroupInfo {
  topic: TopicInfo;
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
  dlqArn: string;
  fifo: boolean;
}

export class Topology {
  readonly #clients: Clients;
  readonly #options: ResolvedOptions;
  readonly #topics = new Map<string, Promise<TopicInfo>>();
  readonly #groups = new Map<string, Promise<GroupInfo>>();

  constructor(clients: Clients, options: ResolvedOptions) {
    this.#clients = clients;
    this.#options = options;
  }

  isFifo(topic: string): boolean {
    return this.#options.fifo(topic);
  }

  /** The SNS topic (created if missing). */
  topic(topic: string): Promise<TopicInfo> {
    return this.#cached(this.#topics, topic, () => this.#createTopic(topic));
  }

  /** The group's queues and subscription (created if missing). */
  group(topic: string, group: string): Promise<GroupInfo> {
    return this.#cached(this.#groups, `${topic}\u0000${group}`, () => this.#createGroup(topic, group));
  }

  /** Forget cached resources (they were deleted, or an emulator lost its state): the next call re-creates them. */
  forget(topic: string, group?: string): void {
    this.#topics.delete(topic);
    if (group !== undefined) this.#groups.delete(`${topic}\u0000${group}`);
    else
      for (const key of this.#groups.keys()) if (key.startsWith(`${topic}\u0000`)) this.#groups.delete(key);
  }

  #cached<T>(cache: Map<string, Promise<T>>, key: string, create: () => Promise<T>): Promise<T> {
    let found = cache.get(key);
    if (!found) {
      found = create();
      cache.set(key, found);
      // A failed creation is not cached: the next caller tries again.
      found.catch(() => {
        if (cache.get(key) === found) cache.delete(key);
      });
    }
    return found;
  }

  async #createTopic(topic: string): Promise<TopicInfo> {
    const fifo = this.isFifo(topic);
    const attributes: Record<string, string> = fifo
      ? { FifoTopic: 'true', ContentBasedDeduplication: 'false' }
      : {};
    const out = await this.#clients.sns.send(
      new CreateTopicCommand({
        Name: topicName(this.#options.namePrefix, topic, fifo),
        Attributes: attributes,
      }),
    );
    return { arn: out.TopicArn!, fifo };
  }

  async #createGroup(topic: string, group: string): Promise<GroupInfo> {
    const info = await this.topic(topic);
    const { fifo } = info;
    const names = queueNames(this.#options.namePrefix, topic, group, fifo);
    // Queue ARNs follow from the topic's (same partition, region and account), which lets the
    // policy go in at creation instead of a second round trip.
    const [, partition, , region, account] = info.arn.split(':');
    const arnOf = (name: string) => `arn:${partition}:sqs:${region}:${account}:${name}`;
    const common: Partial<Record<QueueAttributeName, string>> = {
      MessageRetentionPeriod: String(this.#options.retentionSeconds),
      ...(fifo ? { FifoQueue: 'true', ContentBasedDeduplication: 'false' } : {}),
    };
    const dlqArn = arnOf(names.dlq);
    const dlqUrl = await this.#createQueue(names.dlq, common);
    const queueArn = arnOf(names.queue);
    const queueUrl = await this.#createQueue(names.queue, {
      ...common,
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: dlqArn,
        maxReceiveCount: this.#options.maxReceiveCount,
      }),
      Policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'eventwire-sns-delivery',
            Effect: 'Allow',
            Principal: { Service: 'sns.amazonaws.com' },
            Action: 'sqs:SendMessage',
            Resource: queueArn,
            Condition: { ArnEquals: { 'aws:SourceArn': info.arn } },
          },
        ],
      }),
    });
    // Subscribe is idempotent for the same (topic, endpoint, attributes). Raw delivery: the SQS
    // body is the published message itself and the SNS message attributes become SQS ones.
    await this.#clients.sns.send(
      new SubscribeCommand({
        TopicArn: info.arn,
        Protocol: 'sqs',
        Endpoint: queueArn,
        Attributes: { RawMessageDelivery: 'true' },
        ReturnSubscriptionArn: true,
      }),
    );
    return { topic: info, queueUrl, queueArn, dlqUrl, dlqArn, fifo };
  }

  /**
   * CreateQueue returns the existing queue when the attributes match; when they differ (options
   * changed since it was created) AWS refuses, and the attributes are updated in place instead.
   */
  async #createQueue(name: string, attributes: Partial<Record<QueueAttributeName, string>>): Promise<string> {
    try {
      const out = await this.#clients.sqs.send(
        new CreateQueueCommand({ QueueName: name, Attributes: attributes }),
      );
      return out.QueueUrl!;
    } catch (error) {
      if (!/QueueNameExists|QueueAlreadyExists/.test((error as Error).name)) throw error;
      const { QueueUrl } = await this.#clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      const { FifoQueue: _fifo, ...mutable } = attributes;
      await this.#clients.sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: mutable }));
      return QueueUrl!;
    }
  }
}
