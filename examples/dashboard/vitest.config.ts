import { defineConfig } from 'vitest/config';

// Browser tests: real Chromium (playwright-core) against a real Pulse node serving the built app.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    environment: 'node',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // NOTE: a browser on a busy CI machine can take seconds to show a live event; never assert timings.
    expect: { poll: { timeout: 20_000, interval: 100 } },
    hookTimeout: 180_000,
    // One browser at a time: the machine is small and shared.
    fileParallelism: false,
  },
});
