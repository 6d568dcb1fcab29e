/** The per-user connection cap's count: per node in memory, or cluster-wide in Redis. */
import { randomBytes } from 'node:crypto';
import { createRedisClient, redisTarget, retryAfterNodeLoss } from './redis-client.js';

/**
 * Counts each user's open sockets against `maxConnectionsPerUser`. The WebSocket transport asks
 * `acquire` once a socket authenticated and calls `release` when it closes.
 */
export interface ConnectionCounter {
  /**
   * Counts connection `connectionId` of `userId` unless the user already holds `limit`
   * connections; resolves whether it was counted (false: refuse it with 4429). Never rejects.
   */
  acquire(userId: string, connectionId: string, limit: number): Promise<boolean>;
  /** Uncounts a connection `acquire` counted (idempotent). */
  release(userId: string, connectionId: string): void;
  close(): Promise<void>;
}

/** Counts one node's own connections (the default with one node, and the Redis counter's fallback). */
export class LocalConnectionCounter implements ConnectionCounter {
  /** userId -> its connection ids on this node. */
  readonly users = new Map<string, Set<string>>();

  count(userId: string): number {
    return this.users.get(userId)?.size ?? 0;
  }

  /** Counts the connection whatever the limit (the Redis counter decided already). */
  add(userId: string, connectionId: string): void {
    let set = this.users.get(userId);
    if (!set) {
      set = new Set();
      this.users.set(userId, set);
    }
    set.add(connectionId);
  }

  async acquire(userId: string, connectionId: string, limit: number): Promise<boolean> {
    if (this.count(userId) >= limit) return false;
    this.add(userId, connectionId);
    return true;
  }

  release(userId: string, connectionId: string): void {
    const set = this.users.get(userId);
    if (!set) return;
    set.delete(connectionId);
    if (set.size === 0) this.users.delete(userId);
  }

  async close(): Promise<void> {
    this.users.clear();
  }
}

export interface RedisConnectionCounterOptions {
  /** `redis://host:port/db` (or `cluster`). */
  url?: string;
  /**
   * A Redis Cluster's startup nodes instead of `url`. Give `keyBase` then: the script reads the
   * heartbeat keys, so the per-user keys must share their hash tag.
   */
  cluster?: string[];
  /** Start of the per-user keys (default `<prefix>conns:`); on a cluster, within the heartbeats' tag. */
  keyBase?: string;
  /** Key prefix (the cluster's `PULSE_REDIS_PREFIX`). Default `pulse:`. */
  prefix?: string;
  /** This node's id: its members are tagged with it. */
  nodeId: string;
  /**
   * The Redis key that exists while node `nodeId` is alive (a heartbeat with a TTL). Members of a
   * node whose key is gone are dropped at the next count of their user.
   */
  heartbeatKey(nodeId: string): string;
  /** Longest a Redis command may take before this node counts locally instead (default 1000 ms). */
  commandTimeoutMs?: number;
  onError?(error: Error): void;
}

/*
 * Key (after the prefix): conns:u:<user>   zset  "<node>|<instance>|<connectionId>" (score: when added)
 * One key per user and at most `limit` live members in it, so a count is O(limit), never a scan.
 * NOTE: the script reads the nodes' heartbeat keys without declaring them (their names come from the
 * members): fine on one Redis; on a Redis Cluster only because the user keys carry the heartbeats'
 * hash tag (`keyBase`), so they are in the same slot.
 * NOTE: the key has no expiry: a live socket must keep counting however long it stays open; members
 * of dead nodes go at the user's next count, and an idle user's key is a few bytes.
 */
const ACQUIRE = `
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local alive = {}
local live = 0
for _, m in ipairs(members) do
  local sep = string.find(m, '|', 1, true)
  local node = string.sub(m, 1, sep - 1)
  local rest = string.sub(m, sep + 1)
  local instance = string.sub(rest, 1, string.find(rest, '|', 1, true) - 1)
  local ok
  if node == ARGV[4] then
    ok = instance == ARGV[5]
  else
    if alive[node] == nil then alive[node] = redis.call('EXISTS', ARGV[3] .. node) == 1 end
    ok = alive[node]
  end
  if ok then live = live + 1 else redis.call('ZREM', KEYS[1], m) end
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if live >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[6], ARGV[1])
return 1
`;

