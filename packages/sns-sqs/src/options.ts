/**
 * Options of the SNS + SQS transport, their defaults and accepted ranges. Everything here can
 * also be set from the URL (see url.ts) except `credentials` and `clientConfig`, which do not
 * belong in a URL.
 */
import type { SNSClientConfig } from '@aws-sdk/client-sns';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import { checkNumber, type NumericRange } from '@eventwire/core/transport';

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
   * poll in flight (SQS keeps an abandoned poll open and would hand it messages that nobody then
   * sees for a whole lease), so this is also how long a close can take; 20 is cheapest on AWS,
   * lower closes faster.
   */
  waitTimeSeconds?: number;
  /**
   * Redrive policy safety net: after this many receives SQS itself moves a message to the group's
   * dead-letter queue, even if no consumer could settle it (a handler that crashes the process).
   * Keep it above the retry attempts of the group's handlers. 1..1000, default 100.
   */
  maxReceiveCount?: number;
  /** Parallel ReceiveMessage loops per subscription at most (each fetches up to 10). Default 4. */
  maxPollers?: number;
  /** Message retention of the group queues and dead-letter queues, 60 s..14 days. Default 14 days (the maximum). */
  retentionSeconds?: number;
  /**
   * Longest one HTTP request may take to connect (TCP and TLS), ms. Default 3 000. The SDK then
   * tries again (`clientConfig.maxAttempts`, default 3 attempts).
   */
  connectionTimeoutMs?: number;
  /**
   * Longest one HTTP request may wait for AWS's answer, connecting included, ms. Default 5 000;
   * a long poll gets `waitTimeSeconds` more. Past it the request fails (a silent network
   * partition would otherwise hold it forever) and the SDK tries again: with its default 3
   * attempts, any SNS/SQS call rejects within 3 x requestTimeoutMs plus under a second of
   * backoff (16 s by default), with a retryable TransportError.
   */
  requestTimeoutMs?: number;
  /**
   * Extra AWS SDK client configuration (retry strategy, TLS agent, logger...), passed to both
   * clients. A `requestHandler` given as options is merged over the timeouts above; a handler
   * instance replaces them (and its own timeouts apply).
   */
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
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  clientConfig: Partial<SNSClientConfig & SQSClientConfig>;
}

/** Accepted range of every numeric option; url.ts checks URL parameters against the same table. */
export const NUMERIC_OPTIONS = {
  waitTimeSeconds: { min: 0, max: 20 },
  maxReceiveCount: { min: 1, max: 1000 },
  maxPollers: { min: 1 },
  retentionSeconds: { min: 60, max: 1_209_600 },
  connectionTimeoutMs: { min: 1 },
  requestTimeoutMs: { min: 1 },
} as const satisfies Record<string, NumericRange>;

export type NumericOption = keyof typeof NUMERIC_OPTIONS;

function numeric(options: SnsSqsOptions, name: NumericOption): number | undefined {
  return checkNumber(`snsSqs option ${name}`, options[name], NUMERIC_OPTIONS[name]);
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
    waitTimeSeconds: numeric(options, 'waitTimeSeconds') ?? 5,
    maxReceiveCount: numeric(options, 'maxReceiveCount') ?? 100,
    maxPollers: numeric(options, 'maxPollers') ?? 4,
    retentionSeconds: numeric(options, 'retentionSeconds') ?? 1_209_600,
    connectionTimeoutMs: numeric(options, 'connectionTimeoutMs') ?? 3000,
    requestTimeoutMs: numeric(options, 'requestTimeoutMs') ?? 5000,
    clientConfig: options.clientConfig ?? {},
  };
}
