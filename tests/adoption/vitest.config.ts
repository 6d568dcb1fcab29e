import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['*.test.ts'],
    // NOTE: one file, steps in order (pack → install → type-check → build → browser); installs and
    // a native module build dominate, so the bounds are per step, set in the test itself.
    testTimeout: 240_000,
    hookTimeout: 240_000,
    fileParallelism: false,
  },
});
