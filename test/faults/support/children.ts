/**
 * Child processes of the crash faults (see child.ts): spawn, follow their stdout lines, kill -9.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@eventwire/testing';
import type { ChildConfig } from './child.ts';

const childScript = fileURLToPath(new URL('./child.ts', import.meta.url));

export class Child {
  readonly config: ChildConfig;
  readonly process: ChildProcess;
  readonly started = new Set<string>();
  /** ids in the order their handler finished (consumer) or their publish resolved (publisher). */
  readonly done: string[] = [];
  readonly rejected: string[] = [];
  ready = false;
  finished = false;
  exited = false;
  stderr = '';
  /** Called for each `h`/`r` line with the id. */
  onDone?: (id: string) => void;

  constructor(config: ChildConfig) {
    this.config = config;
    this.process = spawn(process.execPath, ['--conditions=source', childScript, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    this.process.on('exit', () => {
      this.exited = true;
    });
    this.process.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      const [kind, id, code] = line.split(' ');
      if (kind === 'ready') this.ready = true;
      else if (kind === 'done') this.finished = true;
      else if (kind === 's') this.started.add(id!);
      else if (kind === 'h' || kind === 'r') {
        this.done.push(id!);
        this.onDone?.(id!);
      } else if (kind === 'x') this.rejected.push(`${id} ${code}`);
    });
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** ids whose handler started and never reported finishing. */
  inFlight(): string[] {
    const done = new Set(this.done);
    return [...this.started].filter((id) => !done.has(id));
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    await waitFor(() => this.ready || this.exited, {
      timeoutMs,
      message: () => `child ${this.config.role} not ready; stderr: ${this.stderr}`,
    });
    if (!this.ready) throw new Error(`child ${this.config.role} exited before ready: ${this.stderr}`);
  }

  /** SIGKILL, and resolves once the process is gone (so no more lines arrive). */
  async kill9(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.process.once('close', () => resolve()));
    process.kill(this.pid, 'SIGKILL');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
  }

  /** Asks it to close (stdin end); SIGKILL when it has not exited within `ms`. */
  async stop(ms = 5_000): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.process.once('close', () => resolve()));
    this.process.stdin!.end();
    const timer = setTimeout(() => {
      if (!this.exited) process.kill(this.pid, 'SIGKILL');
    }, ms);
    await Promise.race([gone, new Promise((r) => setTimeout(r, ms + 5_000))]);
    clearTimeout(timer);
  }
}
