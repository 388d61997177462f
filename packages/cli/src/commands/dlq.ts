import { createInterface } from 'node:readline/promises';
import type { Bus, DeadLetterRecord, DeadLetters, EventDefinition } from '@eventwire/core';
import { groupPairs, type LoadedConfig } from '../config.ts';
import type { Context } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import { bodyText, json, progress, table } from '../output.ts';

/** Enough to count and group a large dead-letter set; `--limit` raises it. */
const DEFAULT_LIMIT = 100_000;
const REPLAY_CHUNK = 500;

export interface DlqOptions {
  topic?: string | undefined;
  group?: string | undefined;
  id?: string[] | undefined;
  all?: boolean | undefined;
  dryRun?: boolean | undefined;
  yes?: boolean | undefined;
  limit?: number | undefined;
}

interface Target {
  topic: string;
  group: string;
  store: DeadLetters;
}

function definitionFor(config: LoadedConfig, topic: string): EventDefinition<any> {
  return config.topics.get(topic)![0]!;
}

async function targets(ctx: Context, options: DlqOptions): Promise<{ bus: Bus; targets: Target[] }> {
  const config = await ctx.config();
  const pairs = groupPairs(config, options);
  if (pairs.length === 0) {
    throw new CliError(
      options.topic
        ? `no groups configured for ${options.topic}: add them to \`groups\` in ${config.path}`
        : `no groups configured: add \`groups: { topic: [group, ...] }\` to ${config.path}`,
    );
  }
  const bus = await ctx.bus();
  return {
    bus,
    targets: pairs.map(({ topic, group }) => ({
      topic,
      group,
      store: bus.deadLetters(definitionFor(config, topic), group),
    })),
  };
}

function reasonKey(r: DeadLetterRecord): string {
  const message = r.error.message.split('\n')[0]!.slice(0, 120);
  return `${r.reason}\u0000${r.error.name}\u0000${message}`;
}

export async function dlqList(ctx: Context, options: DlqOptions): Promise<number> {
  const { targets: list } = await targets(ctx, options);
  const limit = options.limit ?? DEFAULT_LIMIT;
  const groups = [];
  for (const t of list) {
    const records = await t.store.list({ limit });
    const reasons = new Map<string, { reason: string; error: string; message: string; count: number }>();
    for (const r of records) {
      const key = reasonKey(r);
      const entry = reasons.get(key);
      if (entry) entry.count++;
      else {
        const [reason, error, message] = key.split('\u0000') as [string, string, string];
        reasons.set(key, { reason, error, message, count: 1 });
      }
    }
    const times = records.map((r) => r.lastFailedAt).sort();
    const firsts = records.map((r) => r.firstFailedAt).sort();
    groups.push({
      topic: t.topic,
      group: t.group,
      count: records.length,
      ...(records.length >= limit ? { truncated: true } : {}),
      oldest: firsts[0] ?? null,
      newest: times.at(-1) ?? null,
      oldestId: records[0]?.id ?? null,
      reasons: [...reasons.values()].sort((a, b) => b.count - a.count),
    });
  }
  const total = groups.reduce((n, g) => n + g.count, 0);
  if (ctx.options.json) {
    ctx.io.out(json({ total, groups }));
    return 0;
  }
  const rows = groups.map((g) => [
    g.topic,
    g.group,
    `${g.count}${g.truncated ? '+' : ''}`,
    g.oldest ?? '-',
    g.reasons.map((r) => `${r.count}x ${r.reason} (${r.error}: ${r.message})`).join('; ') || '-',
  ]);
  ctx.io.out(table(['TOPIC', 'GROUP', 'DEAD', 'OLDEST FAILURE', 'REASONS'], rows));
  ctx.io.out(`${total} dead letter${total === 1 ? '' : 's'}\n`);
  return 0;
}

function describe(t: Target, r: DeadLetterRecord) {
  const body = bodyText(r.message.body);
  return {
    id: r.id,
    topic: t.topic,
    group: t.group,
    reason: r.reason,
    error: r.error,
    attempts: r.attempts,
    firstFailedAt: r.firstFailedAt,
    lastFailedAt: r.lastFailedAt,
    envelope: r.envelope ?? null,
    message: { headers: r.message.headers, body: body.text, bodyEncoding: body.encoding },
  };
}

export async function dlqShow(ctx: Context, id: string | undefined, options: DlqOptions): Promise<number> {
  if (!id) throw new UsageError('dlq show needs the dead letter id: eventwire dlq show <id>');
  const { targets: list } = await targets(ctx, options);
  const found: ReturnType<typeof describe>[] = [];
  for (const t of list) {
    const record = (await t.store.list({ limit: options.limit ?? DEFAULT_LIMIT })).find((r) => r.id === id);
    if (record) found.push(describe(t, record));
  }
  if (found.length === 0) {
    throw new CliError(
      `no dead letter with id "${id}" in ${list.map((t) => `${t.topic}/${t.group}`).join(', ')}`,
    );
  }
  if (ctx.options.json) {
    ctx.io.out(json(found.length === 1 ? found[0] : found));
    return 0;
  }
  for (const d of found) {
    const lines = [
      `dead letter ${d.id}  topic ${d.topic}  group ${d.group}`,
      `reason:         ${d.reason}`,
      `error:          ${d.error.name}${d.error.code ? ` [${d.error.code}]` : ''}: ${d.error.message}`,
      `attempts:       ${d.attempts}`,
      `first failure:  ${d.firstFailedAt}`,
      `last failure:   ${d.lastFailedAt}`,
    ];
    if (d.error.stack) lines.push('stack:', ...d.error.stack.split('\n').map((l) => `  ${l}`));
    if (d.envelope)
      lines.push(
        'envelope:',
        ...JSON.stringify(d.envelope, null, 2)
          .split('\n')
          .map((l) => `  ${l}`),
      );
    else
      lines.push(
        `raw message (undecodable): headers ${JSON.stringify(d.message.headers)}`,
        `  body (${d.message.bodyEncoding}): ${d.message.body}`,
      );
    ctx.io.out(`${lines.join('\n')}\n\n`);
  }
  return 0;
}

