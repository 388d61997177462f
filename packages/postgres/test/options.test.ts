/**
 * Every numeric option of the adapter, as an option or a URL parameter, is checked at the call
 * that passes it (issue 15 item 4): a NaN (`Number(process.env.UNSET)`), a 0 or a negative where
 * none makes sense, a fraction where only whole numbers do, or a value past the range is a
 * ConfigError naming the option, the value and the range. Nothing is opened before the check.
 */
import { ConfigError } from '@eventwire/core';
import { describe, expect, test } from 'vitest';
import { startRelay } from '../src/relay.ts';
import { type PostgresOptions, pglite, postgres, transportFromUrl } from '../src/url.ts';

const URL_BASE = 'postgres://app:secret@127.0.0.1:1/app';

function configError(call: () => unknown, ...mentions: string[]): void {
  let thrown: unknown;
  try {
    call();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  for (const text of mentions) expect((thrown as Error).message).toContain(text);
  expect((thrown as Error).message).not.toContain('secret');
}

/** Options that must be 1 or more, and what the message names as the range. */
const atLeastOne: [keyof PostgresOptions, string][] = [
  ['pollIntervalMs', 'from 1 to 2147483647'],
  ['maxMessageBytes', 'from 1 to 1073741823'],
  ['publishChunk', 'from 1 to 10000'],
  ['poolSize', '>= 1'],
  ['connectTimeoutMs', 'from 1 to 2147483647'],
  ['queryTimeoutMs', 'from 1 to 2147483647'],
  ['adminTimeoutMs', 'from 1 to 2147483647'],
];

describe('postgres() options', () => {
  test.each(atLeastOne)('%s: NaN, 0, negative and a fraction are ConfigErrors', (name, range) => {
    for (const [value, shown] of [
      [Number.NaN, 'NaN'],
      [0, '0'],
      [-1, '-1'],
      [1.5, '1.5'],
    ] as const) {
      configError(
        () => postgres({ url: URL_BASE, [name]: value }),
        `postgres() option ${name}`,
        range,
        shown,
      );
    }
  });

  test('retentionMs: below a second is a ConfigError (the sweep would run in a loop)', () => {
    for (const value of [Number.NaN, 0, -1, 999]) {
      configError(() => postgres({ url: URL_BASE, retentionMs: value }), 'postgres() option retentionMs');
    }
  });

  test('leaseMs: below 3 s is a ConfigError (the heartbeat renews every second at most)', () => {
    for (const value of [Number.NaN, 0, -1, 2999]) {
      configError(
        () => postgres({ url: URL_BASE, leaseMs: value }),
        'postgres() option leaseMs',
        'from 3000',
      );
      configError(() => pglite({ leaseMs: value }), 'pglite() option leaseMs', 'from 3000');
    }
    configError(() => transportFromUrl(`${URL_BASE}?leaseMs=100`), 'postgres URL parameter leaseMs');
    configError(() => transportFromUrl('pglite://?leaseMs=100'), 'pglite URL parameter leaseMs');
  });

  test('publishChunk above what one statement can carry is refused, not silently lowered', () => {
    configError(() => postgres({ url: URL_BASE, publishChunk: 20_000 }), 'publishChunk', '20000');
  });

  test('a value of the wrong type is named as such', () => {
    configError(() => postgres({ url: URL_BASE, pollIntervalMs: '250' as unknown as number }), '"250"');
  });

  test('good values are accepted', () => {
    expect(() =>
      postgres({ url: URL_BASE, pollIntervalMs: 1, poolSize: 1, queryTimeoutMs: 100, retentionMs: 1000 }),
    ).not.toThrow();
  });
});

describe('pglite() options', () => {
  test.each(
    atLeastOne.filter(([name]) => ['pollIntervalMs', 'maxMessageBytes', 'publishChunk'].includes(name)),
  )('%s: NaN, 0 and negative are ConfigErrors', (name) => {
    for (const value of [Number.NaN, 0, -1]) {
      configError(() => pglite({ [name]: value }), `pglite() option ${name}`);
    }
  });
});

describe('URL parameters', () => {
  test.each([
    ['pollIntervalMs=abc', 'postgres URL parameter pollIntervalMs', '"abc"'],
    ['pollIntervalMs=', 'postgres URL parameter pollIntervalMs', '""'],
    ['pollIntervalMs=0', 'postgres URL parameter pollIntervalMs', '0'],
    ['queryTimeoutMs=-5', 'postgres URL parameter queryTimeoutMs', '-5'],
    ['connectTimeoutMs=NaN', 'postgres URL parameter connectTimeoutMs', '"NaN"'],
    ['poolSize=0', 'postgres URL parameter poolSize', '0'],
    ['publishChunk=1.5', 'postgres URL parameter publishChunk', '1.5'],
    ['preparedStatements=yes', 'preparedStatements must be true or false'],
  ])('postgres://...?%s', (query, ...mentions) => {
    configError(() => transportFromUrl(`${URL_BASE}?${query}`), ...mentions);
  });

  test.each([
    ['pollIntervalMs=abc', 'pglite URL parameter pollIntervalMs', '"abc"'],
    ['publishChunk=0', 'pglite URL parameter publishChunk', '0'],
    ['poolSize=4', 'unknown pglite URL parameter "poolSize"'],
  ])('pglite://dir?%s', (query, ...mentions) => {
    configError(() => transportFromUrl(`pglite://./never-created?${query}`), ...mentions);
  });

  test("good parameters are taken, and pg's own are left to pg", () => {
    expect(() =>
      transportFromUrl(
        `${URL_BASE}?queryTimeoutMs=2000&pollIntervalMs=250&sslmode=disable&preparedStatements=false`,
      ),
    ).not.toThrow();
    expect(() => transportFromUrl('pglite://?pollIntervalMs=250')).not.toThrow();
  });
});

describe('startRelay() options', () => {
  // Checked before either is touched.
  const database = {} as never;
  const transport = {} as never;
  test.each([
    [{ batchSize: 0 }, 'startRelay() option batchSize'],
    [{ batchSize: Number.NaN }, 'startRelay() option batchSize'],
    [{ pollIntervalMs: -1 }, 'startRelay() option pollIntervalMs'],
    [{ backoff: { initialMs: 0 } }, 'startRelay() option backoff.initialMs'],
    [{ backoff: { initialMs: 500, maxMs: 100 } }, 'startRelay() option backoff.maxMs', 'from 500'],
  ])('%o', async (options, ...mentions) => {
    const error = await startRelay({ database, transport, ...options }).then(
      () => expect.unreachable('started'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    for (const text of mentions) expect((error as Error).message).toContain(text);
  });
});
