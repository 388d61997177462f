/**
 * eventwire on SNS+SQS vs raw AWS SDK calls, same endpoint, same run.
 *
 *   node --conditions=source bench/sns-sqs.bench.ts
 *
 * Env: EVENTWIRE_TEST_SNS_SQS_URL (default: moto from scripts/brokers/urls.sh), BENCH_N messages
 * per phase (default 1000: on the patched moto a 200-message phase lasts a fraction of a second,
 * too short for a stable ratio), BENCH_ROUNDS (default 2; phases alternate raw/eventwire each
 * round, the best round counts).
 *
 * Both sides do the same work: publish = SNS PublishBatch of 10 with 4 batches in flight (the
 * raw side sends the same CloudEvents JSON body eventwire sends); consume = 4 long-poll loops of
 * ReceiveMessage(10) + DeleteMessageBatch, until every message is deleted. Every phase uses a
 * fresh topic and queue so that queue depth is the same for both (stock moto's SendMessage gets
 * slower with queue depth; see docs/benchmarks/sns-sqs.md).
 */
import { randomUUID } from 'node:crypto';
import { CreateTopicCommand, PublishBatchCommand, SNSClient } from '@aws-sdk/client-sns';
import {
  DeleteMessageBatchCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { createBus, encodeStructured, silentLogger } from '@eventwire/core';
import { parseUrl, queueNames, snsSqs, topicName } from '@eventwire/sns-sqs';
import { orderData, orderPlaced, orderPlacedEnvelope } from './order-placed.ts';

const url = process.env.EVENTWIRE_TEST_SNS_SQS_URL ?? 'sns-sqs://us-east-1?endpoint=http://127.0.0.1:54566';
const N = Number(process.env.BENCH_N ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const PARALLEL = 4;
const options = { ...parseUrl(url), waitTimeSeconds: 1 };
const region = options.region ?? 'us-east-1';
const credentials = {
  accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test',
  secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
};
const clientConfig = { region, credentials, ...(options.endpoint ? { endpoint: options.endpoint } : {}) };
const sns = new SNSClient(clientConfig);
const sqs = new SQSClient(clientConfig);

const run = randomUUID().slice(0, 8);
let topics = 0;
const event = () => orderPlaced(`ewbench-${run}-${++topics}`);

/** A topic with one group queue, created by the adapter (same topology for both sides). */
async function topology(topic: string, group: string) {
  const transport = snsSqs({ ...options, credentials });
  await transport.ensureGroup(topic, group, 'latest');
  await transport.close();
  return { topicName: topicName('', topic, false), queueName: queueNames('', topic, group, false).queue };
}

async function topicArn(name: string): Promise<string> {
  return (await sns.send(new CreateTopicCommand({ Name: name }))).TopicArn!;
}

async function queueUrl(name: string): Promise<string> {
  return (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
}

async function timed(work: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await work();
  return (N / (performance.now() - start)) * 1000;
}

async function parallel(count: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

async function rawPublish(arn: string): Promise<void> {
  await parallel(Math.ceil(N / 10), async (b) => {
    const entries = Array.from({ length: Math.min(10, N - b * 10) }, (_, k) => {
      const wire = encodeStructured(orderPlacedEnvelope(b * 10 + k));
      return {
        Id: String(k),
        Message: Buffer.from(wire.body).toString('utf8'),
        MessageAttributes: {
          'content-type': { DataType: 'String', StringValue: wire.headers['content-type']! },
        },
      };
    });
    const out = await sns.send(
      new PublishBatchCommand({ TopicArn: arn, PublishBatchRequestEntries: entries }),
    );
    if ((out.Successful?.length ?? 0) !== entries.length)
      throw new Error('raw publish: entries not accepted');
  });
}

async function rawConsume(url: string): Promise<void> {
  let deleted = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (deleted < N) {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: url,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 1,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        );
        const messages = out.Messages ?? [];
        if (messages.length === 0) continue;
        for (const m of messages) JSON.parse(m.Body!);
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: url,
            Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
        deleted += messages.length;
      }
    }),
  );
}

const results: Record<string, { raw: number; eventwire: number }> = {
  publish: { raw: 0, eventwire: 0 },
  consume: { raw: 0, eventwire: 0 },
};

for (let round = 0; round < ROUNDS; round++) {
  // Raw SDK.
  {
    const Event = event();
    const t = await topology(Event.topic, 'g');
    const arn = await topicArn(t.topicName);
    const rate = await timed(() => rawPublish(arn));
    results.publish!.raw = Math.max(results.publish!.raw, rate);
    const qurl = await queueUrl(t.queueName);
    results.consume!.raw = Math.max(results.consume!.raw, await timed(() => rawConsume(qurl)));
  }
  // eventwire.
  {
    const Event = event();
    await topology(Event.topic, 'g');
    const producer = await createBus({
      source: 'bench',
      logger: silentLogger,
      transport: snsSqs({ ...options, credentials }),
    });
    const rate = await timed(() =>
      parallel(Math.ceil(N / 10), async (b) => {
        await producer.publishMany(
          Event,
          Array.from({ length: Math.min(10, N - b * 10) }, (_, k) => ({ data: orderData(b * 10 + k) })),
        );
      }),
    );
    results.publish!.eventwire = Math.max(results.publish!.eventwire, rate);
    await producer.close();
    const consumer = await createBus({
      source: 'bench',
      logger: silentLogger,
      transport: snsSqs({ ...options, credentials, maxPollers: PARALLEL }),
    });
    let handled = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    // concurrency 20 + prefetch 20 = 40 in flight: 4 pollers of 10, as on the raw side.
    consumer.subscribe(
      Event,
      () => {
        if (++handled === N) done();
      },
      { group: 'g', concurrency: 20 },
    );
    const rate2 = await timed(async () => {
      await consumer.start();
      await finished;
    });
    results.consume!.eventwire = Math.max(results.consume!.eventwire, rate2);
    await consumer.close({ drainMs: 5000 });
  }
}

console.log(
  `\nSNS+SQS at ${options.endpoint ?? `AWS ${region}`}, ${N} messages per phase, best of ${ROUNDS} rounds\n`,
);
console.log('| phase   | raw SDK msg/s | eventwire msg/s | eventwire / raw |');
console.log('|---------|--------------:|----------------:|----------------:|');
for (const [phase, r] of Object.entries(results)) {
  console.log(
    `| ${phase.padEnd(7)} | ${r.raw.toFixed(0).padStart(13)} | ${r.eventwire.toFixed(0).padStart(15)} | ${(r.eventwire / r.raw).toFixed(2).padStart(15)} |`,
  );
}
sns.destroy();
sqs.destroy();
