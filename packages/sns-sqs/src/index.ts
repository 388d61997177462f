/**
 * @eventwire/sns-sqs: AWS SNS topics fanned out to one SQS queue per consumer group.
 *
 * ```ts
 * const bus = await createBus({ url: 'sns-sqs://eu-west-1', source: 'checkout' });
 * // or, with options that do not fit a URL:
 * const bus = await createBus({ source: 'checkout', transport: snsSqs({ region: 'eu-west-1', fifo: true }) });
 * ```
 */
import type { Transport } from '@eventwire/core/transport';
import { snsSqs } from './transport.ts';
import { parseUrl } from './url.ts';

export { DEAD_LETTER_ATTRIBUTE } from './dead-letters.ts';
export { messageGroupId, queueNames, topicName } from './names.ts';
export type { Credentials, SnsSqsOptions } from './options.ts';
export { MAX_MESSAGE_BYTES } from './publisher.ts';
export { snsSqs } from './transport.ts';
export { parseUrl } from './url.ts';

/** `sns-sqs://<region>?endpoint=<url>&fifo=true&...`: what core's `createBus({ url })` calls. */
export function transportFromUrl(url: string): Transport {
  return snsSqs(parseUrl(url));
}
