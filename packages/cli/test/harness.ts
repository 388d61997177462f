import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
export const fixtureDir = fileURLToPath(new URL('./fixtures/app', import.meta.url));
export const fixtureConfig = join(fixtureDir, 'eventwire.config.ts');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
}

/** Runs the real `eventwire` binary from source as a subprocess. */
export function cli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...options.env };
    // The parent's URL must never leak into a test that checks the "no URL" error.
    if (!options.env || !('EVENTWIRE_URL' in options.env)) delete env.EVENTWIRE_URL;
    const child = execFile(
      process.execPath,
      ['--conditions=source', '--no-warnings', bin, ...args],
      {
        cwd: options.cwd ?? repoRoot,
        env,
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Parses `--json` stdout, with the whole result in the message when it is not JSON. */
export function parsed<T = any>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${result.code}):\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
  }
}

/** A long-running CLI (tail): resolves `ready` when stderr says it is tailing. */
export function cliProcess(args: readonly string[], options: CliOptions = {}) {
  const env = { ...process.env, ...options.env };
  const child = spawn(process.execPath, ['--conditions=source', '--no-warnings', bin, ...args], {
    cwd: options.cwd ?? repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => {
    stdout += c;
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (c) => {
      stderr += c;
      if (stderr.includes('tailing ')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before ready:\n${stderr}`)));
  });
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
  ready.catch(() => {});
  return {
    child,
    ready,
    exited,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}

export function tempDir(prefix = 'ew-cli-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** util-linux `script` gives the CLI a pseudo-terminal on stdin, for the purge prompt. */
export const hasScript = existsSync('/usr/bin/script');

const shellQuote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/** Runs the binary on a pseudo-terminal, typing `input`. */
export function cliOnTty(
  args: readonly string[],
  input: string,
  options: CliOptions = {},
): Promise<CliResult> {
  const command = [process.execPath, '--conditions=source', '--no-warnings', bin, ...args]
    .map(shellQuote)
    .join(' ');
  return new Promise((resolve) => {
    const child = execFile(
      '/usr/bin/script',
      ['-qec', command, '/dev/null'],
      {
        cwd: options.cwd ?? repoRoot,
        env: { ...process.env, ...options.env },
        timeout: options.timeoutMs ?? 60_000,
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(input);
  });
}

/**
 * Runs the CLI's `run()` in this process, for the in-process `memory:` broker (which a separate
 * process cannot share). Same argv, same exit status and output as the binary.
 */
export async function cliInProcess(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const { run } = await import('../src/main.ts');
  let stdout = '';
  let stderr = '';
  const io = {
    out: (t: string) => {
      stdout += t;
    },
    err: (t: string) => {
      stderr += t;
    },
    errIsTty: false,
    inIsTty: false,
  };
  const code = await run(args, io, { ...process.env, ...options.env }, options.cwd ?? repoRoot);
  return { code, stdout, stderr };
}

/** `tail` run in this process (memory broker): same shape as {@link cliProcess}. */
export function tailInProcess(args: readonly string[], options: CliOptions = {}) {
  let stdout = '';
  let stderr = '';
  let isReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    isReady = resolve;
  });
  const io = {
    out: (t: string) => {
      stdout += t;
    },
    err: (t: string) => {
      stderr += t;
      if (stderr.includes('tailing ')) isReady();
    },
    errIsTty: false,
    inIsTty: false,
  };
  const exited = import('../src/main.ts').then(({ run }) =>
    run(args, io, { ...process.env, ...options.env }, options.cwd ?? repoRoot),
  );
  return {
    ready,
    exited,
    // No signals in the test process: in-process tails stop with --count.
    child: { kill: (_signal?: string) => {} },
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}
