import { createRedisClient, redisTarget, retryAfterNodeLoss, sharedKeyBase } from '../infra/redis-client.js';
import {
  mergeEntries,
  type PresenceBackend,
  type PresenceChange,
  type PresenceEntry,
} from './presence.backend.js';
import type { TypingEntry, UserPresence } from './presence.schema.js';

export interface RedisPresenceOptions {
  /** `redis://host:port/db` (or `cluster`). */
  url?: string;
  /** A Redis Cluster's startup nodes instead of `url`: every presence key shares one hash-tagged slot. */
  cluster?: string[];
  /** Prepended to every key (tests give each run its own). Default `pulse:`. */
  prefix?: string;
  /** This node's id: its entries are tagged with it and swept by the others when it dies. */
  nodeId: string;
  /** A node whose heartbeat is older than this is dead; its heartbeat is refreshed every ttlMs/3. */
  ttlMs: number;
  onError?(error: Error): void;
}

/**
 * The key that exists while node `nodeId` is alive (its presence heartbeat, refreshed every ttl/3).
 * Other cluster-wide state tagged with a node id (the per-user connection count) reads it too.
 */
export function presenceHeartbeatKey(prefix: string, nodeId: string, cluster = false): string {
  return `${presenceKeyBase(prefix, cluster)}hb:${nodeId}`;
}

/**
 * The start of every presence key: `<prefix>presence:` on one Redis; on a Redis Cluster the hash tag
 * `{<prefix>presence}:`, so the keys each script touches together (and the typing and per-user
 * connection keys, which read the heartbeats) live in one slot.
 */
export function presenceKeyBase(prefix: string, cluster = false): string {
  return sharedKeyBase(prefix, 'presence', cluster);
}

/** Typing state shared by every node (a typer's entry expires by itself). */
export interface SharedTyping {
  setTyping(workspaceId: string, entry: TypingEntry, ttlMs: number): Promise<void>;
  clearTyping(workspaceId: string, entry: Pick<TypingEntry, 'conversationId' | 'userId'>): Promise<void>;
  listTyping(workspaceId: string): Promise<TypingEntry[]>;
  /**
   * Claims typers whose indicator outlived its expiry by `graceMs` (their node died before clearing
   * it): each is returned to exactly one caller, which publishes the "stopped typing" event.
   */
  sweepTyping(now: number, graceMs: number): Promise<Array<{ workspaceId: string; entry: TypingEntry }>>;
}

/**
 * Tells the presence service that this node's own entries vanished from the backend (Redis restarted):
 * it sweeps at once, which writes them back and publishes the joins.
 */
export interface LostEntriesSignal {
  onEntriesLost(listener: () => void): () => void;
}

/*
 * Keys (after the prefix; on a Redis Cluster `presence:` is `{<prefix>presence}:`, and `typing:`
 * `{<prefix>presence}:typing:`, one slot for all):
 *   presence:u:<ws>:<user>   hash  connectionId -> entry JSON   (one user's connections in a workspace)
 *   presence:w:<ws>          set   userIds online in the workspace
 *   presence:ws              set   workspaces with anyone online (global count)
 *   presence:n:<node>        set   "<ws>|<user>|<connectionId>" held by a node (swept when it dies)
 *   presence:nodes           set   node ids that hold entries
 *   presence:hb:<node>       string with TTL: the node's heartbeat
 *   presence:exp             zset  HTTP-set entries by expiry time
 *   typing:<ws>              hash  "<conversation>|<user>" -> {entry, expiresAt}
 * Every change that needs before/after runs as one Lua script, so exactly one node observes (and
 * publishes) each join or leave however many nodes sweep at once.
 */

const UPSERT = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
local before = redis.call('HGETALL', KEYS[1])
local entry = ARGV[2]
if prev then
  local e = cjson.decode(entry)
  e.connectedAt = cjson.decode(prev).connectedAt
  entry = cjson.encode(e)
end
redis.call('HSET', KEYS[1], ARGV[1], entry)
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[6])
redis.call('SADD', KEYS[6], ARGV[7])
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[4])
else
  redis.call('ZREM', KEYS[5], ARGV[4])
