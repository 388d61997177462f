import { redact } from './errors.ts';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stderr is a terminal (progress bars). */
  errIsTty: boolean;
  /** stdin is a terminal (confirmation prompts). */
  inIsTty: boolean;
}

export function processIo(): Io {
  return {
    out: (text) => process.stdout.write(redact(text)),
    err: (text) => process.stderr.write(redact(text)),
    errIsTty: !!process.stderr.isTTY,
    inIsTty: !!process.stdin.isTTY,
  };
}

export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** A plain text table with aligned columns. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** A progress bar on stderr when it is a terminal; nothing otherwise. */
export function progress(io: Io, label: string, total: number): { tick(done: number): void; end(): void } {
  if (!io.errIsTty || total < 100) return { tick() {}, end() {} };
  const width = 30;
  const draw = (done: number) => {
    const filled = Math.round((done / total) * width);
    io.err(`\r${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`);
  };
  draw(0);
  return { tick: draw, end: () => io.err('\n') };
}

/** A Uint8Array body as text when it is UTF-8, else base64. */
export function bodyText(body: Uint8Array): { encoding: 'utf8' | 'base64'; text: string } {
  try {
    return { encoding: 'utf8', text: new TextDecoder('utf-8', { fatal: true }).decode(body) };
  } catch {
    return { encoding: 'base64', text: Buffer.from(body).toString('base64') };
  }
}
