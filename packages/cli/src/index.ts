export { type AsyncApiOptions, asyncApiDocument } from './asyncapi.ts';
export {
  defineConfig,
  type EventwireConfig,
  type LoadedConfig,
  loadConfig,
  resolveConfig,
} from './config.ts';
export { CliError, UsageError } from './errors.ts';
export { run } from './main.ts';
export {
  type BreakKind,
  type CheckResult,
  checkSchemas,
  type JsonSchema,
  type SchemaBreak,
  type SchemaChange,
  type SchemaSnapshot,
  snapshotOf,
} from './schemas.ts';
