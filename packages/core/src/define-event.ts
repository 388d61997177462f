import { z } from 'zod';
import { ConfigError, UnknownVersionError, ValidationError } from './errors.ts';

const TYPE_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

/** An older version and the function that lifts its data to this version. */
export interface UpcastFrom<Previous extends EventDefinition<any>, T> {
  event: Previous;
  upcast: (data: DataOf<Previous>) => T;
}

export interface EventDefinitionInput<S extends z.ZodType, P extends EventDefinition<any> | undefined> {
  /** Lower-case dotted, past tense: `order.placed`. */
  type: string;
  /** Integer >= 1. Removing or retyping a field is a new version. */
  version: number;
  /** zod v4 schema of `data`. Unknown fields are tolerated on read (tolerant reader). */
  schema: S;
  /** Default partition key from the data, e.g. `(d) => d.orderId`. Falls back to `subject`. */
  key?: (data: z.output<S>) => string;
  /** Destination name; defaults to `type`. Types that need one order share a topic. */
  topic?: string;
  /** The previous version and how to upcast from it; chains reach back to version 1. */
  from?: P extends EventDefinition<any> ? UpcastFrom<P, z.input<S>> : never;
}

/** A typed, versioned event definition. Create with {@link defineEvent}. */
export interface EventDefinition<T = unknown> {
  readonly type: string;
  readonly version: number;
  readonly topic: string;
  readonly schema: z.ZodType<T>;
  readonly key?: (data: T) => string;
  /** Versions this definition can read, newest first (itself, then its upcast chain). */
  readonly readableVersions: readonly number[];
  /** Validates `data` against this version. Throws {@link ValidationError}. */
  parse(data: unknown): T;
  /**
   * Turns data of any readable version into this version: validate against the old schema,
   * upcast step by step, validate against this one. Throws {@link UnknownVersionError} for
   * versions outside the chain, {@link ValidationError} for bad data.
   */
  read(version: number, data: unknown): T;
  /** JSON Schema (draft 2020-12) of this version's data. */
  jsonSchema(): Record<string, unknown>;
}

/** The data type of a definition. */
export type DataOf<D> = D extends EventDefinition<infer T> ? T : never;

/** Defines a versioned event type. See DESIGN.md section 4. */
export function defineEvent<S extends z.ZodType, P extends EventDefinition<any> | undefined = undefined>(
  input: EventDefinitionInput<S, P>,
): EventDefinition<z.output<S>> {
  const { type, version, schema, key, from } = input;
  if (!TYPE_PATTERN.test(type)) {
    throw new ConfigError(`event type "${type}" must be lower-case and dotted, e.g. "order.placed"`);
  }
  if (!Number.isInteger(version) || version < 1)
    throw new ConfigError(`${type}: version must be an integer >= 1`);
  if (from) {
    if (from.event.type !== type)
      throw new ConfigError(`${type} v${version} cannot upcast from ${from.event.type}`);
    if (from.event.version >= version) {
      throw new ConfigError(
        `${type} v${version} can only upcast from a lower version, not v${from.event.version}`,
      );
    }
  }
  const topic = input.topic ?? (from ? from.event.topic : type);
  const readableVersions = [version, ...(from ? from.event.readableVersions : [])];

  const parse = (data: unknown): z.output<S> => {
    const result = schema.safeParse(data);
    if (result.success) return result.data;
    const issues = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    const summary = issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
    throw new ValidationError(`${type} v${version} data is invalid: ${summary}`, issues, result.error);
  };

  const definition: EventDefinition<z.output<S>> = {
    type,
    version,
    topic,
    schema: schema as z.ZodType<z.output<S>>,
    readableVersions,
    parse,
    read(dataVersion, data) {
      if (dataVersion === version) return parse(data);
      if (!from || dataVersion > version) throw new UnknownVersionError(type, dataVersion, readableVersions);
      return parse(from.upcast(from.event.read(dataVersion, data)));
    },
    jsonSchema: () =>
      z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>,
  };
  if (key) (definition as { key?: (d: z.output<S>) => string }).key = key;
  return definition;
}
