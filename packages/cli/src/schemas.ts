import type { EventDefinition } from '@eventwire/core';

/**
 * The schema snapshot (`eventwire.schemas.json`) and the `jsonschema` export share one shape:
 * JSON Schema (draft 2020-12) of each event's data, per type and version.
 */
export interface SchemaSnapshot {
  $comment?: string;
  events: Record<string, Record<string, { topic: string; schema: JsonSchema }>>;
}

export type JsonSchema = Record<string, unknown>;

export function snapshotOf(definitions: readonly EventDefinition<any>[]): SchemaSnapshot {
  const events: SchemaSnapshot['events'] = {};
  const sorted = [...definitions].sort((a, b) => a.type.localeCompare(b.type) || a.version - b.version);
  for (const d of sorted) {
    events[d.type] ??= {};
    events[d.type]![String(d.version)] = { topic: d.topic, schema: d.jsonSchema() };
  }
  return {
    $comment:
      'eventwire schema snapshot: JSON Schema of each event version. Update with `eventwire schema check --update`.',
    events,
  };
}

export type BreakKind =
  | 'removed_version'
  | 'removed_field'
  | 'changed_type'
  | 'new_required_field'
  | 'changed_values';

export interface SchemaBreak {
  kind: BreakKind;
  type: string;
  version: number;
  /** Dotted path of the field (`customer.email`, `items[].sku`); empty for the whole event. */
  path: string;
  message: string;
}

export interface SchemaChange {
  type: string;
  version: number;
  path: string;
  message: string;
}

export interface CheckResult {
  breaks: SchemaBreak[];
  /** Compatible changes, for information: new types, versions and optional fields. */
  additions: SchemaChange[];
}

/**
 * Compares the current schemas with the committed snapshot. A break is anything that makes an
 * already published version mean something else: a removed version, a removed field, a changed
 * type or set of values, a new required field (or a field that became required). Adding an
 * optional field, a new version or a new type is compatible.
 */
export function checkSchemas(snapshot: SchemaSnapshot, current: SchemaSnapshot): CheckResult {
  const breaks: SchemaBreak[] = [];
  const additions: SchemaChange[] = [];
  for (const [type, versions] of Object.entries(snapshot.events ?? {})) {
    for (const [v, before] of Object.entries(versions)) {
      const version = Number(v);
      const after = current.events[type]?.[v];
      if (!after) {
        breaks.push({
          kind: 'removed_version',
          type,
          version,
          path: '',
          message: `${type} v${version}: version removed (events of it may still be in flight or stored)`,
        });
        continue;
      }
      const root = { type, version, breaks, additions, rootOld: before.schema, rootNew: after.schema };
      compare(root, before.schema, after.schema, '');
    }
  }
  for (const [type, versions] of Object.entries(current.events)) {
    for (const v of Object.keys(versions)) {
      if (!snapshot.events?.[type]?.[v]) {
        additions.push({
          type,
          version: Number(v),
          path: '',
          message: `${type} v${v}: new ${snapshot.events?.[type] ? 'version' : 'event type'}`,
        });
      }
    }
  }
  return { breaks, additions };
}

interface Ctx {
  type: string;
  version: number;
  breaks: SchemaBreak[];
  additions: SchemaChange[];
  rootOld: JsonSchema;
  rootNew: JsonSchema;
}

const label = (path: string) => (path ? `field "${path}"` : 'data');

