/**
 * `@pulse/server/testing`: helpers to test an app against a real Pulse node, framework-free (no
 * vitest, no client package: only what @pulse/server itself depends on). The monorepo's own tests
 * use them too (with `./vitest.ts`, which adds the tRPC-client and vitest helpers).
 */
export {
  type ClusterEnv,
  clusterToken,
  freePorts,
  type NodeProcess,
  startCluster,
  startNode,
  startPrivateRedis,
} from './cluster.js';
export { codeOf, expectCode, issuesOf } from './errors.js';
export { startProxy, type TcpProxy } from './proxy.js';
export { openRaw, type RawOptions, type RawSocket, type WireMessage, wireCode } from './raw-socket.js';
export { type LocalCluster, shardNumSub, startLocalCluster } from './redis-cluster.js';
export {
  memoryLog,
  mintTestToken,
  startTestServer,
  TEST_SECRET,
  type TestServer,
  type TestServerOptions,
} from './server.js';
export {
  createTestDatabase,
  POSTGRES_ADMIN_URL,
  postgresUnavailable,
  REDIS_URL,
  redisUnavailable,
  type StoreEngine,
  type StoreSetup,
  storeEngines,
  uniquePrefix,
} from './stores.js';
export { type WaitOptions, waitFor } from './wait.js';
