import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSchemas, type SchemaSnapshot } from '../src/schemas.ts';
import { cli, fixtureConfig, parsed, tempDir } from './harness.ts';

const require = createRequire(import.meta.url);
const specs = require('@asyncapi/specs') as { schemas: Record<string, object> };
const Ajv = (require('ajv') as { default: new (o: object) => any }).default;
const addFormats = (require('ajv-formats') as { default: (ajv: unknown) => void }).default;

const config = ['--config', fixtureConfig];
const variant = (name: string) => ({ env: { FIXTURE_VARIANT: name } });

function asyncApiValidator() {
  // The AsyncAPI schema embeds the draft-07 meta-schema under its own $id: do not add ajv's.
  const ajv = new Ajv({ allErrors: true, strict: false, meta: false, validateSchema: false });
  addFormats(ajv);
  return ajv.compile(specs.schemas['3.0.0']!);
}

describe('eventwire schema export', () => {
  it('jsonschema: JSON Schema per event version', async () => {
    const result = await cli([...config, 'schema', 'export', '--format', 'jsonschema']);
    expect(result.code, result.stderr).toBe(0);
    const doc = parsed<SchemaSnapshot>(result);
    expect(Object.keys(doc.events)).toEqual(['order.placed', 'user.signed_up']);
    expect(Object.keys(doc.events['order.placed']!)).toEqual(['1', '2']);
    expect(doc.events['order.placed']!['1']!.schema).toMatchObject({
      type: 'object',
      required: ['orderId', 'totalCents', 'currency', 'customer'],
      properties: { orderId: { type: 'string' }, currency: { enum: ['EUR', 'USD'] } },
    });
  });

  it('asyncapi: an AsyncAPI 3 document of topics, groups and messages that validates against the AsyncAPI 3 JSON schema', async () => {
    const dir = tempDir();
    const out = join(dir, 'asyncapi.json');
    const result = await cli([...config, 'schema', 'export', '--format', 'asyncapi', '--out', out]);
    expect(result.code, result.stderr).toBe(0);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    const validate = asyncApiValidator();
    expect(validate(doc), JSON.stringify(validate.errors, null, 2)).toBe(true);
    expect(doc).toMatchObject({ asyncapi: '3.0.0', info: { title: 'Checkout', version: '2.1.0' } });
    expect(doc.channels['order.placed'].address).toBe('order.placed');
    expect(Object.keys(doc.channels['order.placed'].messages)).toEqual([
      'order.placed.v1',
      'order.placed.v2',
    ]);
    expect(Object.keys(doc.operations).sort()).toEqual([
      'receive.order.placed.analytics',
      'receive.order.placed.email',
      'receive.user.signed_up.welcome',
      'send.order.placed',
      'send.user.signed_up',
    ]);
    expect(doc.operations['receive.order.placed.email']).toMatchObject({
      action: 'receive',
      'x-eventwire-group': 'email',
    });
    expect(doc.components.messages['order.placed.v2'].payload.properties.total.type).toBe('object');

    // The validator is not vacuous: a broken document fails.
    const broken = structuredClone(doc);
    broken.operations['send.order.placed'].action = 'publish';
    delete broken.info.version;
    expect(validate(broken)).toBe(false);
  });

  it('rejects an unknown format', async () => {
    const result = await cli([...config, 'schema', 'export', '--format', 'protobuf']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown --format "protobuf": use jsonschema or asyncapi');
  });
});

describe('eventwire schema check', () => {
  const snapshot = join(tempDir(), 'eventwire.schemas.json');
  const check = (name: string, ...args: string[]) =>
    cli([...config, 'schema', 'check', '--snapshot', snapshot, ...args], variant(name));

  it('without a snapshot it fails and says how to create one; --update writes it', async () => {
    const missing = await check('base');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no schema snapshot at');
    expect(missing.stderr).toContain('eventwire schema check --update');
    const update = await check('base', '--update');
    expect(update.code, update.stderr).toBe(0);
    expect(update.stdout).toContain('created');
    expect(existsSync(snapshot)).toBe(true);
    expect(JSON.parse(readFileSync(snapshot, 'utf8')).events['order.placed']['1'].schema.type).toBe('object');
    const same = await check('base');
    expect(same.code).toBe(0);
    expect(same.stdout).toContain('schemas are compatible');
  });

  it('passes on an additive optional field', async () => {
    const result = await check('additive', '--json');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const out = parsed(result);
    expect(out.ok).toBe(true);
    expect(out.additions).toContainEqual(
      expect.objectContaining({ type: 'order.placed', version: 1, path: 'coupon' }),
    );
  });

  it.each([
    ['removed-field', 'removed_field', 'order.placed v1: removed field "note"'],
    [
      'changed-type',
      'changed_type',
      'order.placed v1: field "totalCents" changed type from integer to string',
    ],
    ['new-required', 'new_required_field', 'order.placed v1: new required field "channel"'],
  ])('fails on a break: %s', async (name, kind, message) => {
    const result = await check(name);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`BREAK ${kind}: ${message}`);
    const json = parsed(await check(name, '--json'));
    expect(json.ok).toBe(false);
    expect(json.breaks).toEqual([
      expect.objectContaining({ kind, type: 'order.placed', version: 1, message }),
    ]);
  });

  it('lists each break of a nested change', async () => {
    const result = await check('nested-break');
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('2 breaking changes');
    expect(result.stdout).toContain('removed field "customer.email"');
    expect(result.stdout).toContain('field "customer.id" changed type from string to number');
  });

  it('--update accepts a break and rewrites the snapshot', async () => {
    const copy = join(tempDir(), 'eventwire.schemas.json');
    writeFileSync(copy, readFileSync(snapshot));
    const run = (...args: string[]) =>
      cli([...config, 'schema', 'check', '--snapshot', copy, ...args], variant('removed-field'));
    const updated = await run('--update');
    expect(updated.code).toBe(0);
    expect(updated.stdout).toContain('accepted break: order.placed v1: removed field "note"');
    expect((await run()).code).toBe(0);
  });
});

