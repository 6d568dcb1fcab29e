import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    // NOTE: one test, the CI-length run (3 minutes of faults plus start-up, drain and checks).
    testTimeout: 240_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
