/**
 * DESIGN.md section 13, "connect failure cleans up": `createBus` against an unreachable SNS/SQS
 * endpoint rejects with a TransportError within the documented bound, and an application that
 * catches it can simply exit. Run in a real child process, since "nothing keeps the process
 * alive" can only be observed from outside it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { silentServer } from './network.ts';

const fixture = fileURLToPath(new URL('./fixtures/connect-failure.ts', import.meta.url));

interface Outcome {
  /** What the child printed: the error it caught. */
  caught: { rejectedMs: number; name: string; code: string; retryable: boolean; message: string };
  /** From spawn to exit, ms. */
  exitedMs: number;
  exitCode: number | null;
}

/** Runs the fixture; fails if the process is still alive after `limitMs`. */
function run(url: string, limitMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--conditions=source', fixture, url], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // No credentials from the environment needed: an endpoint override falls back to test/test.
      env: { ...process.env, AWS_EC2_METADATA_DISABLED: 'true' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the process did not exit within ${limitMs} ms after start; printed: ${out} ${err}`));
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

describe('sns-sqs createBus against an unreachable endpoint', () => {
  let silent: Awaited<ReturnType<typeof silentServer>>;
  beforeAll(async () => {
    silent = await silentServer();
  });
  afterAll(() => silent.close());

  test('connection refused: rejects with TransportError at once, and the process exits by itself', async () => {
    const { caught, exitedMs, exitCode } = await run(
      'sns-sqs://us-east-1?endpoint=http://127.0.0.1:1',
      20_000,
    );
    expect(caught).toMatchObject({ name: 'TransportError', code: 'EW_TRANSPORT', retryable: true });
    expect(caught.rejectedMs).toBeLessThan(5000);
    expect(exitCode).toBe(0);
    // Exit follows the rejection: nothing (socket, timer, retry loop) holds the event loop.
    expect(exitedMs - caught.rejectedMs).toBeLessThan(5000);
  });

  test('no answer: rejects within requestTimeoutMs, and the process exits by itself', async () => {
    const url = `sns-sqs://us-east-1?endpoint=http://127.0.0.1:${silent.port}&requestTimeoutMs=500`;
    const { caught, exitedMs, exitCode } = await run(url, 20_000);
    expect(caught).toMatchObject({ name: 'TransportError', code: 'EW_TRANSPORT', retryable: true });
    expect(caught.rejectedMs).toBeGreaterThanOrEqual(500);
    expect(caught.rejectedMs).toBeLessThan(500 + 700);
    expect(caught.message).toMatch(/no answer from http:\/\/127\.0\.0\.1:\d+ within 500 ms/);
    expect(exitCode).toBe(0);
    expect(exitedMs - caught.rejectedMs).toBeLessThan(5000);
  });
});
