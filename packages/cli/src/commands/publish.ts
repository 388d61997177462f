import { definitionOf } from '../config.ts';
import type { Context } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import { json } from '../output.ts';

export interface PublishCliOptions {
  data?: string | undefined;
  version?: number | undefined;
  subject?: string | undefined;
  key?: string | undefined;
  id?: string | undefined;
}

/** Validates the data against the definition (nothing is sent when it is invalid), then publishes. */
export async function publish(
  ctx: Context,
  type: string | undefined,
  options: PublishCliOptions,
): Promise<number> {
  if (!type) throw new UsageError("publish needs an event type: eventwire publish <type> --data '<json>'");
  if (options.data === undefined) throw new UsageError(`publish needs the payload: --data '<json>'`);
  const config = await ctx.config();
  const definition = definitionOf(config, type, options.version);
  let data: unknown;
  try {
    data = JSON.parse(options.data);
  } catch (error) {
    throw new CliError(`--data is not valid JSON: ${(error as Error).message}`);
  }
  try {
    definition.parse(data);
  } catch (error) {
    const e = error as Error & { issues?: { path: string; message: string }[] };
    const issues = e.issues?.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n');
    throw new CliError(
      `invalid ${definition.type} v${definition.version} data, nothing was published:\n${issues || `  ${e.message}`}`,
    );
  }
  const bus = await ctx.bus();
  const envelope = await bus.publish(definition, data, {
    ...(options.subject === undefined ? {} : { subject: options.subject }),
    ...(options.key === undefined ? {} : { key: options.key }),
    ...(options.id === undefined ? {} : { id: options.id }),
  });
  if (ctx.options.json) ctx.io.out(json({ published: true, topic: definition.topic, envelope }));
  else ctx.io.out(`published ${envelope.type} v${envelope.version} ${envelope.id} to ${definition.topic}\n`);
  return 0;
}
