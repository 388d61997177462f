/**
 * DESIGN.md section 13, "connect failure cleans up": `createBus` against a NATS server that
 * cannot be reached rejects with a TransportError within the documented bound
 * (`connectTimeoutMs`), and an application that catches it, even after retrying, can simply
 * exit. Run in a real child process, since "nothing keeps the process alive" can only be
 * observed from outside it. The server that accepts and never answers is the case the NATS
 * client itself leaks a socket on (see src/probe.ts).
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

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

/** Accepts connections and never answers: a server that hangs (or a port nobody speaks NATS on). */
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

describe('nats createBus against an unreachable server', () => {
  let silent: Awaited<ReturnType<typeof silentServer>>;
  beforeAll(async () => {
    silent = await silentServer();
  });
  afterAll(() => silent.close());

  test('connection refused, three tries: each a TransportError at once, credentials masked, and the process exits by itself', async () => {
    const { caught, exitedMs, exitCode } = await run(['nats://someone:hunter2@127.0.0.1:1', '3'], 10_000);
    expect(exitCode).toBe(0);
    expect(caught).toHaveLength(3);
    for (const c of caught) {
      expect(c).toMatchObject({
        name: 'TransportError',
        code: 'EW_TRANSPORT',
        retryable: true,
        driverCode: 'ECONNREFUSED',
      });
      expect(c.message).toMatch(/^nats: connect \(nats:\/\/127\.0\.0\.1:1\)/);
      expect(c.message).not.toContain('hunter2');
    }
    expect(caught[2]!.rejectedMs).toBeLessThan(3_000);
    expect(exitedMs - caught[2]!.rejectedMs).toBeLessThan(3_000);
  });

  test('no answer: rejects after connectTimeoutMs with ETIMEDOUT, twice, and the process exits by itself', async () => {
    const { caught, exitedMs, exitCode } = await run(
      [`nats://127.0.0.1:${silent.port}?connectTimeoutMs=1000`, '2'],
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
