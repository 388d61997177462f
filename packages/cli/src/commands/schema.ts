import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { asyncApiDocument } from '../asyncapi.ts';
import type { Context } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import { json } from '../output.ts';
import { checkSchemas, type SchemaSnapshot, snapshotOf } from '../schemas.ts';

export const SNAPSHOT_NAME = 'eventwire.schemas.json';

export async function schemaExport(
  ctx: Context,
  options: { format?: string | undefined; out?: string | undefined },
): Promise<number> {
  const format = options.format ?? 'jsonschema';
  if (format !== 'jsonschema' && format !== 'asyncapi') {
    throw new UsageError(`unknown --format "${format}": use jsonschema or asyncapi`);
  }
  const config = await ctx.config();
  const events = [...config.topics.values()].flat();
  const document =
    format === 'jsonschema'
      ? snapshotOf(events)
      : asyncApiDocument({
          title: config.config.info?.title ?? config.config.source ?? 'eventwire application',
          version: config.config.info?.version ?? '1.0.0',
          ...(config.config.info?.description ? { description: config.config.info.description } : {}),
          topics: config.topics,
          groups: config.groups,
        });
  if (options.out) {
    const path = isAbsolute(options.out) ? options.out : resolve(ctx.cwd, options.out);
    writeFileSync(path, json(document));
    ctx.io.err(`wrote ${format} to ${options.out}\n`);
  } else {
    ctx.io.out(json(document));
  }
  return 0;
}

export async function schemaCheck(
  ctx: Context,
  options: { snapshot?: string | undefined; update?: boolean | undefined },
): Promise<number> {
  const config = await ctx.config();
  const path = options.snapshot
    ? isAbsolute(options.snapshot)
      ? options.snapshot
      : resolve(ctx.cwd, options.snapshot)
    : join(config.dir, SNAPSHOT_NAME);
  const shown = relative(ctx.cwd, path) || path;
  const current = snapshotOf([...config.topics.values()].flat());
  let snapshot: SchemaSnapshot | undefined;
  if (existsSync(path)) {
    try {
      snapshot = JSON.parse(readFileSync(path, 'utf8')) as SchemaSnapshot;
      if (!snapshot || typeof snapshot.events !== 'object') throw new Error('no "events" object');
    } catch (error) {
      throw new CliError(`${shown} is not a schema snapshot: ${(error as Error).message}`);
    }
  }
  const result = snapshot ? checkSchemas(snapshot, current) : { breaks: [], additions: [] };
  if (options.update) {
    writeFileSync(path, json(current));
    if (ctx.options.json) {
      ctx.io.out(json({ ok: true, updated: shown, breaks: result.breaks, additions: result.additions }));
    } else {
      for (const b of result.breaks) ctx.io.out(`accepted break: ${b.message}\n`);
      ctx.io.out(
        `${snapshot ? 'updated' : 'created'} ${shown} (${Object.keys(current.events).length} event types)\n`,
      );
    }
    return 0;
  }
  if (!snapshot) {
    throw new CliError(
      `no schema snapshot at ${shown}: create it with \`eventwire schema check --update\` and commit it`,
    );
  }
  const ok = result.breaks.length === 0;
  if (ctx.options.json) {
    ctx.io.out(json({ ok, snapshot: shown, breaks: result.breaks, additions: result.additions }));
    return ok ? 0 : 1;
  }
  for (const a of result.additions) ctx.io.out(`compatible: ${a.message}\n`);
  if (ok) {
    ctx.io.out(`schemas are compatible with ${shown}\n`);
    return 0;
  }
  ctx.io.out(
    `${result.breaks.length} breaking change${result.breaks.length === 1 ? '' : 's'} against ${shown}:\n`,
  );
  for (const b of result.breaks) ctx.io.out(`  BREAK ${b.kind}: ${b.message}\n`);
  ctx.io.out(
    'publish the change as a new event version (defineEvent({ version: n + 1, from: ... })), or accept it with `eventwire schema check --update`\n',
  );
  return 1;
}
