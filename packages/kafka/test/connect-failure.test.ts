/**
 * DESIGN.md section 13, "connect failure cleans up": `createBus` against an unreachable Kafka
 * rejects with a TransportError within the documented bound (connectionTimeoutMs +
 * requestTimeoutMs), and an application that catches it can simply exit. Run in a real child
 * process, since "nothing keeps the process alive" can only be observed from outside it.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const fixture = fileURLToPath(new URL('./fixtures/connect-failure.ts', import.meta.url));

interface Outcome {
  caught: { rejectedMs: number; name: string; code: string; retryable: boolean; message: string };
  /** From spawn to exit, ms. */
  exitedMs: number;
  exitCode: number | null;
}

/** Runs the fixture; fails if the process is still alive after `limitMs`. */
function run(url: string, limitMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--no-warnings', '--conditions=source', fixture, url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the process did not exit within ${limitMs} ms of its start; printed: ${out} ${err}`));
    }, limitMs);
    child.on('exit', (exitCode) => {
      clearTimeout(timer);
      try {
        resolve({
          caught: JSON.parse(out.trim().split('\n').at(-1)!),
          exitedMs: Date.now() - started,
          exitCode,
        });
      } catch {
        reject(new Error(`unexpected output: ${out} ${err}`));
      }
    });
  });
}

describe('kafka createBus against an unreachable cluster', () => {
  let silent: net.Server;
  let port = 0;
  const sockets = new Set<net.Socket>();
  beforeAll(async () => {
    // Accepts connections and never answers: a partition after the TCP handshake.
    silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    port = (silent.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  for (const client of ['platformatic', 'kafkajs']) {
    test(`${client}: connection refused rejects with TransportError, and the process exits by itself`, async () => {
      const { caught, exitedMs, exitCode } = await run(`kafka://127.0.0.1:1?client=${client}`, 30_000);
      expect(caught).toMatchObject({ name: 'TransportError', code: 'EW_TRANSPORT', retryable: true });
      expect(caught.message).toMatch(/^kafka: connecting to 127\.0\.0\.1:1: /);
      expect(caught.rejectedMs).toBeLessThan(5000 + 30_000);
      expect(exitCode).toBe(0);
      expect(exitedMs - caught.rejectedMs).toBeLessThan(10_000);
    });

    test(`${client}: no answer rejects within connectionTimeoutMs + requestTimeoutMs, and the process exits by itself`, async () => {
      const url = `kafka://127.0.0.1:${port}?client=${client}&connectionTimeoutMs=1000&requestTimeoutMs=1000`;
      const { caught, exitedMs, exitCode } = await run(url, 30_000);
      expect(caught).toMatchObject({ name: 'TransportError', code: 'EW_TRANSPORT', retryable: true });
      expect(caught.rejectedMs).toBeGreaterThanOrEqual(1900);
      expect(caught.rejectedMs).toBeLessThan(2000 + 1000);
      expect(exitCode).toBe(0);
      // kafkajs still runs the retries it had scheduled (each refused at once now) before it is quiet.
      expect(exitedMs - caught.rejectedMs).toBeLessThan(10_000);
    });
  }
});