end
return {before, entry}
`;

const REMOVE = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if not prev then return false end
local before = redis.call('HGETALL', KEYS[1])
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
redis.call('SREM', ARGV[3] .. cjson.decode(prev).nodeId, ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[4])
return before
`;

const CLAIM_TYPING = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('ZREM', KEYS[1], ARGV[1])
local value = redis.call('HGET', KEYS[2], ARGV[3])
if value then redis.call('HDEL', KEYS[2], ARGV[3]) end
return value
`;

const HEARTBEAT = `
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return existed
`;

/**
 * Presence shared by many nodes in Redis. Queries touch one workspace's keys only (never KEYS/SCAN),
 * so they stay fast with thousands of users. Each node heartbeats; `sweep` (called by the presence
 * service every ttl/2) removes HTTP-set entries past their expiry and every entry of nodes whose
 * heartbeat expired, and returns the resulting changes for the service to publish. If this node's own
 * heartbeat had lapsed (Redis restarted, or the node stalled past the TTL and was swept), its live
 * connections' entries are written back and returned as changes too.
 *
 * @example
 * const backend = createRedisPresenceBackend({ url, nodeId: config.nodeId, ttlMs: config.presence.ttlMs });
 */
export function createRedisPresenceBackend(
  opts: RedisPresenceOptions,
): PresenceBackend & SharedTyping & LostEntriesSignal & { heartbeat(): Promise<void> } {
  const prefix = opts.prefix ?? 'pulse:';
  const onError = (error: Error) => opts.onError?.(error);
  const target = redisTarget(opts);
  const onCluster = target.cluster !== undefined;
  const redis = createRedisClient(target, {
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  redis.on('error', onError);

  // NOTE: on a cluster REMOVE reaches a node's set by name (ARGV): it is in the same slot as its KEYS.
  const base = presenceKeyBase(prefix, onCluster);
  const typingBase = onCluster ? `${base}typing:` : `${prefix}typing:`;
  const key = {
    user: (ws: string, user: string) => `${base}u:${ws}:${user}`,
    users: (ws: string) => `${base}w:${ws}`,
    workspaces: `${base}ws`,
    nodePrefix: `${base}n:`,
    node: (node: string) => `${base}n:${node}`,
    nodes: `${base}nodes`,
    heartbeat: (node: string) => presenceHeartbeatKey(prefix, node, onCluster),
    expiring: `${base}exp`,
    typing: (ws: string) => `${typingBase}${ws}`,
    typingExpiry: `${typingBase}exp`,
  };
  const member = (ws: string, user: string, conn: string) => `${ws}|${user}|${conn}`;
  const parseMember = (m: string) => {
    const [ws, user] = m.split('|', 2) as [string, string];
    return { ws, user, conn: m.slice(ws.length + user.length + 2) };
  };

  /** This node's socket-bound entries, written back if Redis lost them. */
  const local = new Map<string, { workspaceId: string; entry: PresenceEntry }>();
  let lostOwnEntries = false;
  /** Entries a previous process with this node id left behind are removed at the first sweep. */
  let leftoversChecked = false;
  let beatOnce = false;
  const lostListeners = new Set<() => void>();
  let closed = false;
  /**
   * Entries this node removed while Redis was down: removed there (and their leaves published to the
   * other nodes) once it is back. NOTE: while Redis is down `local` is this node's whole view,
   * HTTP-set entries included, so presence keeps working among its own sockets.
   */
  const pendingRemovals = new Map<string, { ws: string; user: string; conn: string }>();
  /** Upserts on their way to Redis, per member: a removal meanwhile marks them (see `upsertShared`). */
  const upserting = new Map<string, Set<{ removed: boolean }>>();
  /** Set when a change was answered from the local view: the next sweep writes it back. */
  let offlineChanges = false;
  // NOTE: only after a first connection: a node starting up waits for Redis as before (commands
  // queue), and one that starts while Redis is down falls back when its commands fail.
  let connectedOnce = false;
  redis.once('ready', () => {
    connectedOnce = true;
  });
  const offline = () => connectedOnce && redis.status !== 'ready';
  /**
   * A command failed for want of a connection (not a script or data error). On a cluster the client
   * stays `ready` while one master is down; a command for its slots fails after ioredis ran out of
   * redirections or found the cluster down.
   */
  const unreachable = (error: unknown) =>
    offline() ||
    /Connection is closed|ECONNREFUSED|ECONNRESET|max retries|Stream isn't writeable|Too many Cluster redirections|CLUSTERDOWN|Failed to refresh slots cache|None of startup nodes/i.test(
      String(error),
    );
  /** Answers from Redis, or from this node's local view when Redis cannot be reached. */
  const orLocally = async <T>(shared: () => Promise<T>, locally: () => T): Promise<T> => {
    if (offline()) return locally();
    try {
      return await shared();
    } catch (error) {
      if (!unreachable(error)) throw error;
      onError(error as Error);
      return locally();
    }
  };

  const heartbeat = async () => {
    const existed = (await redis.eval(
      HEARTBEAT,
      2,
      key.heartbeat(opts.nodeId),
      key.nodes,
      String(Math.max(1, opts.ttlMs)),
      opts.nodeId,
    )) as number;
    const wasBeating = beatOnce;
    beatOnce = true;
    // NOTE: Redis answers again after changes only this node saw (or it lost our entries): write
    // them back and publish the resulting joins/leaves to every node (the service sweeps at once).
    if ((wasBeating && existed === 0 && local.size > 0) || offlineChanges) {
      lostOwnEntries = true;
      for (const listener of lostListeners) listener();
    }
  };
  // After a reconnect (Redis restarted?) check at once instead of at the next beat.
  redis.on('ready', () => {
    if (beatOnce && !closed) void heartbeat().catch(onError);
  });
  // On a cluster no `ready` follows a master's restart: beat until it answers again.
  const stopRetries = retryAfterNodeLoss(redis, () => (closed ? Promise.resolve() : heartbeat()));
  // NOTE: the first heartbeat is written before any entry, so no other node ever sees our entries
  // without a live heartbeat and sweeps them.
  const started = heartbeat().catch(onError);
  const beat = setInterval(() => void heartbeat().catch(onError), Math.max(50, Math.floor(opts.ttlMs / 3)));
  beat.unref();

  const parseEntries = (flat: string[]): PresenceEntry[] => {
    const entries: PresenceEntry[] = [];
    for (let i = 1; i < flat.length; i += 2) entries.push(JSON.parse(flat[i]!) as PresenceEntry);
    return entries;
  };

  /** This node's entries of one user in one workspace (the local view while Redis is down). */
  const localEntries = (workspaceId: string, userId: string, now = Date.now()): PresenceEntry[] => {
    const entries: PresenceEntry[] = [];
    for (const { workspaceId: ws, entry } of local.values()) {
      if (
        ws === workspaceId &&
        entry.userId === userId &&
        (entry.expiresAt === null || entry.expiresAt > now)
      )
        entries.push(entry);
    }
    return entries;
  };

  const upsertLocally = (workspaceId: string, entry: PresenceEntry): PresenceChange => {
    const m = member(workspaceId, entry.userId, entry.connectionId);
    const before = localEntries(workspaceId, entry.userId);
    const previous = local.get(m)?.entry;
    const saved = { ...entry, connectedAt: previous?.connectedAt ?? entry.connectedAt };
    local.set(m, { workspaceId, entry: saved });
    pendingRemovals.delete(m);
    offlineChanges = true;
    const after = before.filter((e) => e.connectionId !== entry.connectionId);
    after.push(saved);
    return { workspaceId, userId: entry.userId, before: mergeEntries(before), after: mergeEntries(after) };
  };

  const removeLocally = (workspaceId: string, userId: string, connectionId: string): PresenceChange => {
    const m = member(workspaceId, userId, connectionId);
    const before = localEntries(workspaceId, userId);
    local.delete(m);
    markRemoved(m);
    pendingRemovals.set(m, { ws: workspaceId, user: userId, conn: connectionId });
    offlineChanges = true;
    const after = before.filter((e) => e.connectionId !== connectionId);
    return { workspaceId, userId, before: mergeEntries(before), after: mergeEntries(after) };
  };

  /** This node's merged view of a workspace (answers `list` while Redis is down). */
  const listLocally = (workspaceId: string): UserPresence[] => {
    const now = Date.now();
    const users = new Set<string>();
    for (const { workspaceId: ws, entry } of local.values()) if (ws === workspaceId) users.add(entry.userId);
    const result: UserPresence[] = [];
    for (const userId of users) {
      const merged = mergeEntries(localEntries(workspaceId, userId, now));
      if (merged) result.push(merged);
    }
    return result.sort((a, b) => a.userId.localeCompare(b.userId));
  };

  async function upsert(workspaceId: string, entry: PresenceEntry): Promise<PresenceChange> {
    if (offline()) return upsertLocally(workspaceId, entry);
    try {
      return await upsertShared(workspaceId, entry);
    } catch (error) {
      if (!unreachable(error)) throw error;
      onError(error as Error);
      return upsertLocally(workspaceId, entry);
    }
  }

  async function remove(workspaceId: string, userId: string, connectionId: string): Promise<PresenceChange> {
    if (offline()) return removeLocally(workspaceId, userId, connectionId);
    const m = member(workspaceId, userId, connectionId);
    const held = local.get(m);
    try {
      return await removeShared(workspaceId, userId, connectionId);
    } catch (error) {
      if (!unreachable(error)) throw error;
      onError(error as Error);
      // The shared removal forgot the entry before its command failed: the local view still had it.
      if (held && !local.has(m)) local.set(m, held);
      return removeLocally(workspaceId, userId, connectionId);
    }
  }

  async function upsertShared(workspaceId: string, entry: PresenceEntry): Promise<PresenceChange> {
    const m = member(workspaceId, entry.userId, entry.connectionId);
    const ticket = { removed: false };
    let tickets = upserting.get(m);
    if (!tickets) {
      tickets = new Set();
      upserting.set(m, tickets);
    }
    tickets.add(ticket);
    let beforeFlat: string[];
    let stored: string;
    try {
      [beforeFlat, stored] = await upsertCommand(workspaceId, entry, m);
    } finally {
      tickets.delete(ticket);
      if (tickets.size === 0 && upserting.get(m) === tickets) upserting.delete(m);
    }
    const before = parseEntries(beforeFlat);
    if (ticket.removed) {
      // NOTE: removed while this upsert was on its way (the socket closed, or the write-back raced a
      // leave): the removal wins. Its command may even have reached Redis first (this one awaited
      // `started`), so remove again; the change is the pair's net effect.
      const undone = await removeShared(workspaceId, entry.userId, entry.connectionId);
      return { workspaceId, userId: entry.userId, before: mergeEntries(before), after: undone.after };
    }
    const saved = JSON.parse(stored) as PresenceEntry;
    if (entry.expiresAt === null && entry.nodeId === opts.nodeId) local.set(m, { workspaceId, entry: saved });
    const after = before.filter((e) => e.connectionId !== entry.connectionId);
    after.push(saved);
    return { workspaceId, userId: entry.userId, before: mergeEntries(before), after: mergeEntries(after) };
  }

  async function upsertCommand(
    workspaceId: string,
    entry: PresenceEntry,
    m: string,
  ): Promise<[string[], string]> {
    await started;
    return (await redis.eval(
      UPSERT,
      6,
      key.user(workspaceId, entry.userId),
      key.users(workspaceId),
      key.node(entry.nodeId),
      key.workspaces,
      key.expiring,
      key.nodes,
      entry.connectionId,
      JSON.stringify(entry),
      entry.userId,
      m,
      entry.expiresAt === null ? '' : String(entry.expiresAt),
      workspaceId,
      entry.nodeId,
    )) as [string[], string];
  }

  /** Tells upserts of `m` on their way that it was removed meanwhile (see `upsertShared`). */
  function markRemoved(m: string): void {
    for (const ticket of upserting.get(m) ?? []) ticket.removed = true;
  }

  async function removeShared(
    workspaceId: string,
    userId: string,
    connectionId: string,
  ): Promise<PresenceChange> {
    const m = member(workspaceId, userId, connectionId);
    local.delete(m);
    pendingRemovals.delete(m);
    markRemoved(m);
    const beforeFlat = (await redis.eval(
      REMOVE,
      3,
      key.user(workspaceId, userId),
      key.users(workspaceId),
      key.expiring,
      connectionId,
      userId,
      key.nodePrefix,
      m,
    )) as string[] | null;
    if (!beforeFlat) return { workspaceId, userId, before: null, after: null };
    const before = parseEntries(beforeFlat);
    const after = before.filter((e) => e.connectionId !== connectionId);
    return { workspaceId, userId, before: mergeEntries(before), after: mergeEntries(after) };
  }

  async function listShared(workspaceId: string): Promise<UserPresence[]> {
    const userIds = await redis.smembers(key.users(workspaceId));
    if (userIds.length === 0) return [];
    const pipeline = redis.pipeline();
    for (const userId of userIds) pipeline.hvals(key.user(workspaceId, userId));
    const replies = (await pipeline.exec()) ?? [];
    const result: UserPresence[] = [];
    for (const [error, values] of replies) {
      if (error) throw error;
      const merged = mergeEntries((values as string[]).map((v) => JSON.parse(v) as PresenceEntry));
      if (merged) result.push(merged);
    }
    return result.sort((a, b) => a.userId.localeCompare(b.userId));
  }

  async function countShared(workspaceId?: string): Promise<number> {
    if (workspaceId) return redis.scard(key.users(workspaceId));
    const workspaces = await redis.smembers(key.workspaces);
    if (workspaces.length === 0) return 0;
    const pipeline = redis.pipeline();
    for (const ws of workspaces) pipeline.scard(key.users(ws));
    let total = 0;
    const empty: string[] = [];
    for (const [i, [error, count]] of ((await pipeline.exec()) ?? []).entries()) {
      if (error) throw error;
      total += count as number;
      if (count === 0) empty.push(workspaces[i]!);
    }
    if (empty.length > 0) await redis.srem(key.workspaces, ...empty);
    return total;
  }

  const backend = {
    upsert,
    remove,
    list: (workspaceId: string) =>
      orLocally(
        () => listShared(workspaceId),
        () => listLocally(workspaceId),
      ),
    get: (workspaceId: string, userId: string) =>
      orLocally(
        async () => {
          const values = await redis.hvals(key.user(workspaceId, userId));
          return mergeEntries(values.map((v) => JSON.parse(v) as PresenceEntry));
        },
        () => mergeEntries(localEntries(workspaceId, userId)),
      ),
    async sweep(now: number): Promise<PresenceChange[]> {
      if (closed) return [];
      const changes: PresenceChange[] = [];
      const record = (change: PresenceChange) => {
        if (change.before || change.after) changes.push(change);
      };
      if (!leftoversChecked && !offline()) {
        for (const m of await redis.smembers(key.node(opts.nodeId))) {
          const { ws, user, conn } = parseMember(m);
          // NOTE: every socket entry this process wrote is in `local`; HTTP-set ones expire by themselves.
          if (!local.has(m) && !conn.startsWith('http:')) record(await removeShared(ws, user, conn));
        }
        leftoversChecked = true;
      }
      if (offline()) return changes;
      if (lostOwnEntries) {
        lostOwnEntries = false;
        offlineChanges = false;
        try {
          // Removed while Redis was down: gone there too, and the others get the leaves.
          for (const [m, { ws, user, conn }] of [...pendingRemovals]) {
            if (!pendingRemovals.has(m)) continue;
            record(await removeShared(ws, user, conn));
          }
          for (const [m, { workspaceId, entry }] of [...local]) {
            if (local.get(m)?.entry !== entry) continue;
            record(await upsertShared(workspaceId, entry));
            // NOTE: HTTP-set entries live in `local` only while Redis is down; written back, they expire there.
            if (entry.expiresAt !== null) local.delete(m);
          }
        } catch (error) {
          // Redis went away again mid-way: the next heartbeat that gets through starts over.
          lostOwnEntries = true;
          offlineChanges = true;
          throw error;
        }
      }
      for (const m of await redis.zrangebyscore(key.expiring, '-inf', now)) {
        const { ws, user, conn } = parseMember(m);
        record(await remove(ws, user, conn));
        await redis.zrem(key.expiring, m);
      }
      const nodes = await redis.smembers(key.nodes);
      const others = nodes.filter((n) => n !== opts.nodeId);
      if (others.length === 0) return changes;
      const alive = await redis.mget(...others.map((n) => key.heartbeat(n)));
      for (const [i, node] of others.entries()) {
        if (alive[i] !== null) continue;
        for (const m of await redis.smembers(key.node(node))) {
          const { ws, user, conn } = parseMember(m);
          record(await remove(ws, user, conn));
        }
        // NOTE: a node that comes back re-adds itself with its next heartbeat and writes its entries back.
        await redis.srem(key.nodes, node);
      }
      return changes;
    },
    countOnline: (workspaceId?: string) =>
      orLocally(
        () => countShared(workspaceId),
        () => {
          const users = new Set<string>();
          for (const { workspaceId: ws, entry } of local.values())
            if (!workspaceId || ws === workspaceId) users.add(`${ws}|${entry.userId}`);
          return users.size;
        },
      ),
    async setTyping(workspaceId: string, entry: TypingEntry, ttlMs: number): Promise<void> {
      const expiresAt = Date.now() + ttlMs;
      const field = `${entry.conversationId}|${entry.userId}`;
      await redis
        .multi()
        .hset(key.typing(workspaceId), field, JSON.stringify({ entry, expiresAt }))
        // Outlives any claim by a sweep (expiry + grace + one sweep interval).
        .pexpire(key.typing(workspaceId), Math.max(1, ttlMs * 4))
        .zadd(key.typingExpiry, expiresAt, `${workspaceId}|${field}`)
        .exec();
    },
    async clearTyping(workspaceId: string, entry: Pick<TypingEntry, 'conversationId' | 'userId'>) {
      const field = `${entry.conversationId}|${entry.userId}`;
      await redis
        .multi()
        .hdel(key.typing(workspaceId), field)
        .zrem(key.typingExpiry, `${workspaceId}|${field}`)
        .exec();
    },
    async sweepTyping(now: number, graceMs: number) {
      const claimed: Array<{ workspaceId: string; entry: TypingEntry }> = [];
      const due = await redis.zrangebyscore(key.typingExpiry, '-inf', now - graceMs);
      for (const member of due) {
        const workspaceId = member.slice(0, member.indexOf('|'));
        const field = member.slice(workspaceId.length + 1);
        const raw = (await redis.eval(
          CLAIM_TYPING,
          2,
          key.typingExpiry,
          key.typing(workspaceId),
          member,
          String(now - graceMs),
          field,
        )) as string | null;
        if (raw) claimed.push({ workspaceId, entry: (JSON.parse(raw) as { entry: TypingEntry }).entry });
      }
      return claimed;
    },
    async listTyping(workspaceId: string): Promise<TypingEntry[]> {
      const all = await redis.hgetall(key.typing(workspaceId));
      const now = Date.now();
      const result: TypingEntry[] = [];
      for (const raw of Object.values(all)) {
        const { entry, expiresAt } = JSON.parse(raw) as { entry: TypingEntry; expiresAt: number };
        if (expiresAt > now) result.push(entry);
      }
      return result;
    },
    heartbeat,
    onEntriesLost(listener: () => void) {
      lostListeners.add(listener);
      return () => lostListeners.delete(listener);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(beat);
      stopRetries();
      // A graceful stop removes this node's heartbeat: its entries (if any survived) go at the next sweep.
      try {
        if (redis.status === 'ready') await redis.del(key.heartbeat(opts.nodeId));
        await redis.quit();
      } catch {
        redis.disconnect();
      }
    },
  };
  return backend;
}
