/** One Redis server or a Redis Cluster, behind the ioredis client each Redis user of a node opens. */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/**
 * Where a node's Redis is: one server (`redis://host:port/db`) or a Redis Cluster's startup nodes
 * (`host:port` or `redis://host:port`; ioredis discovers the rest of the cluster from any of them).
 */
export type RedisTarget = { url: string; cluster?: undefined } | { url?: undefined; cluster: string[] };

export type RedisClient = Redis | Cluster;

/** The target of options that name either `url` or `cluster` (cluster wins). */
export function redisTarget(opts: { url?: string; cluster?: string[] }): RedisTarget {
  if (opts.cluster && opts.cluster.length > 0) return { cluster: opts.cluster };
  if (opts.url) return { url: opts.url };
  throw new Error('Redis: give either `url` or `cluster` (its startup nodes)');
}

/** `host:port` or `redis://host:port` startup nodes as ioredis wants them. */
export function clusterStartupNodes(nodes: readonly string[]): Array<{ host: string; port: number }> {
  return nodes.map((node) => {
    const url = new URL(node.includes('://') ? node : `redis://${node}`);
    if (!url.hostname) throw new Error(`Redis Cluster node "${node}" is not host:port`);
    return { host: url.hostname, port: Number(url.port || 6379) };
  });
}

/**
 * Opens a client on the target with the given per-connection options. On a cluster they apply to
 * every node's connection, `retryStrategy` and `enableOfflineQueue` to the cluster as a whole, and
 * `clusterOptions` are added (ignored on one server).
 */
export function createRedisClient(
  target: RedisTarget,
  options: RedisOptions = {},
  clusterOptions: ClusterOptions = {},
): RedisClient {
  if (target.url !== undefined) return new Redis(target.url, options);
  const { retryStrategy, enableOfflineQueue, ...redisOptions } = options;
  return new Cluster(clusterStartupNodes(target.cluster), {
    redisOptions,
    enableOfflineQueue: enableOfflineQueue ?? true,
    ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) } : {}),
    ...clusterOptions,
  });
}

/**
 * The start of every key that Lua scripts, MULTI blocks or pipelines touch together (presence, typing,
 * the per-user connection count). On one server it is `<prefix><name>:`, the key names Pulse always
 * used; on a cluster the name is a hash tag, `{<prefix><name>}:`, so those keys share one slot.
 * NOTE: on a cluster the prefix must hold no `{` or `}` (it would change the tag).
 */
export function sharedKeyBase(prefix: string, name: string, cluster: boolean): string {
  if (!cluster) return `${prefix}${name}:`;
  if (/[{}]/.test(prefix))
    throw new Error(`Redis prefix "${prefix}" must not contain { or } on a Redis Cluster`);
  return `{${prefix}${name}}:`;
}

/**
 * On a cluster the client stays `ready` while one master restarts (no `ready` event comes after it);
 * `-node` is the sign. From then on `action` runs every `everyMs` until it succeeds, i.e. until its
 * commands reach that master again. One server: nothing (its `ready` event says it). Returns a stop.
 */
export function retryAfterNodeLoss(
  client: RedisClient,
  action: () => Promise<unknown>,
  everyMs = 250,
): () => void {
  if (!(client instanceof Cluster)) return () => {};
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const attempt = () => {
    timer = setTimeout(() => {
      if (stopped) return;
      action().then(
        () => {
          timer = undefined;
        },
        () => {
          if (!stopped) attempt();
        },
      );
    }, everyMs);
    timer.unref();
  };
  const onLoss = () => {
    if (!stopped && !timer) attempt();
  };
  client.on('-node', onLoss);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    client.off('-node', onLoss);
  };
}