function deref(schema: unknown, root: JsonSchema, depth = 0): JsonSchema {
  const s = (schema ?? {}) as JsonSchema;
  const ref = s.$ref;
  if (typeof ref !== 'string' || depth > 20 || !ref.startsWith('#')) return s;
  let target: unknown = root;
  for (const part of ref.slice(1).split('/').filter(Boolean)) {
    target = (target as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return deref(target, root, depth + 1);
}

/** The alternatives of a union (`anyOf`/`oneOf`), else the schema itself. */
function variants(schema: JsonSchema, root: JsonSchema): JsonSchema[] {
  const list = (schema.anyOf ?? schema.oneOf) as unknown[] | undefined;
  if (Array.isArray(list)) return list.flatMap((s) => variants(deref(s, root), root));
  return [schema];
}

function typesOf(schema: JsonSchema, root: JsonSchema): string[] {
  const out = new Set<string>();
  for (const v of variants(schema, root)) {
    const t = v.type;
    if (typeof t === 'string') out.add(t === 'integer' ? 'integer' : t);
    else if (Array.isArray(t)) for (const x of t) out.add(String(x));
    else if ('const' in v)
      out.add(v.const === null ? 'null' : typeof v.const === 'object' ? 'object' : typeof v.const);
    else if (Array.isArray(v.enum)) for (const e of v.enum) out.add(e === null ? 'null' : typeof e);
    else if (v.properties) out.add('object');
    else if (v.items || v.prefixItems) out.add('array');
    else out.add('any');
  }
  return [...out].sort();
}

function valuesOf(schema: JsonSchema, root: JsonSchema): string[] | undefined {
  const values: string[] = [];
  for (const v of variants(schema, root)) {
    if ('const' in v) values.push(JSON.stringify(v.const));
    else if (Array.isArray(v.enum)) values.push(...v.enum.map((e) => JSON.stringify(e)));
    else if (v.type !== 'null') return undefined;
  }
  return values.length > 0 ? values.sort() : undefined;
}

function objectPart(schema: JsonSchema, root: JsonSchema): JsonSchema | undefined {
  return variants(schema, root).find((v) => v.type === 'object' || v.properties);
}

function arrayPart(schema: JsonSchema, root: JsonSchema): JsonSchema | undefined {
  return variants(schema, root).find((v) => v.type === 'array' || v.items);
}

function compare(ctx: Ctx, oldRaw: unknown, newRaw: unknown, path: string): void {
  const a = deref(oldRaw, ctx.rootOld);
  const b = deref(newRaw, ctx.rootNew);
  const push = (kind: BreakKind, message: string) =>
    ctx.breaks.push({
      kind,
      type: ctx.type,
      version: ctx.version,
      path,
      message: `${ctx.type} v${ctx.version}: ${message}`,
    });

  const ta = typesOf(a, ctx.rootOld);
  const tb = typesOf(b, ctx.rootNew);
  // `any` on either side (unrepresentable, unknown) accepts everything: compare only known types.
  const numeric = (t: string[]) => t.map((x) => (x === 'integer' ? 'number' : x));
  if (!ta.includes('any') && !tb.includes('any') && ta.join('|') !== tb.join('|')) {
    const same = numeric(ta).join('|') === numeric(tb).join('|');
    push(
      'changed_type',
      `${label(path)} changed type${same ? ' (integer/number)' : ''} from ${ta.join(' | ')} to ${tb.join(' | ')}`,
    );
    return;
  }
  const va = valuesOf(a, ctx.rootOld);
  const vb = valuesOf(b, ctx.rootNew);
  if ((va || vb) && (va ?? []).join(',') !== (vb ?? []).join(',')) {
    push(
      'changed_values',
      `${label(path)} changed allowed values from ${va ? va.join(', ') : 'any'} to ${vb ? vb.join(', ') : 'any'}`,
    );
  }

  const oa = objectPart(a, ctx.rootOld);
  const ob = objectPart(b, ctx.rootNew);
  if (oa && ob) {
    const pa = (oa.properties ?? {}) as Record<string, unknown>;
    const pb = (ob.properties ?? {}) as Record<string, unknown>;
    const ra = new Set((oa.required ?? []) as string[]);
    const rb = new Set((ob.required ?? []) as string[]);
    for (const key of Object.keys(pa)) {
      const child = path ? `${path}.${key}` : key;
      if (!(key in pb)) {
        ctx.breaks.push({
          kind: 'removed_field',
          type: ctx.type,
          version: ctx.version,
          path: child,
          message: `${ctx.type} v${ctx.version}: removed field "${child}"`,
        });
        continue;
      }
      if (rb.has(key) && !ra.has(key)) {
        ctx.breaks.push({
          kind: 'new_required_field',
          type: ctx.type,
          version: ctx.version,
          path: child,
          message: `${ctx.type} v${ctx.version}: field "${child}" became required`,
        });
      }
      compare(ctx, pa[key], pb[key], child);
    }
    for (const key of Object.keys(pb)) {
      if (key in pa) continue;
      const child = path ? `${path}.${key}` : key;
      if (rb.has(key)) {
        ctx.breaks.push({
          kind: 'new_required_field',
          type: ctx.type,
          version: ctx.version,
          path: child,
          message: `${ctx.type} v${ctx.version}: new required field "${child}"`,
        });
      } else {
        ctx.additions.push({
          type: ctx.type,
          version: ctx.version,
          path: child,
          message: `${ctx.type} v${ctx.version}: new optional field "${child}"`,
        });
      }
    }
  }
  const aa = arrayPart(a, ctx.rootOld);
  const ab = arrayPart(b, ctx.rootNew);
  if (aa && ab && aa.items && ab.items) compare(ctx, aa.items, ab.items, `${path}[]`);
}
