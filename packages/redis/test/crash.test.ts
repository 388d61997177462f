/**
 * Crash recovery: a consumer process is SIGKILLed while its handlers run. The entries it held
 * stay pending under its name; after the lease (visibility timeout) another consumer takes them
 * over with XAUTOCLAIM. None is lost, and none moves before the lease expires.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { expect, test } from 'vitest';
import { z } from 'zod';
import { describeBroker, REDIS_URL } from '../../../test/support/brokers.ts';
import { redis } from '../src/index.ts';

const script = fileURLToPath(new URL('./crash-consumer.ts', import.meta.url));

/**
 * A child consumer holding 4 events is SIGKILLed; a survivor of the same group must get all 20
 * published events, the 4 held ones only after the lease (`leaseMs`: the child's and the
 * survivor's transports use the same one) and as attempt 2. Resolves with how long after the
 * kill the held events arrived.
 */
async function crashScenario(leaseMs: number | undefined): Promise<number[]> {
  const topic = `ew-crash-${randomUUID().slice(0, 8)}`;
  const group = 'workers';
  const Event = defineEvent({
    type: 'crash.item_recorded',
    version: 1,
    schema: z.object({ n: z.number() }),
    topic,
  });
  const transport = () =>
    redis({ url: REDIS_URL, logger: silentLogger, ...(leaseMs === undefined ? {} : { leaseMs }) });
  const producer = await createBus({ source: 'crash-test', transport: transport(), logger: silentLogger });
  let child: ChildProcess | undefined;
  let survivor: Awaited<ReturnType<typeof createBus>> | undefined;
  try {
    await producer.transport.ensureGroup(topic, group, 'latest');

    const args = [script, REDIS_URL, topic, group, ...(leaseMs === undefined ? [] : [String(leaseMs)])];
    child = spawn(process.execPath, ['--conditions=source', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: string[] = [];
    child
      .stdout!.setEncoding('utf8')
      .on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
    await waitFor(() => lines.includes('ready'), { timeoutMs: 30_000, message: 'child consumer ready' });

    const published = await producer.publishMany(
      Event,
      Array.from({ length: 20 }, (_, n) => ({ data: { n } })),
    );
    const startedInChild = () =>
      new Set(lines.filter((l) => l.startsWith('started ')).map((l) => l.slice(8)));
    await waitFor(() => startedInChild().size === 4, {
      timeoutMs: 30_000,
      message: 'child handlers running',
    });

    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    const inFlight = startedInChild();

    survivor = await createBus({ source: 'crash-test', transport: transport(), logger: silentLogger });
    const seen = new Map<string, { at: number; attempt: number }>();
    const sub = survivor.subscribe(
      Event,
      (event, ctx) => {
        if (!seen.has(event.id)) seen.set(event.id, { at: Date.now(), attempt: ctx.attempt });
      },
      { group, concurrency: 4, timeoutMs: 10_000 },
    );
    await survivor.start();
    await sub.ready;

    await waitFor(() => seen.size === published.length, {
      timeoutMs: 90_000,
      message: () => `${seen.size}/${published.length} received`,
    });
    expect(new Set(seen.keys())).toEqual(new Set(published.map((e) => e.id)));
    const lease = leaseMs ?? 30_000;
    const after: number[] = [];
    for (const id of inFlight) {
      const delivery = seen.get(id)!;
      // Held by the dead consumer: only after its lease (from its last heartbeat, which was
      // at most a third of a lease before the kill) and counted as a second delivery.
      after.push(delivery.at - killedAt);
      expect(delivery.at - killedAt, id).toBeGreaterThanOrEqual(lease - lease / 3 - 100);
      expect(delivery.attempt, id).toBe(2);
    }
    return after;
  } finally {
    child?.kill('SIGKILL');
    await survivor?.close({ drainMs: 0 });
    await producer.close();
  }
}

describeBroker('redis', () => {
  test('a consumer SIGKILLed mid-handler: its events reach another consumer after the lease, none lost', {
    timeout: 120_000,
  }, async () => {
    const after = await crashScenario(undefined);
    // Core's lease (30 s) plus at most one claim interval (a quarter of the lease).
    for (const ms of after) expect(ms).toBeLessThan(30_000 + 7_500 + 2_000);
  });

  test("leaseMs lowers the crash-recovery time: with 2 s, the killed consumer's events are back within seconds", {
    timeout: 60_000,
  }, async () => {
    const after = await crashScenario(2_000);
    // 2 s lease + a claim interval of 1 s (its minimum) + scheduling slack.
    for (const ms of after) expect(ms).toBeLessThan(2_000 + 1_000 + 1_500);
  });
});
