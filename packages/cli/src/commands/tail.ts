import { randomUUID } from 'node:crypto';
import { decode, type Envelope, type TransportSubscription } from '@eventwire/core';
import { topicOf } from '../config.ts';
import type { Context } from '../context.ts';
import { redact, UsageError } from '../errors.ts';
import { bodyText } from '../output.ts';

export interface TailOptions {
  count?: number | undefined;
  groupLess?: boolean | undefined;
}

function line(envelope: Envelope): string {
  const subject = envelope.subject === undefined ? '' : ` subject=${envelope.subject}`;
  return `${envelope.time} ${envelope.type} v${envelope.version} ${envelope.id}${subject} ${JSON.stringify(envelope.data)}\n`;
}

/**
 * Prints events of a topic as they arrive. It reads through a throwaway group of its own
 * (`ew-tail-<random>`, starting at 'latest'), so no application group is touched: their
 * positions, leases and dead letters stay as they are. The group is deleted on exit where the
 * transport can (Transport.deleteGroup); otherwise its name is printed so it can be removed.
 */
export async function tail(ctx: Context, name: string | undefined, options: TailOptions): Promise<number> {
  if (!name) throw new UsageError('tail needs a topic or event type: eventwire tail <topic>');
  // Without a config the argument is taken as a topic name as is.
  const config = await ctx.config().catch((error: unknown) => {
    if (ctx.options.config) throw error;
    return undefined;
  });
  const topic = config ? topicOf(config, name) : name;
  const bus = await ctx.bus();
  const transport = bus.transport;
  const group = `ew-tail-${randomUUID().slice(0, 8)}`;
  let received = 0;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const print = (text: string) => ctx.io.out(text);

  await transport.ensureGroup(topic, group, 'latest');
  const subscription: TransportSubscription = await transport.subscribe(
    { topic, group, from: 'latest', maxInFlight: 64, ordering: 'none', leaseMs: 60_000 },
    (message) => {
      void (async () => {
        try {
          const envelope = decode(message, { maxBytes: Number.POSITIVE_INFINITY });
          print(ctx.options.json ? `${JSON.stringify(envelope)}\n` : line(envelope));
        } catch (error) {
          const body = bodyText(message.body);
          const problem = {
            undecodable: redact((error as Error).message),
            headers: message.headers,
            body: body.text,
          };
          print(
            ctx.options.json
              ? `${JSON.stringify(problem)}\n`
              : `undecodable message: ${problem.undecodable}\n`,
          );
        }
        await message.ack().catch(() => {});
        received++;
        if (options.count !== undefined && received >= options.count) finish(0);
      })();
    },
  );
  ctx.io.err(`tailing ${topic} through throwaway group ${group} (Ctrl-C to stop)\n`);
  const onSignal = () => finish(0);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const code = await finished;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await subscription.close().catch(() => {});
  if (transport.deleteGroup) {
    await transport.deleteGroup(topic, group).catch((error: unknown) => {
      ctx.io.err(`could not delete throwaway group ${group} on ${topic}: ${(error as Error).message}\n`);
    });
  } else {
    ctx.io.err(
      `note: the ${transport.name} transport cannot delete groups; the throwaway group ${group} on ${topic} remains and can be removed with the broker's tools\n`,
    );
  }
  return code;
}
