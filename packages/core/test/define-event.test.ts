import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { ConfigError, defineEvent, UnknownVersionError, ValidationError } from '../src/index.ts';

const V1 = defineEvent({
  type: 'user.signed_up',
  version: 1,
  schema: z.object({ id: z.string(), name: z.string() }),
});
const V2 = defineEvent({
  type: 'user.signed_up',
  version: 2,
  schema: z.object({ id: z.string(), firstName: z.string(), lastName: z.string() }),
  from: {
    event: V1,
    upcast: (d) => ({ id: d.id, firstName: d.name.split(' ')[0]!, lastName: d.name.split(' ')[1] ?? '' }),
  },
});
const V3 = defineEvent({
  type: 'user.signed_up',
  version: 3,
  schema: z.object({ id: z.string(), firstName: z.string(), lastName: z.string(), plan: z.string() }),
  from: { event: V2, upcast: (d) => ({ ...d, plan: 'free' }) },
  key: (d) => d.id,
});

describe('defineEvent', () => {
  test('topic defaults to the type and is kept across versions', () => {
    expect(V1.topic).toBe('user.signed_up');
    expect(V3.topic).toBe('user.signed_up');
    expect(V3.readableVersions).toEqual([3, 2, 1]);
  });

  test('upcasts through the chain to the subscribed version', () => {
    expect(V3.read(1, { id: 'u1', name: 'Ada Lovelace' })).toEqual({
      id: 'u1',
      firstName: 'Ada',
      lastName: 'Lovelace',
      plan: 'free',
    });
    expect(V3.read(3, { id: 'u1', firstName: 'A', lastName: 'B', plan: 'team', extra: 1 })).toEqual({
      id: 'u1',
      firstName: 'A',
      lastName: 'B',
      plan: 'team',
    });
  });

  test('unknown versions are non-retryable typed errors', () => {
    expect(() => V2.read(3, {})).toThrow(UnknownVersionError);
    expect(() => V1.read(2, {})).toThrow(UnknownVersionError);
  });

  test('invalid data is a ValidationError with issues', () => {
    try {
      V1.parse({ id: 1 });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).issues.map((i) => i.path)).toEqual(['id', 'name']);
    }
  });

  test('exports JSON Schema', () => {
    expect(V1.jsonSchema()).toMatchObject({
      type: 'object',
      required: ['id', 'name'],
      properties: { id: { type: 'string' } },
    });
  });

  test('rejects bad names, versions and upcast chains', () => {
    expect(() => defineEvent({ type: 'UserSignedUp', version: 1, schema: z.object({}) })).toThrow(
      ConfigError,
    );
    expect(() => defineEvent({ type: 'a.b', version: 0, schema: z.object({}) })).toThrow(ConfigError);
    expect(() =>
      defineEvent({
        type: 'a.b',
        version: 1,
        schema: z.object({}),
        from: { event: V1, upcast: () => ({}) } as never,
      }),
    ).toThrow(ConfigError);
  });
});
