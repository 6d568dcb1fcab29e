import { defineConfig } from 'tsup';

/**
 * @pulse/client's build. The router's types come from `@pulse/server/contract` (a devDependency):
 * mapped to the built, bundled contract by `paths`, the declaration bundler inlines them, so the
 * published .d.ts names only @trpc/* and zod, never @pulse/server.
 */
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  target: 'es2022',
  platform: 'browser',
  clean: true,
  // NOTE: `@pulse/server/protocol` (close codes, browser-safe) is bundled in: the client never
  // depends on the server package at run time.
  noExternal: ['@pulse/server'],
  dts: {
    // NOTE: a bare package import stays external in the bundled .d.ts; a `paths` mapping is resolved
    // as a local file and inlined. It points at the built contract (what would ship), not src/.
    compilerOptions: {
      customConditions: [],
      paths: { '@pulse/server/contract': ['../server/dist/contract.d.ts'] },
    },
  },
});
