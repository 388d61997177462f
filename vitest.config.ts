import { configDefaults, defineConfig } from 'vitest/config';

// `source` points workspace packages at their TypeScript sources, so tests never need a build.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    // The fault suite (test/faults, minutes long) runs on its own: `pnpm test:faults` sets EVENTWIRE_FAULTS=1.
    exclude: [...configDefaults.exclude, ...(process.env.EVENTWIRE_FAULTS === '1' ? [] : ['test/faults/**'])],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
