/**
 * Structured logging. The shape `(fields, message)` is the one pino uses, and `console` accepts
 * it too, so either can be passed as is.
 */
export type LogFn = (fields: Record<string, unknown>, message: string) => void;

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LEVELS)[number];

/** One JSON line per entry on stderr, from `level` up. The default logger, at `warn`. */
export function jsonLogger(level: LogLevel = 'warn'): Logger {
  const min = LEVELS.indexOf(level);
  const at =
    (name: LogLevel): LogFn =>
    (fields, message) => {
      if (LEVELS.indexOf(name) < min) return;
      process.stderr.write(
        `${JSON.stringify({ level: name, time: new Date().toISOString(), msg: message, ...fields })}\n`,
      );
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A logger that adds `fields` to every entry. */
export function withFields(logger: Logger, fields: Record<string, unknown>): Logger {
  return {
    debug: (f, m) => logger.debug({ ...fields, ...f }, m),
    info: (f, m) => logger.info({ ...fields, ...f }, m),
    warn: (f, m) => logger.warn({ ...fields, ...f }, m),
    error: (f, m) => logger.error({ ...fields, ...f }, m),
  };
}

/**
 * Removes credentials from a URL (user info, and query parameters that look like secrets) so it
 * can appear in logs and error messages.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    // One style everywhere (URLs and free text): the whole user info becomes `***`.
    if (parsed.username || parsed.password) {
      parsed.username = '***';
      parsed.password = '';
    }
    for (const key of [...parsed.searchParams.keys()]) {
      if (/pass|secret|token|key|credential/i.test(key)) parsed.searchParams.set(key, '***');
    }
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/** Redacts every URL with user info found in a free text (error messages from client libraries). */
export function redactText(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s@/]+@/gi, '$1***@');
}
