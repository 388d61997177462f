/**
 * A child process running `script` (TypeScript, `--conditions=source`) with one JSON argument,
 * that reports on stdout one line each: `<kind> [<id>] [...]`. Used by the PGlite crash faults
 * (pglite-child.ts); the other brokers' children are children.ts / child.ts.
 *
 * Kinds it keeps: `ready`, `done`; `s <id>` handler started, `h <id>` handler finished, `r <id>`
 * publish resolved, `x <id> <code>` publish rejected; every other kind is kept by name in `lines`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { until } from './ledger.ts';

export class LineChild {
  readonly process: ChildProcess;
  readonly started = new Set<string>();
  /** ids in the order their handler finished (`h`). */
  readonly handled: string[] = [];
  /** ids in the order their publish resolved (`r`). */
  readonly resolved: string[] = [];
  readonly rejected: string[] = [];
  /** Other kinds: kind -> the rest of each line. */
  readonly lines = new Map<string, string[]>();
  /** The kind of the last line read. */
  last = '';
  ready = false;
  readyAt: number | undefined;
  finished = false;
  exited = false;
  exitCode: number | null = null;
  stderr = '';
  readonly spawnedAt = Date.now();
  /** Called for each `h` line. */
  onHandled?: (id: string) => void;

  readonly name: string;

  constructor(name: string, script: string, config: unknown) {
    this.name = name;
    this.process = spawn(process.execPath, ['--conditions=source', script, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    this.process.on('exit', (code) => {
      this.exited = true;
      this.exitCode = code;
    });
    this.process.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      const [kind = '', id, ...rest] = line.split(' ');
      this.last = kind;
      if (kind === 'ready') {
        this.ready = true;
        this.readyAt = Date.now();
      } else if (kind === 'done') this.finished = true;
      else if (kind === 's') this.started.add(id!);
      else if (kind === 'h') {
        this.handled.push(id!);
        this.onHandled?.(id!);
      } else if (kind === 'r') this.resolved.push(id!);
      else if (kind === 'x') this.rejected.push(`${id} ${rest.join(' ')}`);
      else {
        const list = this.lines.get(kind) ?? [];
        this.lines.set(kind, list);
        list.push([id, ...rest].filter((p) => p !== undefined).join(' '));
      }
    });
  }

  get pid(): number {
    return this.process.pid!;
  }

  count(kind: string): number {
    return this.lines.get(kind)?.length ?? 0;
  }

  /** ids whose handler started and never reported finishing. */
  inFlight(): string[] {
    const done = new Set(this.handled);
    return [...this.started].filter((id) => !done.has(id));
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    await until(() => this.ready || this.exited, timeoutMs, 10);
    if (!this.ready)
      throw new Error(
        `${this.name} ${this.exited ? `exited (${this.exitCode})` : 'not ready'} after ${Date.now() - this.spawnedAt} ms; stderr: ${this.stderr}`,
      );
  }

  /** SIGKILL, and resolves once the process is gone (so no more lines arrive). */
  async kill9(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.process.once('close', () => resolve()));
    process.kill(this.pid, 'SIGKILL');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
  }

  /** Asks it to close (stdin end); SIGKILL when it has not exited within `ms`. Resolves whether it exited by itself. */
  async stop(ms = 10_000): Promise<boolean> {
    if (this.exited) return this.exitCode === 0;
    const gone = new Promise<void>((resolve) => this.process.once('close', () => resolve()));
    this.process.stdin!.end();
    const clean = await until(() => this.exited, ms, 10);
    if (!clean) await this.kill9();
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
    return clean && this.exitCode === 0;
  }
}
