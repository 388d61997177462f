import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { dlqList, dlqPurge, dlqReplay, dlqShow } from './commands/dlq.ts';
import { doctor } from './commands/doctor.ts';
import { groupRewind } from './commands/group.ts';
import { publish } from './commands/publish.ts';
import { schemaCheck, schemaExport } from './commands/schema.ts';
import { tail } from './commands/tail.ts';
import { type Context, createContext } from './context.ts';
import { CliError, redact, redactError, UsageError } from './errors.ts';
import { type Io, processIo } from './output.ts';

const GLOBAL_HELP = `Global options:
  --url <url>        broker URL (default: $EVENTWIRE_URL, then \`url\` in the config)
  --config <file>    config file (default: ./eventwire.config.ts, .mts, .js or .mjs)
  --json             machine-readable output on stdout
  -h, --help         help for a command
  -v, --version      print the version of @eventwire/cli`;

const HELP: Record<string, string> = {
  '': `eventwire - operate an eventwire application: dead letters, live traffic, schemas, health

Usage: eventwire <command> [options]

Commands:
  dlq list [--topic t] [--group g]                 count, oldest and grouped reasons per group
  dlq show <id> [--topic t] [--group g]            one dead letter: envelope and failure
  dlq replay (--id <id>... | --all) [--group g] [--topic t] [--dry-run]
                                                   deliver again to the failed group only
  dlq purge [--id <id>... | --all] [--group g] [--topic t] [--yes]
                                                   delete dead letters (asks first)
  tail <topic|type> [--count n] [--group-less]     print events as they arrive
  publish <type> --data '<json>' [--version n] [--subject s] [--key k] [--id id]
                                                   validate and publish one event
  schema export [--format jsonschema|asyncapi] [--out file]
  schema check [--update] [--snapshot file]        fail on breaking schema changes
  doctor [--max-lag n]                             connectivity, topology, lag, dead letters
  group rewind --topic t --group g --to <time|beginning> [--dry-run]
                                                   deliver again every retained event from a time

${GLOBAL_HELP}

Exit status: 0 ok, 1 failure or a check found problems, 2 usage error.
Run \`eventwire <command> --help\` for details.`,
  dlq: `Usage: eventwire dlq <list|show|replay|purge> [options]

Dead letters are kept per (topic, group). The groups come from \`groups\` in the config;
--topic (a topic or event type) and --group narrow the selection.

  dlq list                      count, oldest failure and error reasons grouped, per group
  dlq show <id>                 the envelope and the failure of one dead letter
  dlq replay --id <id> | --all  deliver again, as a first attempt, to the failed group only
           [--dry-run]          show what would be replayed
  dlq purge [--id <id> | --all] delete; asks for confirmation unless --yes
           [--yes]              (without a terminal on stdin, --yes is required)

Options: --topic <name>  --group <name>  --id <id> (repeatable)  --limit <n> (default 100000)

${GLOBAL_HELP}`,
  group: `Usage: eventwire group rewind --topic <topic|type> --group <group> --to <time|beginning> [--dry-run]

The group receives again every retained event of the topic published at or after --to (an ISO
8601 time, e.g. 2026-12-02T09:00:00Z, or "beginning"); other groups are untouched. Stop the
group's consumers first (Kafka refuses to move an active group). --dry-run prints how many events
would be delivered again and moves nothing. Brokers without a log (RabbitMQ, SQS) refuse: exit 1.

${GLOBAL_HELP}`,
  tail: `Usage: eventwire tail <topic|type> [--count n] [--json]

Prints each event published to the topic from now on. It reads through a throwaway group of its
own (ew-tail-<random>, starting at the latest event) and never joins an application group, so
their positions, leases and dead letters are untouched. On exit the throwaway group is deleted
where the transport supports it. --group-less is accepted for clarity; it is the only mode.

  --count <n>   exit after n events (default: run until Ctrl-C)

${GLOBAL_HELP}`,
  publish: `Usage: eventwire publish <type> --data '<json>' [options]

Validates the data against the event definition (the newest version unless --version) and
publishes it; invalid data is rejected with each problem listed and nothing is sent.

  --data <json>      the payload (required)
  --version <n>      publish this version of the type
  --subject <s>      CloudEvents subject (also the default partition key)
  --key <k>          partition key
  --id <id>          event id (default: a new UUIDv7)

${GLOBAL_HELP}`,
  schema: `Usage: eventwire schema <export|check> [options]

  schema export [--format jsonschema|asyncapi] [--out file]
      jsonschema: JSON Schema (2020-12) of each event version's data, in the snapshot shape
      asyncapi:   an AsyncAPI 3.0 document: a channel per topic, a message per event version,
                  a send operation per topic and a receive operation per consumer group
  schema check [--update] [--snapshot file]
      compares the definitions with the committed snapshot (default eventwire.schemas.json next
      to the config) and fails listing each break: removed version, removed field, changed type
      or values, new required field. New optional fields, versions and types pass.
      --update writes the snapshot.

${GLOBAL_HELP}`,
  doctor: `Usage: eventwire doctor [--max-lag n]

Checks the broker connection and, for each configured group: that it exists, its lag and its
dead-letter depth. Exit status 1 when the broker is down, a group is missing, a group has dead
letters, or lag is above --max-lag.

${GLOBAL_HELP}`,
};