describe('checkSchemas (pure)', () => {
  const snap = (schema: object): SchemaSnapshot => ({
    events: { 'a.happened': { '1': { topic: 't', schema: schema as never } } },
  });
  const obj = (properties: object, required: string[] = []) => ({ type: 'object', properties, required });

  it('a field that became required is a break; one that became optional is not', () => {
    const before = snap(obj({ a: { type: 'string' }, b: { type: 'string' } }, ['a']));
    const after = snap(obj({ a: { type: 'string' }, b: { type: 'string' } }, ['b']));
    expect(checkSchemas(before, after).breaks.map((b) => b.message)).toEqual([
      'a.happened v1: field "b" became required',
    ]);
  });

  it('nullable, enum values, array items and removed versions', () => {
    const before = snap(
      obj({
        s: { type: 'string' },
        e: { type: 'string', enum: ['x', 'y'] },
        list: { type: 'array', items: obj({ sku: { type: 'string' } }) },
      }),
    );
    const after = snap(
      obj({
        s: { anyOf: [{ type: 'string' }, { type: 'null' }] },
        e: { type: 'string', enum: ['x'] },
        list: { type: 'array', items: obj({}) },
      }),
    );
    expect(checkSchemas(before, after).breaks.map((b) => b.message)).toEqual([
      'a.happened v1: field "s" changed type from string to null | string',
      'a.happened v1: field "e" changed allowed values from "x", "y" to "x"',
      'a.happened v1: removed field "list[].sku"',
    ]);
    expect(checkSchemas(before, { events: {} }).breaks.map((b) => b.kind)).toEqual(['removed_version']);
  });

  it('new types and versions are compatible', () => {
    const before = snap(obj({}));
    const after: SchemaSnapshot = {
      events: {
        'a.happened': {
          '1': { topic: 't', schema: obj({}) as never },
          '2': { topic: 't', schema: obj({}) as never },
        },
        'b.happened': { '1': { topic: 'b', schema: obj({}) as never } },
      },
    };
    const result = checkSchemas(before, after);
    expect(result.breaks).toEqual([]);
    expect(result.additions.map((a) => a.message)).toEqual([
      'a.happened v2: new version',
      'b.happened v1: new event type',
    ]);
  });
});
