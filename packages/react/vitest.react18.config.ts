import { fileURLToPath } from 'node:url';
import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

// The React 18 run of the same suite: `react` and `react-dom` (and their subpaths) resolve to the
// React 18.3 installed by the tests/react18 workspace, for our code and for the libraries between
// (TanStack Query, tRPC's React bindings, Testing Library), which are inlined so the alias applies.
const react18 = fileURLToPath(new URL('../../tests/react18/node_modules/', import.meta.url));
const modules = fileURLToPath(new URL('../../node_modules/', import.meta.url));

export default mergeConfig(
  base,
  defineConfig({
    resolve: {
      alias: [
        { find: /^react$/, replacement: `${react18}react/index.js` },
        { find: /^react\/(.*)$/, replacement: `${react18}react/$1` },
        { find: /^react-dom$/, replacement: `${react18}react-dom/index.js` },
        { find: /^react-dom\/(.*)$/, replacement: `${react18}react-dom/$1` },
        // NOTE: Testing Library's `main` is CommonJS, whose require() calls no alias reaches; its ESM
        // build imports react-dom the way the alias sees.
        {
          find: /^@testing-library\/react$/,
          replacement: `${modules}@testing-library/react/dist/@testing-library/react.esm.js`,
        },
      ],
    },
    test: {
      name: 'react18',
      env: { PULSE_REACT_MAJOR: '18' },
      // NOTE: the type tests ran against React 19's types in the main run; @types/react is one.
      typecheck: { enabled: false },
      server: { deps: { inline: ['@testing-library/react', '@tanstack/react-query', '@trpc/react-query'] } },
    },
  }),
);
