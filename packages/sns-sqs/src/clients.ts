/**
 * The two AWS SDK clients, configured once per transport: region, endpoint, credentials, and
 * request deadlines that throw (see deadlines.ts).
 */
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Credentials, ResolvedOptions } from './options.ts';

export interface Clients {
  sns: SNSClient;
  sqs: SQSClient;
  destroy(): void;
}

export function createClients(options: ResolvedOptions): Clients {
  const { requestHandler, ...clientConfig } = options.clientConfig;
  const base = {
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...clientConfig,
    requestHandler: withDeadlines(requestHandler, options),
  };
  const credentials = options.credentials ?? emulatorFallback(options);
  const sqs = new SQSClient({ ...base, ...(credentials ? { credentials } : {}) });
  const sns = new SNSClient({ ...base, ...(credentials ? { credentials } : {}) });
  return {
    sns,
    sqs,
    destroy() {
      sns.destroy();
      sqs.destroy();
    },
  };
}

type RequestHandlerConfig = ResolvedOptions['clientConfig']['requestHandler'];

/**
 * The HTTP handler's options with our deadlines. `throwOnRequestTimeout`: without it the
 * installed `@smithy/node-http-handler` only logs a warning when `requestTimeout` passes, and a
 * request into a silent network partition waits forever. A handler instance from the
 * application is used as it is: its own timeouts apply.
 */
function withDeadlines(given: RequestHandlerConfig, options: ResolvedOptions): RequestHandlerConfig {
  const ours = {
    connectionTimeout: options.connectionTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    throwOnRequestTimeout: true,
  };
  if (given === undefined) return ours;
  const isOptions =
    typeof given === 'object' &&
    given !== null &&
    typeof (given as { handle?: unknown }).handle !== 'function';
  return isOptions ? { ...ours, ...(given as object) } : given;
}

/**
 * With an endpoint override (moto, LocalStack), fall back to the emulators' `test`/`test`
 * credentials when the default chain finds none, so that a bare URL works against an emulator.
 * The default chain is taken from a throwaway client's resolved config, so it is exactly the
 * SDK's own chain (env, SSO, shared files, container and instance roles).
 */
function emulatorFallback(options: ResolvedOptions): Credentials | undefined {
  if (!options.endpoint) return undefined;
  const probe = new SQSClient({ region: options.region });
  const chain = probe.config.credentials;
  probe.destroy();
  return async () => {
    try {
      return await chain();
    } catch {
      return { accessKeyId: 'test', secretAccessKey: 'test' };
    }
  };
}
