/**
 * The internal seam between the transport and a Kafka client library. Everything eventwire
 * needs from Kafka fits in this small interface, so that the transport logic (offset tracking,
 * per-key retry holds, dead letters, flow control) is written once and both kafkajs and
 * `@platformatic/kafka` are real, tested implementations of it. Not part of the public API.
 */

/** A record as the transport sees it. */
export interface ClientRecord {
  readonly partition: number;
  readonly offset: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** Headers under their Kafka names, as on the wire: what dead letters keep. */
  readonly headers: Record<string, string>;
  /**
   * Headers under core's attribute names (the CloudEvents binding undone, see headers.ts):
   * what core decodes. A client may build it straight from the header bytes, once.
   */
  readonly attributes: Record<string, string>;
}

/** A record to produce. */
export interface ProduceRecord {
  topic: string;
  key?: string | undefined;
  value: Buffer | Uint8Array;
  headers: Record<string, string>;
}

export interface TopicSpec {
  topic: string;
  partitions: number;
  replicationFactor: number;
}

/** Offsets per partition. `-1n` means "no committed offset". */
export type PartitionOffsets = Map<number, bigint>;

/** Callbacks from a group consumer to the transport. */
export interface GroupHooks {
  /**
   * The group's assignment for this member changed (first join, rebalance, rejoin after a
   * broker restart). `partitions` is the complete new assignment for the topic.
   */
  onAssigned(partitions: readonly number[]): void;
  /**
   * The group began a rebalance: this member rejoins and may lose partitions when it ends.
   * Finished work must be committed now, while this member's generation is still current,
   * or the next owner handles it again.
   */
  onRebalancing(): void;
  /** Records fetched from one partition, in offset order. Must not block. */
  onRecords(partition: number, records: readonly ClientRecord[]): void;
  /** A non-fatal client error (logged by the transport). */
  onError(error: unknown): void;
}

export interface GroupConsumerOptions {
  topic: string;
  group: string;
  /** Where to start when the group has no committed offset for a partition. */
  from: 'earliest' | 'latest';
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs: number;
  /** Longest a fetch waits on the broker for new data. */
  maxWaitMs: number;
  /** Most bytes one fetch returns (at least one batch, whatever its size); unset: the client's default. */
  fetchMaxBytes: number | undefined;
}

/** One member of a consumer group on one topic. */
export interface ClientGroupConsumer {
  /** Joins the group; resolves once this member has its first assignment. */
  start(): Promise<void>;
  /** Stop fetching a partition (records already fetched may still arrive once). */
  pause(partition: number): void;
  resume(partition: number): void;
  /** Commits the next offset to read for each partition. Rejects on a stale generation. */
  commit(offsets: PartitionOffsets): Promise<void>;
  /** Stops fetching and leaves the group (so its partitions move at once). */
  close(): Promise<void>;
}

/** What the transport needs from a client library. */
export interface KafkaClient {
  /** Library name, for logs and the benchmark (`kafkajs`, `platformatic`). */
  readonly name: string;
  connect(): Promise<void>;
  /** Idempotent producer, acks from all in-sync replicas. Resolves once every record is acknowledged. */
  produce(records: readonly ProduceRecord[]): Promise<void>;
  /** Creates the topics that do not exist yet. */
  createTopics(topics: readonly TopicSpec[]): Promise<void>;
  /** The number of partitions of a topic, or undefined when it does not exist. */
  partitionCount(topic: string): Promise<number | undefined>;
  /** The earliest or latest (high watermark) offset of every partition. */
  offsets(topic: string, which: 'earliest' | 'latest'): Promise<PartitionOffsets>;
  /**
   * Per partition, the offset of the first record whose timestamp is at or after `timestampMs`
   * (Kafka's ListOffsets by time), or the end offset where there is none.
   */
  offsetsForTime(topic: string, timestampMs: number): Promise<PartitionOffsets>;
  /** The group's committed offsets for the topic (`-1n` where none). */
  committed(group: string, topic: string): Promise<PartitionOffsets>;
  /**
   * Commits offsets for a group that has no active member (used by `ensureGroup`).
   * Resolves false, committing nothing, when the group has active members.
   */
  commitInactiveGroup(group: string, topic: string, offsets: PartitionOffsets): Promise<boolean>;
  /** Reads one partition from `from` (inclusive) to `to` (exclusive). */
  read(topic: string, partition: number, from: bigint, to: bigint): Promise<ClientRecord[]>;
  /** One round trip to the cluster with a short timeout; rejects when it does not answer. */
  ping(timeoutMs: number): Promise<void>;
  groupConsumer(options: GroupConsumerOptions, hooks: GroupHooks): ClientGroupConsumer;
  /**
   * Closes every connection. A graceful disconnect may wait for requests in flight, for at most
   * `graceMs` (a failed connect passes 0: nothing to finish, everything to let go of); then
   * whatever is still open is destroyed. The client opens connections again when next used.
   */
  close(graceMs: number): Promise<void>;
}
