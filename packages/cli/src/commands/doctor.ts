import { groupPairs } from '../config.ts';
import { type Context, safeUrl } from '../context.ts';
import { CliError, redactError } from '../errors.ts';
import { json, table } from '../output.ts';

interface Row {
  topic: string;
  group: string;
  groupExists: boolean | null;
  lag: number | null;
  /** Held for a later delivery time (delayed publishes and retries), where the broker tells. */
  delayed: number | null;
  deadLetters: number | null;
  problems: string[];
}

/**
 * Connectivity, topology, lag and dead-letter depth per configured group. Exit 1 when the broker
 * is down, a group is missing, a group has dead letters, or lag is above `--max-lag`.
 */
export async function doctor(ctx: Context, options: { maxLag?: number | undefined }): Promise<number> {
  const config = await ctx.config();
  const pairs = groupPairs(config, {});
  const url = await ctx.url();
  const warnings = knownLimitations(url);
  let broker: { url: string; transport?: string; status: 'up' | 'down'; reason?: string } | undefined;
  const bus = await ctx.bus().catch((error: unknown) => {
    const message = error instanceof CliError ? error.message : String(error);
    broker = {
      url: safeUrl(url),
      status: 'down',
      reason: redactError(message.replace(/^cannot connect to \S+: /, '')),
    };
    return undefined;
  });
  const rows: Row[] = [];
  if (bus) {
    const health = await bus.transport
      .health()
      .catch((error: unknown) => ({ status: 'down' as const, reason: String(error) }));
    broker = { url: safeUrl(url), transport: bus.transport.name, status: health.status };
    if (health.reason) broker.reason = redactError(health.reason);
    if (health.status === 'up') {
      const t = bus.transport;
      const known = new Map<string, Promise<string[] | undefined>>();
      for (const { topic, group } of pairs) {
        const problems: string[] = [];
        if (!known.has(topic))
          known.set(
            topic,
            t.listGroups ? t.listGroups(topic).catch(() => undefined) : Promise.resolve(undefined),
          );
        const groups = await known.get(topic)!;
        const groupExists = groups ? groups.includes(group) : null;
        if (groupExists === false) problems.push('group missing (start its consumer once)');
        const lag = (await t.lag?.(topic, group).catch(() => undefined)) ?? null;
        if (lag !== null && options.maxLag !== undefined && lag > options.maxLag)
          problems.push(`lag ${lag} > ${options.maxLag}`);
        const delayed = (await t.delayed?.(topic, group).catch(() => undefined)) ?? null;
        const dead = await t.deadLetters.list(topic, group, { limit: 100_000 }).then(
          (r) => r.length,
          () => null,
        );
        if (dead) problems.push(`${dead} dead letter${dead === 1 ? '' : 's'}`);
        rows.push({ topic, group, groupExists, lag, delayed, deadLetters: dead, problems });
      }
    }
  }
  broker ??= { url: safeUrl(url), status: 'down' };
  const ok = broker.status === 'up' && rows.every((r) => r.problems.length === 0);
  if (ctx.options.json) {
    ctx.io.out(json({ ok, broker, groups: rows, warnings }));
    return ok ? 0 : 1;
  }
  const mark = (good: boolean) => (good ? 'ok ' : 'FAIL');
  ctx.io.out(
    `${mark(broker.status === 'up')} broker ${broker.url}${broker.transport ? ` (${broker.transport})` : ''}: ${broker.status}${broker.reason ? ` - ${broker.reason}` : ''}\n`,
  );
  if (broker.status === 'up') {
    if (rows.length === 0) ctx.io.out('no groups configured: add `groups` to the config to check them\n');
    else {
      ctx.io.out('\n');
      ctx.io.out(
        table(
          ['TOPIC', 'GROUP', 'GROUP EXISTS', 'LAG', 'DELAYED', 'DEAD LETTERS', 'STATUS'],
          rows.map((r) => [
            r.topic,
            r.group,
            r.groupExists === null ? 'unknown' : r.groupExists ? 'yes' : 'NO',
            r.lag === null ? '-' : String(r.lag),
            r.delayed === null ? '-' : String(r.delayed),
            r.deadLetters === null ? '-' : String(r.deadLetters),
            r.problems.length ? `FAIL: ${r.problems.join(', ')}` : 'ok',
          ]),
        ),
      );
    }
  }
  for (const warning of warnings) ctx.io.out(`\nWARN ${warning}\n`);
  ctx.io.out(ok ? '\nall good\n' : '\nproblems found\n');
  return ok ? 0 : 1;
}

/**
 * Configurations with a known, measured defect (docs/reliability.md). A warning, not a failure:
 * the setup works, but not with the guarantees of the others.
 */
function knownLimitations(url: string): string[] {
  const warnings: string[] = [];
  if (/^kafka:/i.test(url) && /[?&]client=kafkajs(&|$)/i.test(url)) {
    warnings.push(
      'the kafkajs client loses a few acknowledged events across connection resets and broker restarts (5-6 of 2,000 in the fault suite) and has no publish bound during a silent partition; use the default client (@platformatic/kafka), see docs/reliability.md',
    );
  }
  return warnings;
}
