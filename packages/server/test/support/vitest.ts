/**
 * Everything the server's own tests use: `@pulse/server/testing` (./index.ts) plus the helpers
 * that need devDependencies (the official tRPC client, vitest). Not published.
 */
export * from './index.js';
export { expectDrained, expectHealthy } from './checks.js';
export {
  collect,
  connectClient,
  connectToCluster,
  connectWsOnly,
  idsOf,
  isSyncEvent,
  range,
  sleep,
  synced,
  type TestClient,
  type Tracked,
} from './client.js';
