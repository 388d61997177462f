/**
 * The adapter conformance suite (CONFORMANCE.md): one suite, run against every adapter with a
 * real broker. An adapter proves itself by passing it. Tests are skipped only where a declared
 * capability (or a missing broker control) rules them out, and the skip names it.
 *
 * Usage, in a vitest test file:
 *
 * ```ts
 * import { defineConformanceSuite } from '@eventwire/testing/conformance';
 * defineConformanceSuite({ name: 'redis', transport: () => redis({ url }) });
 * ```
 *
 * The tests are data: one file per test in `tests/` (`NN-name.ts`), listed in order by
 * `tests/index.ts` and exported here as {@link conformanceTests}; `fixture.ts` is what a test
 * runs with, `assertions.ts` what it checks with. This file only registers them with vitest.
 */
import { randomUUID } from 'node:crypto';
import type { MemoryBroker, Transport } from '@eventwire/core';
import { describe, test } from 'vitest';
import { type ConformanceOptions, createFixture } from './fixture.ts';
import { conformanceTests } from './tests/index.ts';

export type { SubscribeOptions } from '@eventwire/core';
export type { ConformanceOptions, ConformanceTest, Fixture, Requirement } from './fixture.ts';
export { conformanceTests };

/** Broker controls for the memory transport: its broker is an object that can stop and start. */
export function memoryBrokerControls(broker: MemoryBroker): NonNullable<ConformanceOptions['broker']> {
  return {
    restart: async () => {
      broker.stop();
      broker.start();
    },
    stop: async () => broker.stop(),
    start: async () => broker.start(),
  };
}

/** Registers the conformance tests (40) with vitest. */
export function defineConformanceSuite(options: ConformanceOptions): void {
  const runId = randomUUID().slice(0, 8);
  let probe: Transport | undefined;

  describe(`conformance: ${options.name}`, () => {
    for (const conformance of conformanceTests) {
      const title = `${String(conformance.number).padStart(2, '0')} ${conformance.name}`;
      test(title, { timeout: conformance.timeoutMs }, async (ctx) => {
        probe ??= await options.transport();
        const { capabilities } = probe;
        const { requires } = conformance;
        if (requires && !requires.met({ capabilities, broker: options.broker, transport: probe })) {
          // Reporters (JSON) carry task meta; `pnpm conformance` prints the reason from it.
          (ctx.task.meta as Record<string, unknown>).skipReason = requires.skipReason;
          ctx.skip(requires.skipReason);
          return;
        }
        const fx = createFixture(options, { runId, capabilities }, conformance.number);
        try {
          await conformance.run(fx);
        } finally {
          await fx.close();
        }
      });
    }
  });
}
