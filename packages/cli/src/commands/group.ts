import { UnsupportedError } from '@eventwire/core';
import { topicOf } from '../config.ts';
import type { Context } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import { json } from '../output.ts';

export interface RewindOptions {
  topic?: string | undefined;
  group?: string | undefined;
  to?: string | undefined;
  dryRun?: boolean | undefined;
}

/** `--to`: `beginning`, or a time `Date` parses (ISO 8601 recommended). */
function parseTo(value: string | undefined): Date | 'beginning' {
  if (!value) throw new UsageError('group rewind needs --to <time|beginning>');
  if (value === 'beginning') return value;
  const at = new Date(value);
  if (!Number.isFinite(at.getTime()))
    throw new UsageError(`--to must be an ISO 8601 time or "beginning", not "${value}"`);
  return at;
}

/** `eventwire group rewind`: the group receives again every retained event from `--to` on. */
export async function groupRewind(ctx: Context, options: RewindOptions): Promise<number> {
  if (!options.topic) throw new UsageError('group rewind needs --topic <topic|type>');
  if (!options.group) throw new UsageError('group rewind needs --group <group>');
  const to = parseTo(options.to);
  const config = await ctx.config();
  const topic = topicOf(config, options.topic);
  const definition = config.topics.get(topic)![0]!;
  const bus = await ctx.bus();
  const dryRun = options.dryRun ?? false;
  let count: number;
  try {
    count = await bus.rewind(definition, options.group, { to, dryRun });
  } catch (error) {
    if (error instanceof UnsupportedError) throw new CliError(error.message);
    throw error;
  }
  const when = to === 'beginning' ? 'the beginning' : to.toISOString();
  if (ctx.options.json) {
    ctx.io.out(json({ topic, group: options.group, to: to === 'beginning' ? to : when, dryRun, count }));
    return 0;
  }
  ctx.io.out(
    dryRun
      ? `${topic}/${options.group}: ${count} events from ${when} would be delivered again (dry run, nothing moved)\n`
      : `${topic}/${options.group}: rewound to ${when}; ${count} events will be delivered again\n`,
  );
  return 0;
}
