import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EventDefinition } from '@eventwire/core';
import { CliError } from './errors.ts';

/**
 * What `eventwire.config.ts` exports (as its default export, or as `export const config`).
 *
 * ```ts
 * import { defineConfig } from '@eventwire/cli';
 * import { OrderPlaced, OrderPlacedV2 } from './src/events.ts';
 *
 * export default defineConfig({
 *   source: 'checkout',
 *   events: [OrderPlaced, OrderPlacedV2],
 *   groups: { 'order.placed': ['email', 'analytics'] },
 * });
 * ```
 */
export interface EventwireConfig {
  /** Every event definition of the app, all versions. */
  events: readonly EventDefinition<any>[];
  /**
   * Consumer groups per topic. A key is a topic name or an event type (which stands for its
   * topic). Used by `dlq`, `doctor` and the AsyncAPI document.
   */
  groups?: Readonly<Record<string, readonly string[]>>;
  /** The CloudEvents `source` of events published by `eventwire publish`. Default `eventwire-cli`. */
  source?: string;
  /** Broker URL, used when neither `--url` nor `EVENTWIRE_URL` is given. */
  url?: string;
  /** Title and version of the AsyncAPI document. Default: `source` and `1.0.0`. */
  info?: { title?: string; version?: string; description?: string };
}

/** Typed identity helper for `eventwire.config.ts`. It also checks the shape early. */
export function defineConfig(config: EventwireConfig): EventwireConfig {
  return config;
}

/** A loaded config with its topics and groups resolved. */
export interface LoadedConfig {
  config: EventwireConfig;
  /** Absolute path of the config file. */
  path: string;
  /** Directory of the config file (the snapshot lives next to it). */
  dir: string;
  /** topic -> definitions on it, every version. */
  topics: Map<string, EventDefinition<any>[]>;
  /** topic -> groups. */
  groups: Map<string, string[]>;
}

export const CONFIG_NAMES = [
  'eventwire.config.ts',
  'eventwire.config.mts',
  'eventwire.config.js',
  'eventwire.config.mjs',
];

export function findConfig(explicit: string | undefined, cwd = process.cwd()): string {
  if (explicit) {
    const path = isAbsolute(explicit) ? explicit : resolve(cwd, explicit);
    if (!existsSync(path)) throw new CliError(`config file not found: ${explicit}`);
    return path;
  }
  for (const name of CONFIG_NAMES) {
    const path = join(cwd, name);
    if (existsSync(path)) return path;
  }
  throw new CliError(
    `no config file: expected one of ${CONFIG_NAMES.join(', ')} in ${cwd} (or pass --config <file>)`,
  );
}

export async function loadConfig(explicit: string | undefined, cwd = process.cwd()): Promise<LoadedConfig> {
  const path = findConfig(explicit, cwd);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw new CliError(`cannot load ${path}: ${(error as Error).message}`);
  }
  const config = (module.default ?? module.config) as EventwireConfig | undefined;
  return { ...resolveConfig(config, path), path, dir: dirname(path) };
}

function isDefinition(value: unknown): value is EventDefinition<any> {
  const d = value as EventDefinition<any> | undefined;
  return (
    !!d &&
    typeof d.type === 'string' &&
    typeof d.version === 'number' &&
    typeof d.topic === 'string' &&
    typeof d.parse === 'function' &&
    typeof d.jsonSchema === 'function'
  );
}

/** Checks the shape and resolves topics and groups. Pure; exported for tests. */
export function resolveConfig(
  config: EventwireConfig | undefined,
  path = 'config',
): Omit<LoadedConfig, 'path' | 'dir'> {
  if (!config || typeof config !== 'object') {
    throw new CliError(`${path} must export the config as default (export default defineConfig({ ... }))`);
  }
  if (!Array.isArray(config.events))
    throw new CliError(`${path}: \`events\` must be an array of event definitions`);
  const topics = new Map<string, EventDefinition<any>[]>();
  const seen = new Set<string>();
  config.events.forEach((d, i) => {
    if (!isDefinition(d))
      throw new CliError(`${path}: events[${i}] is not an event definition (made with defineEvent)`);
    const id = `${d.type}@${d.version}`;
    if (seen.has(id)) throw new CliError(`${path}: ${d.type} v${d.version} is listed twice`);
    seen.add(id);
    const list = topics.get(d.topic) ?? [];
    list.push(d);
    topics.set(d.topic, list);
  });
  const groups = new Map<string, string[]>();
  for (const [key, names] of Object.entries(config.groups ?? {})) {
    const topic = topics.has(key) ? key : config.events.find((d) => d.type === key)?.topic;
    if (!topic) {
      throw new CliError(`${path}: groups["${key}"] names no topic or event type of \`events\``);
    }
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || !n)) {
      throw new CliError(`${path}: groups["${key}"] must be an array of group names`);
    }
    const list = groups.get(topic) ?? [];
    for (const name of names) if (!list.includes(name)) list.push(name);
    groups.set(topic, list);
  }
  return { config, topics, groups };
}

/** Finds the topic for a topic name or an event type. */
export function topicOf(loaded: Pick<LoadedConfig, 'topics'>, name: string): string {
  if (loaded.topics.has(name)) return name;
  for (const [topic, defs] of loaded.topics) if (defs.some((d) => d.type === name)) return topic;
  const known = [...loaded.topics.keys()].join(', ') || '(none)';
  throw new CliError(`unknown topic or event type "${name}"; known topics: ${known}`);
}

/** The newest version of a type, or the given version. */
export function definitionOf(
  loaded: Pick<LoadedConfig, 'topics'>,
  type: string,
  version?: number,
): EventDefinition<any> {
  const all = [...loaded.topics.values()].flat().filter((d) => d.type === type);
  if (all.length === 0) {
    const known = [...new Set([...loaded.topics.values()].flat().map((d) => d.type))].join(', ') || '(none)';
    throw new CliError(`unknown event type "${type}"; known types: ${known}`);
  }
  if (version === undefined) return all.reduce((a, b) => (b.version > a.version ? b : a));
  const found = all.find((d) => d.version === version);
  if (!found) {
    throw new CliError(
      `${type} has no version ${version}; known versions: ${all.map((d) => d.version).join(', ')}`,
    );
  }
  return found;
}

/** (topic, group) pairs from the config, filtered by --topic / --group. Unknown names are errors. */
export function groupPairs(
  loaded: Pick<LoadedConfig, 'topics' | 'groups'>,
  filter: { topic?: string | undefined; group?: string | undefined },
): { topic: string; group: string }[] {
  const topic = filter.topic === undefined ? undefined : topicOf(loaded, filter.topic);
  const pairs: { topic: string; group: string }[] = [];
  for (const [t, groups] of loaded.groups) {
    if (topic !== undefined && t !== topic) continue;
    for (const g of groups)
      if (filter.group === undefined || g === filter.group) pairs.push({ topic: t, group: g });
  }
  if (filter.group !== undefined && pairs.length === 0) {
    const known = [...new Set([...loaded.groups.values()].flat())].join(', ') || '(none)';
    throw new CliError(
      `unknown group "${filter.group}"${topic ? ` on topic ${topic}` : ''}; groups in the config: ${known}`,
    );
  }
  return pairs;
}
