import { redactText } from '@eventwire/core';

/** An error the CLI reports as one clear line, with an exit code (1 = failure, 2 = usage). */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, 2);
  }
}

const secrets = new Set<string>();

/** Remembers the password of a broker URL so that no output ever shows it, even in a driver's message. */
export function rememberUrl(url: string | undefined): void {
  if (!url) return;
  try {
    const parsed = new URL(url);
    if (parsed.password) {
      secrets.add(parsed.password);
      secrets.add(decodeURIComponent(parsed.password));
    }
  } catch {
    // not a URL: nothing to hide
  }
}

/** Removes credentials from what we print: `user:pass@` in URLs. */
export function redact(text: string): string {
  return redactText(text);
}

/**
 * For error messages from drivers, which may quote a password outside a URL: also replaces every
 * remembered password.
 */
export function redactError(text: string): string {
  let out = redactText(text);
  for (const secret of secrets) if (secret.length >= 3) out = out.split(secret).join('***');
  return out;
}
