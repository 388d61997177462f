import { createBus } from '@eventwire/core';
import { beforeAll, expect, it } from 'vitest';
import { consumeFor, order, seedDeadLetters } from './dlq-scenario.ts';
import {
  cli,
  cliInProcess,
  cliOnTty,
  cliProcess,
  fixtureConfig,
  hasScript,
  parsed,
  tailInProcess,
} from './harness.ts';

export interface OperationsTarget {
  /** A fresh broker URL for this run. */
  url: () => string;
  /** The CLI and the test process can have the broker open at the same time (not PGlite). */
  concurrent: boolean;
  /** Topic suffix (FIXTURE_TOPIC_SUFFIX), for a shared server. */
  suffix: string;
  /** Run the CLI's `run()` in the test process instead of the binary (the `memory:` broker). */
  inProcess?: boolean;
}

/**
 * dlq list/show/replay/purge, doctor, publish and tail through the real binary, against one
 * broker. Tests run in order and share the seeded dead letters.
 */
/** Each test starts several CLI processes; PGlite takes seconds to open on a busy machine. */
const TIMEOUT = 240_000;

export function operationsTests(target: OperationsTarget): void {
  let url = '';
  let ids: string[] = [];
  const env = () => ({ EVENTWIRE_URL: url, FIXTURE_TOPIC_SUFFIX: target.suffix });
  const run = (...args: string[]) =>
    (target.inProcess ? cliInProcess : cli)(['--config', fixtureConfig, ...args], { env: env() });
  const startTail = (...args: string[]) =>
    (target.inProcess ? tailInProcess : cliProcess)(['--config', fixtureConfig, 'tail', ...args], {
      env: env(),
    });
  const topic = `order.placed${target.suffix}`;

  beforeAll(async () => {
    process.env.FIXTURE_TOPIC_SUFFIX = target.suffix;
    url = target.url();
    ({ ids } = await seedDeadLetters(url, 3));
  }, TIMEOUT);

  it(
    'dlq list: count, oldest and grouped reasons per group',
    async () => {
      const result = await run('dlq', 'list', '--json');
      expect(result.code, result.stderr).toBe(0);
      const out = parsed(result);
      expect(out.total).toBe(3);
      const email = out.groups.find((g: any) => g.group === 'email');
      expect(email).toMatchObject({ topic, count: 3, oldestId: expect.any(String) });
      expect(email.oldest).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(email.reasons).toEqual([
        { reason: 'non_retryable', error: 'NonRetryableError', message: 'smtp down', count: 3 },
      ]);
      expect(out.groups.find((g: any) => g.group === 'analytics').count).toBe(0);

      const human = await run('dlq', 'list', '--group', 'email');
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/TOPIC\s+GROUP\s+DEAD/);
      expect(human.stdout).toContain('3x non_retryable (NonRetryableError: smtp down)');
      expect(human.stdout).not.toContain('analytics');
    },
    TIMEOUT,
  );

  it(
    'dlq show: the envelope and the failure',
    async () => {
      const list = parsed(await run('dlq', 'list', '--json', '--group', 'email'));
      const id = list.groups[0].oldestId;
      const result = await run('dlq', 'show', id, '--json');
      expect(result.code, result.stderr).toBe(0);
      const shown = parsed(result);
      expect(shown).toMatchObject({
        id,
        topic,
        group: 'email',
        reason: 'non_retryable',
        attempts: 1,
        error: { name: 'NonRetryableError', message: 'smtp down' },
        envelope: { id: ids[0], type: 'order.placed', version: 1, data: order(1), subject: 'o-1' },
      });
      const human = await run('dlq', 'show', id);
      expect(human.stdout).toContain(`dead letter ${id}  topic ${topic}  group email`);
      expect(human.stdout).toContain('error:          NonRetryableError');
      expect(human.stdout).toContain(ids[0]!);
    },
    TIMEOUT,
  );

  it(
    'dlq: unknown id, group or topic give clear errors',
    async () => {
      const missing = await run('dlq', 'show', '999999999');
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('no dead letter with id "999999999"');
      const group = await run('dlq', 'list', '--group', 'nope');
      expect(group.code).toBe(1);
      expect(group.stderr).toContain('unknown group "nope"');
      expect(group.stderr).toContain('email, analytics, welcome');
      const topicError = await run('dlq', 'list', '--topic', 'nope.happened');
      expect(topicError.code).toBe(1);
      expect(topicError.stderr).toContain('unknown topic or event type "nope.happened"');
      const usage = await run('dlq', 'replay');
      expect(usage.code).toBe(2);
      expect(usage.stderr).toContain('--id <id> (repeatable) or --all');
    },
    TIMEOUT,
  );

  it(
    'doctor: non-zero exit while a group has dead letters',
    async () => {
      const result = await run('doctor', '--json');
      expect(result.code).toBe(1);
      const out = parsed(result);
      expect(out.ok).toBe(false);
      expect(out.broker.status).toBe('up');
      expect(out.groups.find((g: any) => g.group === 'email')).toMatchObject({
        deadLetters: 3,
        problems: ['3 dead letters'],
      });
      expect(out.groups.find((g: any) => g.group === 'analytics')).toMatchObject({
        deadLetters: 0,
        lag: 0,
        problems: [],
      });
      const human = await run('doctor');
      expect(human.code).toBe(1);
      expect(human.stdout).toMatch(/TOPIC\s+GROUP\s+GROUP EXISTS\s+LAG\s+DELAYED\s+DEAD LETTERS\s+STATUS/);
      expect(human.stdout).toContain('FAIL: 3 dead letters');
      expect(human.stdout).toContain('problems found');
    },
    TIMEOUT,
  );

  it(
    'dlq replay --dry-run changes nothing',
    async () => {
      const result = await run('dlq', 'replay', '--all', '--dry-run', '--json');
      expect(result.code, result.stderr).toBe(0);
      expect(parsed(result)).toMatchObject({ dryRun: true, total: 3 });
      expect(parsed(await run('dlq', 'list', '--json')).total).toBe(3);
    },
    TIMEOUT,
  );

  it(
    'dlq replay: only the failed group handles the replayed event',
    async () => {
      const list = parsed(await run('dlq', 'list', '--json', '--group', 'email'));
      const id = list.groups[0].oldestId;
      const result = await run('dlq', 'replay', '--group', 'email', '--id', id, '--json');
      expect(result.code, result.stderr).toBe(0);
      expect(parsed(result)).toMatchObject({
        dryRun: false,
        total: 1,
        groups: [{ group: 'email', count: 1, ids: [id] }],
      });
      const seen = await consumeFor(url, 15_000, (s) => s.email.length >= 1);
      expect(seen.email).toEqual([ids[0]]);
      expect(seen.analytics).toEqual([]);
      expect(parsed(await run('dlq', 'list', '--json')).total).toBe(2);
    },
    TIMEOUT,
  );

  it(
    'dlq purge: refuses without a terminal or --yes, then purges with --yes',
    async () => {
      const refused = await run('dlq', 'purge', '--group', 'email');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        'refusing to purge without confirmation: stdin is not a terminal; pass --yes',
      );
      expect(parsed(await run('dlq', 'list', '--json')).total).toBe(2);
      if (hasScript && target.concurrent && !target.inProcess) {
        // On a terminal it asks; anything but y/yes cancels.
        const cancelled = await cliOnTty(
          ['--config', fixtureConfig, 'dlq', 'purge', '--group', 'email'],
          'n\n',
          { env: env() },
        );
        expect(cancelled.code, cancelled.stdout).toBe(1);
        expect(cancelled.stdout).toContain(
          `Delete 2 dead letters (${topic}/email: 2)? This cannot be undone. [y/N]`,
        );
        expect(cancelled.stdout).toContain('purge cancelled');
        expect(parsed(await run('dlq', 'list', '--json')).total).toBe(2);
      }
      const purged = await run('dlq', 'purge', '--group', 'email', '--yes', '--json');
      expect(purged.code, purged.stderr).toBe(0);
      expect(parsed(purged)).toMatchObject({ total: 2, groups: [{ group: 'email', count: 2 }] });
      expect(parsed(await run('dlq', 'list', '--json')).total).toBe(0);
      const again = await run('dlq', 'purge', '--yes');
      expect(again.stdout).toContain('nothing to purge');
    },
    TIMEOUT,
  );

  it(
    'doctor: exit 0 when every group is healthy',
    async () => {
      const result = await run('doctor');
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toContain('all good');
    },
    TIMEOUT,
  );

  it(
    'publish: a valid event reaches the groups',
    async () => {
      const data = { orderId: 'o-99', total: { cents: 990, currency: 'EUR' } };
      const result = await run(
        'publish',
        'order.placed',
        '--data',
        JSON.stringify(data),
        '--subject',
        'o-99',
        '--json',
      );
      expect(result.code, result.stderr).toBe(0);
      const { envelope } = parsed(result);
      expect(envelope).toMatchObject({
        type: 'order.placed',
        version: 2,
        source: 'cli-fixture',
        subject: 'o-99',
        data,
      });
      const seen = await consumeFor(url, 15_000, (s) => s.analytics.length >= 1 && s.email.length >= 1);
      expect(seen.analytics).toEqual([envelope.id]);
      expect(seen.email).toEqual([envelope.id]);
    },
    TIMEOUT,
  );

  it(
    'publish: an invalid payload is rejected, listing each problem, and nothing is sent',
    async () => {
      const result = await run(
        'publish',
        'order.placed',
        '--version',
        '1',
        '--data',
        '{"orderId":42,"currency":"GBP"}',
      );
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('invalid order.placed v1 data, nothing was published');
      expect(result.stderr).toMatch(/orderId: .*string/i);
      expect(result.stderr).toContain('totalCents:');
      expect(result.stderr).toContain('currency:');
      const notJson = await run('publish', 'order.placed', '--data', '{oops');
      expect(notJson.code).toBe(1);
      expect(notJson.stderr).toContain('--data is not valid JSON');
      const unknown = await run('publish', 'order.shipped', '--data', '{}');
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain(
        'unknown event type "order.shipped"; known types: order.placed, user.signed_up',
      );
      const version = await run('publish', 'order.placed', '--version', '7', '--data', '{}');
      expect(version.stderr).toContain('order.placed has no version 7; known versions: 1, 2');
      const seen = await consumeFor(url, 1500);
      expect(seen).toEqual({ email: [], analytics: [] });
    },
    TIMEOUT,
  );

  it.runIf(target.concurrent)(
    'tail: prints an event published while it runs, without disturbing any group',
    async () => {
      const tail = startTail('order.placed', '--json', '--count', '1');
      await tail.ready;
      const { OrderPlaced } = await import('./fixtures/app/events.ts');
      const bus = await createBus({ url, source: 'cli-test' });
      const published = await bus.publish(OrderPlaced, order(7), { subject: 'o-7' });
      await bus.close();
      const code = await Promise.race([
        tail.exited,
        new Promise<number>((r) => setTimeout(() => r(-1), 20_000)),
      ]);
      if (code === -1) tail.child.kill('SIGINT');
      expect(code, tail.stderr).toBe(0);
      const line = JSON.parse(tail.stdout.trim().split('\n')[0]!);
      expect(line).toMatchObject({ id: published.id, type: 'order.placed', version: 1, data: order(7) });
      expect(tail.stderr).toMatch(/throwaway group ew-tail-[0-9a-f]{8}/);
      // The application groups still get the event, as if nobody had looked.
      const seen = await consumeFor(url, 15_000, (s) => s.analytics.length >= 1 && s.email.length >= 1);
      expect(seen).toEqual({ email: [published.id], analytics: [published.id] });
      expect(parsed(await run('dlq', 'list', '--json')).total).toBe(0);
    },
  );

  it.runIf(target.concurrent && !target.inProcess)(
    'tail: human output and stop on SIGINT',
    async () => {
      const tail = startTail('order.placed');
      await tail.ready;
      const { OrderPlaced } = await import('./fixtures/app/events.ts');
      const bus = await createBus({ url, source: 'cli-test' });
      const published = await bus.publish(OrderPlaced, order(8), { subject: 'o-8' });
      await bus.close();
      const deadline = Date.now() + 15_000;
      while (!tail.stdout.includes(published.id) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      tail.child.kill('SIGINT');
      expect(await tail.exited).toBe(0);
      expect(tail.stdout).toContain(`order.placed v1 ${published.id} subject=o-8 {"orderId":"o-8"`);
      await consumeFor(url, 15_000, (s) => s.analytics.length >= 1 && s.email.length >= 1);
    },
    TIMEOUT,
  );
}
