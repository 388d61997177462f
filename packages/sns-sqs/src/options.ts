/**
 * Options of the SNS + SQS transport, and their defaults. Everything here can also be set from
 * the URL (see url.ts) except `credentials` and `clientConfig`, which do not belong in a URL.
 */
import type { SNSClientConfig } from '@aws-sdk/client-sns';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';

/** Static credentials, or a provider function, as the AWS SDK accepts them. */
export type Credentials = NonNullable<SQSClientConfig['credentials']>;

export interface SnsSqsOptions {
  /** AWS region, e.g. `eu-west-1`. Default: `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`. */
  region?: string;
  /**
   * Endpoint override for both services, for an emulator (moto, LocalStack) or a VPC endpoint:
   * `http://127.0.0.1:4566`. When set and the default credential chain finds nothing, the
   * emulator convention `test`/`test` is used so that `sns-sqs://us-east-1?endpoint=...` works
   * out of the box against an emulator; real AWS still needs real credentials.
   */
  endpoint?: string;
  /** Credentials. Default: the AWS SDK's default chain (env, SSO, shared files, instance/role). */
  credentials?: Credentials;
  /**
   * Use FIFO topics and queues (`.fifo`): per-key order (MessageGroupId = partition key) and
   * publish-side dedup (MessageDeduplicationId = event id, 5-minute window). `true` for every
   * topic, or a predicate per topic name. Default `false` (standard: best-effort order, higher
   * throughput). Only `true` declares the `ordering: 'partition'` capability.
   */
  fifo?: boolean | ((topic: string) => boolean);
  /** Prepended to every topic and queue name (e.g. `prod-`), to share an account between environments. */
  namePrefix?: string;
  /**
   * Long-poll wait per ReceiveMessage, 0..20 s. Default 5. Closing a subscription waits for the
   * poll in flight (an abandoned poll could take messages and strand them for a whole lease), so
   * this is also the worst-case close latency; 20 is cheapest on AWS, lower closes faster.
   */
  waitTimeSeconds?: number;
  /**
   * Redrive policy safety net: after this many receives SQS itself moves a message to the group's
   * dead-letter queue, even if no consumer could settle it (a handler that crashes the process).
   * Keep it above the retry attempts of the group's handlers. Default 100.
   */
  maxReceiveCount?: number;
  /** Parallel ReceiveMessage loops per subscription at most (each fetches up to 10). Default 4. */
  maxPollers?: number;
  /** Message retention of the group queues and dead-letter queues, seconds. Default 14 days (the maximum). */
  retentionSeconds?: number;
  /** Extra AWS SDK client configuration (retry strategy, TLS agent, logger...), passed to both clients. */
  clientConfig?: Partial<SNSClientConfig & SQSClientConfig>;
}

export interface ResolvedOptions {
  region: string;
  endpoint: string | undefined;
  credentials: Credentials | undefined;
  fifo: (topic: string) => boolean;
  allFifo: boolean;
  namePrefix: string;
  waitTimeSeconds: number;
  maxReceiveCount: number;
  maxPollers: number;
  retentionSeconds: number;
  clientConfig: Partial<SNSClientConfig & SQSClientConfig>;
}

export function resolveOptions(options: SnsSqsOptions): ResolvedOptions {
  const fifo = options.fifo ?? false;
  return {
    region: options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    endpoint: options.endpoint,
    credentials: options.credentials,
    fifo: typeof fifo === 'function' ? fifo : () => fifo,
    allFifo: fifo === true,
    namePrefix: options.namePrefix ?? '',
    waitTimeSeconds: Math.min(20, Math.max(0, Math.round(options.waitTimeSeconds ?? 5))),
    maxReceiveCount: Math.min(1000, Math.max(1, options.maxReceiveCount ?? 100)),
    maxPollers: Math.max(1, options.maxPollers ?? 4),
    retentionSeconds: Math.min(1_209_600, Math.max(60, options.retentionSeconds ?? 1_209_600)),
    clientConfig: options.clientConfig ?? {},
  };
}
