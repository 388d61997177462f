/**
 * Rewind (the SPI's optional `rewind`): the group's durable consumer is created again with all
 * its settings kept and a new start, `by_start_time` at the rewind time (`all` for the
 * beginning). JetStream does not let an existing consumer change where it starts, hence delete
 * and add. What the old consumer still had pending (unacked, waiting for a `nak` delay) is
 * forgotten with it: an event at or after the rewind time comes once from the new consumer, one
 * before it is not delivered again (a seek, as with Kafka offsets by time). The count is the new
 * consumer's `num_pending`; a dry run creates a throwaway consumer with the same filter and start
 * and reads its `num_pending` instead, moving nothing.
 */
import { sleep } from '@eventwire/core/transport';
import { AckPolicy, type ConsumerConfig, DeliverPolicy, type JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { isNotFound } from './topology.ts';

type Start = Pick<ConsumerConfig, 'deliver_policy' | 'opt_start_time'>;

/** Where a consumer starts for a rewind to `to`. */
function startOf(to: Date | 'beginning'): Start {
  if (to === 'beginning') return { deliver_policy: DeliverPolicy.All };
  return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: to.toISOString() };
}

/**
 * Rewinds consumer `name` of `stream` to `to`; resolves to how many events it will deliver
 * (`dryRun`: would deliver). 0 when the group has no consumer (it never subscribed).
 */
export async function rewindConsumer(
  jsm: JetStreamManager,
  stream: string,
  name: string,
  to: Date | 'beginning',
  dryRun: boolean,
): Promise<number> {
  let config: ConsumerConfig;
  try {
    config = (await jsm.consumers.info(stream, name)).config;
  } catch (error) {
    if (isNotFound(error)) return 0;
    throw error;
  }
  const start = startOf(to);
  if (dryRun) return countFrom(jsm, stream, config, start);
  const { deliver_policy: _policy, opt_start_seq: _seq, opt_start_time: _time, ...kept } = config;
  const replacement: Partial<ConsumerConfig> = { ...kept, ...start };
  await jsm.consumers.delete(stream, name);
  let failure: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return (await jsm.consumers.add(stream, replacement)).num_pending;
    } catch (error) {
      failure = error;
      // A running consumer of the group (rewind wants none) recovered meanwhile and created the
      // consumer again with its own start: replace that one.
      await jsm.consumers.delete(stream, name).catch(() => {});
      await sleep(100 * attempt);
    }
  }
  throw new RewindLostConsumer(failure);
}

/** The consumer was deleted for a rewind and could not be created again. */
export class RewindLostConsumer extends Error {
  override readonly name = 'RewindLostConsumer';
  constructor(cause: unknown) {
    super(
      `the consumer was deleted for the rewind and could not be created again (${String(cause)}); the group's next subscribe creates it where its "from" says`,
      { cause },
    );
  }
}

/** Events a consumer with `config`'s filter would deliver from `start`, by a throwaway consumer. */
async function countFrom(
  jsm: JetStreamManager,
  stream: string,
  config: ConsumerConfig,
  start: Start,
): Promise<number> {
  const filter =
    config.filter_subjects && config.filter_subjects.length > 0
      ? { filter_subjects: config.filter_subjects }
      : config.filter_subject
        ? { filter_subject: config.filter_subject }
        : {};
  const probe = await jsm.consumers.add(stream, {
    ack_policy: AckPolicy.None,
    ...start,
    ...filter,
    mem_storage: true,
    num_replicas: 1,
    // Removed by the server even if the delete below never arrives.
    inactive_threshold: nanos(30_000),
  });
  try {
    return probe.num_pending;
  } finally {
    await jsm.consumers.delete(stream, probe.name).catch(() => {});
  }
}
