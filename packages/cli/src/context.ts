import { type Bus, createBus, redactUrl, silentLogger } from '@eventwire/core';
import { type LoadedConfig, loadConfig } from './config.ts';
import { CliError, redactError, rememberUrl } from './errors.ts';
import type { Io } from './output.ts';

export interface GlobalOptions {
  url?: string | undefined;
  config?: string | undefined;
  json: boolean;
}

export interface Context {
  io: Io;
  options: GlobalOptions;
  env: NodeJS.ProcessEnv;
  cwd: string;
  config(): Promise<LoadedConfig>;
  /** The broker URL: --url, else EVENTWIRE_URL, else the config's `url`. */
  url(): Promise<string>;
  /** A connected bus; closed by the runner at the end. */
  bus(): Promise<Bus>;
  close(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 15_000;

export function createContext(
  io: Io,
  options: GlobalOptions,
  env = process.env,
  cwd = process.cwd(),
): Context {
  let config: Promise<LoadedConfig> | undefined;
  let bus: Promise<Bus> | undefined;
  rememberUrl(options.url);
  rememberUrl(env.EVENTWIRE_URL);
  const context: Context = {
    io,
    options,
    env,
    cwd,
    config() {
      config ??= loadConfig(options.config, cwd).then((loaded) => {
        rememberUrl(loaded.config.url);
        return loaded;
      });
      return config;
    },
    async url() {
      const url = options.url ?? env.EVENTWIRE_URL ?? (await context.config()).config.url;
      if (!url) {
        throw new CliError(
          'no broker URL: pass --url <url>, set EVENTWIRE_URL, or set `url` in eventwire.config.ts',
        );
      }
      return url;
    },
    bus() {
      bus ??= (async () => {
        const url = await context.url();
        const source = (await context.config().catch(() => undefined))?.config.source ?? 'eventwire-cli';
        return connectBus(url, source);
      })();
      return bus;
    },
    async close() {
      const opened = await bus?.catch(() => undefined);
      await opened?.close({ drainMs: 1000 }).catch(() => {});
    },
  };
  return context;
}

/** createBus with a deadline and an error that names the broker without its credentials. */
export async function connectBus(url: string, source: string): Promise<Bus> {
  rememberUrl(url);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new CliError(`cannot connect to ${safeUrl(url)}: no answer within ${CONNECT_TIMEOUT_MS / 1000} s`),
        ),
      CONNECT_TIMEOUT_MS,
    );
    timer.unref();
  });
  try {
    return await Promise.race([createBus({ url, source, logger: silentLogger }), deadline]);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const e = error as Error & { code?: string };
    if (
      e.name === 'ConfigError' ||
      e.name === 'AdapterNotInstalledError' ||
      e.code === 'EW_CONFIG' ||
      e.code === 'EW_ADAPTER_MISSING'
    ) {
      throw new CliError(redactError(e.message));
    }
    const reason = redactError(e.message || e.code || String(error));
    throw new CliError(`cannot connect to ${safeUrl(url)}: ${reason}`);
  } finally {
    clearTimeout(timer);
  }
}

/** The URL without credentials, for messages. */
export function safeUrl(url: string): string {
  try {
    new URL(url);
    return redactUrl(url);
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