const GLOBAL_OPTIONS = {
  url: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const satisfies ParseArgsConfig['options'];

/** This package's version, read from its package.json (one level above `src/` and `dist/`). */
function cliVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

const DLQ_OPTIONS = {
  topic: { type: 'string' },
  group: { type: 'string' },
  id: { type: 'string', multiple: true },
  all: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  limit: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const COMMAND_OPTIONS: Record<string, ParseArgsConfig['options']> = {
  dlq: DLQ_OPTIONS,
  tail: { count: { type: 'string' }, 'group-less': { type: 'boolean' } },
  publish: {
    data: { type: 'string' },
    version: { type: 'string' },
    subject: { type: 'string' },
    key: { type: 'string' },
    id: { type: 'string' },
  },
  schema: {
    format: { type: 'string' },
    out: { type: 'string' },
    update: { type: 'boolean' },
    snapshot: { type: 'string' },
  },
  doctor: { 'max-lag': { type: 'string' } },
  group: {
    topic: { type: 'string' },
    group: { type: 'string' },
    to: { type: 'string' },
    'dry-run': { type: 'boolean' },
  },
};

function positiveInt(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`--${name} must be a non-negative integer, not "${value}"`);
  return n;
}

async function dispatch(
  ctx: Context,
  command: string,
  rest: string[],
  values: Record<string, unknown>,
): Promise<number> {
  switch (command) {
    case 'dlq': {
      const [sub, ...args] = rest;
      const options = {
        topic: values.topic as string | undefined,
        group: values.group as string | undefined,
        id: values.id as string[] | undefined,
        all: values.all as boolean | undefined,
        dryRun: values['dry-run'] as boolean | undefined,
        yes: values.yes as boolean | undefined,
        limit: positiveInt('limit', values.limit),
      };
      const extra = (n: number) => {
        if (args.length > n) throw new UsageError(`unexpected argument "${args[n]}" for dlq ${sub}`);
      };
      switch (sub) {
        case 'list':
          extra(0);
          return dlqList(ctx, options);
        case 'show':
          extra(1);
          return dlqShow(ctx, args[0], options);
        case 'replay':
          extra(0);
          return dlqReplay(ctx, options);
        case 'purge':
          extra(0);
          return dlqPurge(ctx, options);
        default:
          throw new UsageError(
            sub
              ? `unknown dlq command "${sub}": use list, show, replay or purge`
              : 'dlq needs a command: list, show, replay or purge',
          );
      }
    }
    case 'tail':
      if (rest.length > 1) throw new UsageError(`unexpected argument "${rest[1]}" for tail`);
      return tail(ctx, rest[0], {
        count: positiveInt('count', values.count),
        groupLess: values['group-less'] as boolean,
      });
    case 'publish':
      if (rest.length > 1)
        throw new UsageError(`unexpected argument "${rest[1]}" for publish (quote the --data JSON)`);
      return publish(ctx, rest[0], {
        data: values.data as string | undefined,
        version: positiveInt('version', values.version),
        subject: values.subject as string | undefined,
        key: values.key as string | undefined,
        id: values.id as string | undefined,
      });
    case 'schema': {
      const [sub, ...args] = rest;
      if (args.length > 0) throw new UsageError(`unexpected argument "${args[0]}" for schema ${sub}`);
      if (sub === 'export')
        return schemaExport(ctx, { format: values.format as string, out: values.out as string });
      if (sub === 'check')
        return schemaCheck(ctx, { update: values.update as boolean, snapshot: values.snapshot as string });
      throw new UsageError(
        sub
          ? `unknown schema command "${sub}": use export or check`
          : 'schema needs a command: export or check',
      );
    }
    case 'doctor':
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}" for doctor`);
      return doctor(ctx, { maxLag: positiveInt('max-lag', values['max-lag']) });
    case 'group': {
      const [sub, ...args] = rest;
      if (sub !== 'rewind')
        throw new UsageError(
          sub ? `unknown group command "${sub}": use rewind` : 'group needs a command: rewind',
        );
      if (args.length > 0) throw new UsageError(`unexpected argument "${args[0]}" for group rewind`);
      return groupRewind(ctx, {
        topic: values.topic as string | undefined,
        group: values.group as string | undefined,
        to: values.to as string | undefined,
        dryRun: values['dry-run'] as boolean | undefined,
      });
    }
    default:
      throw new UsageError(
        `unknown command "${command}"; commands: dlq, tail, publish, schema, doctor, group`,
      );
  }
}

