/**
 * A killed consumer's deliveries come back when their lease ends (DESIGN.md section 13): with
 * core's lease that is 60 s for the default handler timeout; the transport option `leaseMs`
 * lowers it, since a live consumer renews what it holds. The consumer runs in a process of its
 * own, killed with SIGKILL while it holds a delivery.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { requireBroker } from '../../../test/support/brokers.ts';
import { postgres } from '../src/url.ts';
import { message, record } from './queue-helpers.ts';
import { freshSchema, POSTGRES_URL } from './server.ts';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

function consumerProcess(schema: string, leaseMs: number): ChildProcess {
  const child = fork(fileURLToPath(new URL('./fixtures/consumer-child.ts', import.meta.url)), {
    execArgv: ['--conditions=source'],
    env: {
      ...process.env,
      CONSUMER_DB_URL: POSTGRES_URL,
      CONSUMER_SCHEMA: schema,
      LEASE_MS: String(leaseMs),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  return child;
}

const nextMessage = (child: ChildProcess, prefix: string) =>
  new Promise<string>((resolve, reject) => {
    child.on('message', (m) => String(m).startsWith(prefix) && resolve(String(m)));
    child.on('exit', (code) => reject(new Error(`consumer exited with ${code}`)));
  });

const server = await requireBroker('postgres');
const LEASE_MS = 3000;

describe.runIf(server)('crash recovery', () => {
  test('a SIGKILLed consumer: its delivery comes back after the transport leaseMs', async () => {
    const { schema, poolOptions } = await freshSchema('ew_crash');
    const transport = postgres({ url: POSTGRES_URL, poolOptions, pollIntervalMs: 100 });
    await transport.connect();
    await transport.ensureGroup('t', 'g', 'latest');
    const child = consumerProcess(schema, LEASE_MS);
    await nextMessage(child, 'started');
    const got = nextMessage(child, 'got ');
    await transport.publish([message('e1')]);
    expect(await got).toBe('got e1');
    child.kill('SIGKILL');
    const killedAt = performance.now();

    const { nth, subscription } = await record(transport, { leaseMs: 60_000 });
    const redelivered = await nth(1, LEASE_MS + 5000);
    const recoveryMs = performance.now() - killedAt;
    expect(redelivered.headers.id).toBe('e1');
    // The killed consumer's claim counted its attempt: it may have run the handler.
    expect(redelivered.attempt).toBe(2);
    expect(recoveryMs).toBeLessThan(LEASE_MS + 1500);
    await redelivered.ack();
    await subscription.close();
    await transport.close();
  });
});
