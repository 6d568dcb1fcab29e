import type { Activity, PresenceStatus, UserPresence } from './presence.schema.js';

/** One connection's presence in one workspace. */
export interface PresenceEntry {
  connectionId: string;
  userId: string;
  name: string;
  status: Exclude<PresenceStatus, 'offline'>;
  page: string | null;
  activity: Activity | null;
  connectedAt: number;
  updatedAt: number;
  /** Node holding the connection (entries of dead nodes are swept). */
  nodeId: string;
  /** Epoch ms after which the entry is stale (HTTP-set presence), or null while its socket lives. */
  expiresAt: number | null;
}

/** The merged view before and after a change; the service turns it into join/update/leave. */
export interface PresenceChange {
  workspaceId: string;
  userId: string;
  before: UserPresence | null;
  after: UserPresence | null;
}

/**
 * Where presence entries live: node memory by default, Redis when many nodes share it.
 * Every method returns the merged per-user view around the change it made.
 */
export interface PresenceBackend {
  upsert(workspaceId: string, entry: PresenceEntry): Promise<PresenceChange>;
  remove(workspaceId: string, userId: string, connectionId: string): Promise<PresenceChange>;
  list(workspaceId: string): Promise<UserPresence[]>;
  get(workspaceId: string, userId: string): Promise<UserPresence | null>;
  /** Removes entries past `expiresAt` (and of dead nodes); returns the resulting changes. */
  sweep(now: number): Promise<PresenceChange[]>;
  /** Number of users online, per workspace or overall. */
  countOnline(workspaceId?: string): Promise<number>;
  close(): Promise<void>;
}

/** Merges one user's entries: the most active status wins; page and activity come from the latest change. */
export function mergeEntries(entries: Iterable<PresenceEntry>): UserPresence | null {
  let latest: PresenceEntry | undefined;
  let since = Number.POSITIVE_INFINITY;
  let online = false;
  for (const entry of entries) {
    if (!latest || entry.updatedAt >= latest.updatedAt) latest = entry;
    since = Math.min(since, entry.connectedAt);
    if (entry.status === 'online') online = true;
  }
  if (!latest) return null;
  return {
    userId: latest.userId,
    name: latest.name,
    status: online ? 'online' : 'away',
    page: latest.page,
    activity: latest.activity,
    since: new Date(since).toISOString(),
    updatedAt: new Date(latest.updatedAt).toISOString(),
  };
}

/** Whether two merged views differ in anything a viewer sees. */
export function presenceDiffers(a: UserPresence, b: UserPresence): boolean {
  return (
    a.status !== b.status ||
    a.page !== b.page ||
    a.name !== b.name ||
    JSON.stringify(a.activity) !== JSON.stringify(b.activity)
  );
}

/** Single-node presence in memory. */
export function createMemoryPresenceBackend(): PresenceBackend {
  // workspaceId -> userId -> connectionId -> entry
  const workspaces = new Map<string, Map<string, Map<string, PresenceEntry>>>();

  function userEntries(workspaceId: string, userId: string, create: boolean) {
    let users = workspaces.get(workspaceId);
    if (!users) {
      if (!create) return undefined;
      users = new Map();
      workspaces.set(workspaceId, users);
    }
    let entries = users.get(userId);
    if (!entries && create) {
      entries = new Map();
      users.set(userId, entries);
    }
    return entries;
  }

  function prune(workspaceId: string, userId: string) {
    const users = workspaces.get(workspaceId);
    if (!users) return;
    if (users.get(userId)?.size === 0) users.delete(userId);
    if (users.size === 0) workspaces.delete(workspaceId);
  }

  const backend: PresenceBackend = {
    async upsert(workspaceId, entry) {
      const entries = userEntries(workspaceId, entry.userId, true)!;
      const before = mergeEntries(entries.values());
      const previous = entries.get(entry.connectionId);
      entries.set(entry.connectionId, { ...entry, connectedAt: previous?.connectedAt ?? entry.connectedAt });
      return { workspaceId, userId: entry.userId, before, after: mergeEntries(entries.values()) };
    },
    async remove(workspaceId, userId, connectionId) {
      const entries = userEntries(workspaceId, userId, false);
      const before = entries ? mergeEntries(entries.values()) : null;
      entries?.delete(connectionId);
      const after = entries ? mergeEntries(entries.values()) : null;
      prune(workspaceId, userId);
      return { workspaceId, userId, before, after };
    },
    async list(workspaceId) {
      const users = workspaces.get(workspaceId);
      if (!users) return [];
      const result: UserPresence[] = [];
      for (const entries of users.values()) {
        const merged = mergeEntries(entries.values());
        if (merged) result.push(merged);
      }
      return result.sort((a, b) => a.userId.localeCompare(b.userId));
    },
    async get(workspaceId, userId) {
      const entries = userEntries(workspaceId, userId, false);
      return entries ? mergeEntries(entries.values()) : null;
    },
    async sweep(now) {
      const changes: PresenceChange[] = [];
      for (const [workspaceId, users] of workspaces) {
        for (const [userId, entries] of users) {
          const stale = [...entries.values()].filter((e) => e.expiresAt !== null && e.expiresAt <= now);
          if (stale.length === 0) continue;
          const before = mergeEntries(entries.values());
          for (const e of stale) entries.delete(e.connectionId);
          changes.push({ workspaceId, userId, before, after: mergeEntries(entries.values()) });
          prune(workspaceId, userId);
        }
      }
      return changes;
    },
    async countOnline(workspaceId) {
      if (workspaceId) return workspaces.get(workspaceId)?.size ?? 0;
      let total = 0;
      for (const users of workspaces.values()) total += users.size;
      return total;
    },
    async close() {
      workspaces.clear();
    },
  };
  return backend;
}
