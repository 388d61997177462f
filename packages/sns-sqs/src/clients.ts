/**
 * The two AWS SDK clients, configured once per transport, and the mapping of SDK failures onto
 * eventwire's typed errors (without credentials: messages pass through `redactText`).
 */
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { redactText, TransportError } from '@eventwire/core';
import type { Credentials, ResolvedOptions } from './options.ts';

export interface Clients {
  sns: SNSClient;
  sqs: SQSClient;
  destroy(): void;
}

export function createClients(options: ResolvedOptions): Clients {
  const base = {
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    // Long polls hold a request open for waitTimeSeconds; anything much slower is a dead socket.
    requestHandler: { connectionTimeout: 10_000, requestTimeout: (options.waitTimeSeconds + 30) * 1000 },
    ...options.clientConfig,
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

/** The SDK's error name (`QueueDoesNotExist`, `ECONNREFUSED`, `TimeoutError`...). */
export function errorName(error: unknown): string {
  const e = error as { name?: string; code?: string; Code?: string };
  return e?.Code ?? e?.name ?? e?.code ?? 'Error';
}

/** A queue or topic that does not exist (deleted, or an emulator restarted without state). */
export function isNotFound(error: unknown): boolean {
  const name = errorName(error);
  return /NonExistentQueue|QueueDoesNotExist|NotFound/i.test(name);
}

/** Short, credential-free description of an SDK or network failure. */
export function describe(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string; errors?: unknown[] };
  let message = e?.message || '';
  // Connection failures come as an AggregateError with an empty message.
  if (!message && Array.isArray(e?.errors) && e.errors.length > 0)
    message = String((e.errors[0] as Error)?.message ?? '');
  const code = e?.code && e.code !== e.name ? ` ${e.code}` : '';
  return redactText(`${e?.name ?? 'Error'}${code}: ${message || 'no details'}`);
}

export function transportError(what: string, error: unknown): TransportError {
  return new TransportError(`sns-sqs: ${what} failed: ${describe(error)}`, { cause: error });
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