/** The first positional argument, skipping the values of global string options. */
function commandOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return argv[i + 1];
    if (arg === '--url' || arg === '--config') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/** Runs the CLI with `argv` (without node and the script). Resolves to the exit status. */
export async function run(
  argv: readonly string[],
  io: Io = processIo(),
  env = process.env,
  cwd = process.cwd(),
): Promise<number> {
  const command = commandOf(argv);
  const known = command !== undefined && command in COMMAND_OPTIONS;
  let ctx: Context | undefined;
  let json = argv.includes('--json');
  try {
    const { values, positionals } = (() => {
      try {
        return parseArgs({
          args: [...argv],
          options: { ...GLOBAL_OPTIONS, ...(known ? COMMAND_OPTIONS[command] : {}) },
          allowPositionals: true,
          strict: true,
        });
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    })();
    json = !!values.json;
    // `--version` alone; `publish --version <n>` is the event version (that command's option).
    if (values.version === true && !known) {
      io.out(json ? `${JSON.stringify({ version: cliVersion() })}\n` : `${cliVersion()}\n`);
      return 0;
    }
    if (values.help || positionals.length === 0) {
      io.out(`${HELP[known ? command : ''] ?? HELP['']}\n`);
      return positionals.length === 0 && !values.help ? 2 : 0;
    }
    const [name, ...rest] = positionals;
    ctx = createContext(io, { url: values.url as string, config: values.config as string, json }, env, cwd);
    return await dispatch(ctx, name!, rest, values);
  } catch (error) {
    const e = error as Error;
    const code = error instanceof CliError ? error.exitCode : 1;
    // Our own messages only quote URLs (redacted); anything else may come from a driver.
    const message = error instanceof CliError ? redact(e.message) : redactError(`${e.name}: ${e.message}`);
    if (json) io.err(`${JSON.stringify({ error: message, code })}\n`);
    io.err(`eventwire: ${message}\n`);
    if (code === 2) io.err(`Run \`eventwire ${known ? `${command} ` : ''}--help\` for usage.\n`);
    return code;
  } finally {
    await ctx?.close();
  }
}