/**
 * The per-user cap counted across every node: one sorted set per user in Redis, one member per
 * connection tagged with the node id (and this process's instance id). Dead nodes need no cleanup
 * of their own: a member counts only while its node's heartbeat key lives (the presence
 * heartbeat, `presence:hb:<node>`), and members of dead nodes — or of an earlier process under
 * this node id — are removed by the next `acquire` for their user.
 *
 * While Redis does not answer, the node counts only its own connections (it never refuses
 * everyone); once Redis is back it writes its live connections back (a restarted Redis lost them)
 * and removes the ones that closed meanwhile.
 *
 * @example
 * const counter = createRedisConnectionCounter({ url, nodeId, heartbeatKey: (n) => `pulse:presence:hb:${n}` });
 */
export function createRedisConnectionCounter(opts: RedisConnectionCounterOptions): ConnectionCounter {
  const prefix = opts.prefix ?? 'pulse:';
  const onError = (error: Error) => opts.onError?.(error);
  // NOTE: no offline queue: while Redis is down a command fails at once and the node counts locally.
  const redis = createRedisClient(redisTarget(opts), {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: opts.commandTimeoutMs ?? 1_000,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  redis.on('error', onError);
  const instance = randomBytes(6).toString('hex');
  const keyBase = opts.keyBase ?? `${prefix}conns:`;
  const userKey = (userId: string) => `${keyBase}u:${userId}`;
  const member = (connectionId: string) => `${opts.nodeId}|${instance}|${connectionId}`;
  const heartbeatPrefix = opts.heartbeatKey('');
  const local = new LocalConnectionCounter();
  /** Releases Redis did not take (it was down): retried once it is back. */
  const unreleased = new Map<string, string>();
  let closed = false;

  // NOTE: after a reconnect every live connection of this node is written back, not only those
  // counted while Redis was down: a restarted Redis lost them all. One pipeline, once per reconnect.
  const reconcile = async () => {
    const pipeline = redis.pipeline();
    for (const [connectionId, userId] of unreleased) pipeline.zrem(userKey(userId), member(connectionId));
    const now = Date.now();
    for (const [userId, set] of local.users)
      for (const connectionId of set) pipeline.zadd(userKey(userId), 'NX', now, member(connectionId));
    const released = [...unreleased.keys()];
    // A pipeline resolves with each command's error in its reply: any error means not written back.
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
    for (const connectionId of released) unreleased.delete(connectionId);
  };
  let readyOnce = false;
  redis.on('ready', () => {
    const reconnected = readyOnce;
    readyOnce = true;
    if (reconnected && !closed) void reconcile().catch(onError);
  });
  // A cluster master restarted (it may hold the per-user keys): write back the same way.
  const stopRetries = retryAfterNodeLoss(redis, reconcile);

  return {
    async acquire(userId, connectionId, limit) {
      try {
        if (redis.status !== 'ready') throw new Error(`Redis is ${redis.status}`);
        const counted = (await redis.eval(
          ACQUIRE,
          1,
          userKey(userId),
          member(connectionId),
          String(limit),
          heartbeatPrefix,
          opts.nodeId,
          instance,
          String(Date.now()),
        )) as number;
        if (counted !== 1) return false;
        local.add(userId, connectionId);
        return true;
      } catch (error) {
        // NOTE: Redis unreachable: count this node's own connections only, never refuse everyone.
        onError(error as Error);
        if (local.count(userId) >= limit) return false;
        local.add(userId, connectionId);
        return true;
      }
    },
    release(userId, connectionId) {
      if (!local.users.get(userId)?.has(connectionId)) return;
      local.release(userId, connectionId);
      if (redis.status !== 'ready') {
        unreleased.set(connectionId, userId);
        return;
      }
      redis.zrem(userKey(userId), member(connectionId)).catch((error: Error) => {
        unreleased.set(connectionId, userId);
        onError(error);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      stopRetries();
      // NOTE: a graceful stop frees this node's slots at once (a crash frees them with its heartbeat).
      try {
        if (redis.status === 'ready') {
          const pipeline = redis.pipeline();
          for (const [userId, set] of local.users)
            for (const connectionId of set) pipeline.zrem(userKey(userId), member(connectionId));
          await pipeline.exec();
        }
        await redis.quit();
      } catch {
        redis.disconnect();
      }
      await local.close();
    },
  };
}
