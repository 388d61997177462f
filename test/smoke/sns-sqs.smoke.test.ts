import { randomUUID } from 'node:crypto';
import {
  CreateTopicCommand,
  DeleteTopicCommand,
  PublishCommand,
  SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { expect, it } from 'vitest';
import { describeBroker, SNS_SQS_URL, snsSqsConfig } from '../support/brokers.ts';

describeBroker('sns-sqs', () => {
  it('publishes to an SNS topic and receives the raw message from a subscribed SQS queue', async () => {
    const config = {
      ...snsSqsConfig(SNS_SQS_URL),
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    };
    const sns = new SNSClient(config);
    const sqs = new SQSClient(config);
    const name = `smoke-${randomUUID()}`;
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: name }));
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
    try {
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
      );
      await sns.send(
        new SubscribeCommand({
          TopicArn,
          Protocol: 'sqs',
          Endpoint: Attributes!.QueueArn,
          Attributes: { RawMessageDelivery: 'true' },
        }),
      );
      await sns.send(new PublishCommand({ TopicArn, Message: `hello ${name}` }));

      const { Messages } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 5 }),
      );
      expect(Messages?.map((m) => m.Body)).toEqual([`hello ${name}`]);
      await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages![0]!.ReceiptHandle }));
    } finally {
      await sqs.send(new DeleteQueueCommand({ QueueUrl }));
      await sns.send(new DeleteTopicCommand({ TopicArn }));
      sns.destroy();
      sqs.destroy();
    }
  });
});
