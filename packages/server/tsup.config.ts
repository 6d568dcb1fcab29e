import { defineConfig } from 'tsup';

const common = { format: 'esm' as const, target: 'node20', platform: 'node' as const };

/**
 * @pulse/server's build (the build script empties dist first: two configs run at once, so neither cleans): the library entries, the demo entry, `@pulse/server/testing` (test/support/index.ts) and the `pulse-server` CLI (esbuild
 * keeps its shebang), ESM for Node 20; and, built on its own, the types-only contract entry.
 */
export default defineConfig([
  {
    ...common,
    entry: {
      index: 'src/index.ts',
      schema: 'src/schema.ts',
      main: 'src/main.ts',
      'demo/index': 'src/demo/index.ts',
      testing: 'test/support/index.ts',
    },
    dts: {
      entry: {
        index: 'src/index.ts',
        schema: 'src/schema.ts',
        'demo/index': 'src/demo/index.ts',
        testing: 'test/support/index.ts',
      },
    },
    clean: false,
  },
  {
    // NOTE: its own build, so its .d.ts is one self-contained file (no chunk shared with the server
    // entries, whose imports name kysely, pino…): @pulse/client inlines it into its declarations.
    ...common,
    entry: { contract: 'src/contract.ts', protocol: 'src/infra/ws/protocol.ts' },
    dts: true,
    clean: false,
  },
]);
