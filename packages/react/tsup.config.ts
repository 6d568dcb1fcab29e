import { defineConfig } from 'tsup';

/**
 * @pulse/react's build: one ESM file marked `"use client"` (every export is a hook, a provider or
 * the tRPC React bindings, all client-side), with React, tRPC, TanStack Query and @pulse/client
 * left to the app (peers and dependencies are external).
 */
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  target: 'es2022',
  platform: 'browser',
  clean: true,
  // NOTE: esbuild drops module-level directives when bundling; the banner puts it back on top.
  banner: { js: "'use client';" },
  dts: { compilerOptions: { customConditions: [] } },
});
