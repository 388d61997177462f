/**
 * DESIGN.md section 13, "connect failure cleans up": `createBus` against a RabbitMQ that cannot
 * be reached rejects with a TransportError within the documented bound (`connectTimeoutMs`,
 * amqplib's socket timeout over the whole handshake), and an application that catches it, even
 * after retrying, can simply exit. Run in a real child process, since "nothing keeps the
 * process alive" can only be observed from outside it. Wrong credentials on the real broker:
 * not retryable, the password masked.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { createBus, TransportError } from '@eventwire/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { describeBroker, RABBITMQ_URL } from '../../../test/support/brokers.ts';

const fixture = fileURLToPath(new URL('./fixtures/connect-failure.ts', import.meta.url));

interface Caught {
  rejectedMs: number;
  name: string;
  code: string;
  retryable: boolean;
  driverCode?: string;
  message: string;
}

/** Runs the fixture; rejects if the process is still alive `limitMs` after it started. */
function run(
  args: string[],
  limitMs: number,
): Promise<{ caught: Caught[]; exitedMs: number; exitCode: number | null }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--conditions=source', fixture, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the process was still alive ${limitMs} ms after it started; printed: ${out} ${err}`));
    }, limitMs);
    child.on('exit', (exitCode) => {
      clearTimeout(timer);
      try {
        const caught = out
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Caught);
        resolve({ caught, exitedMs: Date.now() - started, exitCode });
      } catch {
        reject(new Error(`unexpected output: ${out} ${err}`));
      }
    });
  });
}

/** Accepts connections and never answers: a broker that hangs (or a port nobody speaks AMQP on). */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('rabbitmq createBus against an unreachable broker', () => {
  let silent: Awaited<ReturnType<typeof silentServer>>;
  beforeAll(async () => {
    silent = await silentServer();
  });
  afterAll(() => silent.close());

  test('connection refused, three tries: each a TransportError at once, credentials masked, and the process exits by itself', async () => {
    const { caught, exitedMs, exitCode } = await run(['amqp://someone:hunter2@127.0.0.1:1', '3'], 10_000);
    expect(exitCode).toBe(0);
    expect(caught).toHaveLength(3);
    for (const c of caught) {
      expect(c).toMatchObject({
        name: 'TransportError',
        code: 'EW_TRANSPORT',
        retryable: true,
        driverCode: 'ECONNREFUSED',
      });
      expect(c.message).toMatch(/^rabbitmq: connect \(amqp:\/\/\*\*\*@127\.0\.0\.1:1/);
      expect(c.message).not.toContain('hunter2');
    }
    expect(caught[2]!.rejectedMs).toBeLessThan(3_000);
    expect(exitedMs - caught[2]!.rejectedMs).toBeLessThan(3_000);
  });

  test('no answer: rejects after connectTimeoutMs with ETIMEDOUT, twice, and the process exits by itself', async () => {
    const { caught, exitedMs, exitCode } = await run(
      [`amqp://127.0.0.1:${silent.port}`, '2', '1000'],
      15_000,
    );
    expect(exitCode).toBe(0);
    expect(caught).toHaveLength(2);
    for (const c of caught)
      expect(c).toMatchObject({
        name: 'TransportError',
        code: 'EW_TRANSPORT',
        retryable: true,
        driverCode: 'ETIMEDOUT',
      });
    expect(caught[0]!.rejectedMs).toBeGreaterThanOrEqual(900);
    expect(caught[0]!.rejectedMs).toBeLessThan(2_500);
    expect(caught[1]!.rejectedMs - caught[0]!.rejectedMs).toBeLessThan(2_500);
    expect(exitedMs - caught[1]!.rejectedMs).toBeLessThan(3_000);
  });
});

describeBroker('rabbitmq', () => {
  test('wrong credentials: a non-retryable TransportError with the AMQP reply code 403, password masked', async () => {
    const url = new URL(RABBITMQ_URL);
    url.password = 'hunter2';
    const error = await createBus({ url: url.toString(), source: 't' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ code: 'EW_TRANSPORT', retryable: false, driverCode: '403' });
    expect((error as Error).message).toContain('ACCESS-REFUSED');
    expect((error as Error).message).not.toContain('hunter2');
  });
});