/** The entries each target would act on: the given ids (where they exist) or all of them. */
async function selection(t: Target, options: DlqOptions): Promise<string[]> {
  const records = await t.store.list({ limit: options.limit ?? DEFAULT_LIMIT });
  const ids = records.map((r) => r.id);
  if (options.id) return ids.filter((id) => options.id!.includes(id));
  return ids;
}

export async function dlqReplay(ctx: Context, options: DlqOptions): Promise<number> {
  if (!options.all && !options.id?.length) {
    throw new UsageError('dlq replay needs --id <id> (repeatable) or --all');
  }
  if (options.all && options.id?.length) throw new UsageError('dlq replay takes --id or --all, not both');
  const { targets: list } = await targets(ctx, options);
  const plan = [];
  for (const t of list) {
    const ids = await selection(t, options);
    if (ids.length > 0) plan.push({ target: t, ids });
  }
  const total = plan.reduce((n, p) => n + p.ids.length, 0);
  if (options.id && total === 0) {
    throw new CliError(`no dead letter with id ${options.id.join(', ')} in the selected groups`);
  }
  const result = [];
  if (!options.dryRun) {
    const bar = ctx.options.json
      ? progress({ ...ctx.io, errIsTty: false }, '', 0)
      : progress(ctx.io, 'replaying', total);
    let done = 0;
    for (const { target, ids } of plan) {
      let replayed = 0;
      for (let i = 0; i < ids.length; i += REPLAY_CHUNK) {
        const chunk = ids.slice(i, i + REPLAY_CHUNK);
        replayed += await target.store.replay(chunk);
        done += chunk.length;
        bar.tick(done);
      }
      result.push({ topic: target.topic, group: target.group, count: replayed, ids });
    }
    bar.end();
  } else {
    for (const { target, ids } of plan)
      result.push({ topic: target.topic, group: target.group, count: ids.length, ids });
  }
  const replayed = result.reduce((n, r) => n + r.count, 0);
  if (ctx.options.json) {
    ctx.io.out(json({ dryRun: !!options.dryRun, total: replayed, groups: result }));
    return 0;
  }
  if (result.length === 0) {
    ctx.io.out('nothing to replay\n');
    return 0;
  }
  for (const r of result) {
    ctx.io.out(
      `${options.dryRun ? 'would replay' : 'replayed'} ${r.count} dead letter${r.count === 1 ? '' : 's'} of ${r.topic} to group ${r.group} only\n`,
    );
  }
  return 0;
}

async function confirm(ctx: Context, question: string): Promise<boolean> {
  if (!ctx.io.inIsTty) {
    throw new CliError(
      'refusing to purge without confirmation: stdin is not a terminal; pass --yes to purge anyway',
    );
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export async function dlqPurge(ctx: Context, options: DlqOptions): Promise<number> {
  if (options.all && options.id?.length) throw new UsageError('dlq purge takes --id or --all, not both');
  const { targets: list } = await targets(ctx, options);
  const plan = [];
  for (const t of list) {
    const ids = await selection(t, options);
    if (ids.length > 0) plan.push({ target: t, ids });
  }
  const total = plan.reduce((n, p) => n + p.ids.length, 0);
  if (total === 0) {
    if (options.id)
      throw new CliError(`no dead letter with id ${options.id.join(', ')} in the selected groups`);
    if (ctx.options.json) ctx.io.out(json({ total: 0, groups: [] }));
    else ctx.io.out('nothing to purge\n');
    return 0;
  }
  if (!options.yes) {
    const what = plan.map((p) => `${p.target.topic}/${p.target.group}: ${p.ids.length}`).join(', ');
    const ok = await confirm(
      ctx,
      `Delete ${total} dead letter${total === 1 ? '' : 's'} (${what})? This cannot be undone.`,
    );
    if (!ok) {
      ctx.io.err('purge cancelled\n');
      return 1;
    }
  }
  const result = [];
  for (const { target, ids } of plan) {
    let purged = 0;
    for (let i = 0; i < ids.length; i += REPLAY_CHUNK)
      purged += await target.store.purge(ids.slice(i, i + REPLAY_CHUNK));
    result.push({ topic: target.topic, group: target.group, count: purged });
  }
  const purged = result.reduce((n, r) => n + r.count, 0);
  if (ctx.options.json) ctx.io.out(json({ total: purged, groups: result }));
  else
    for (const r of result)
      ctx.io.out(`purged ${r.count} dead letter${r.count === 1 ? '' : 's'} of ${r.topic}/${r.group}\n`);
  return 0;
}
