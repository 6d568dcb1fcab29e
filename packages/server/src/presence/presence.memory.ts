import {
  mergeEntries,
  type PresenceBackend,
  type PresenceChange,
  type PresenceEntry,
} from './presence.backend.js';
import type { UserPresence } from './presence.schema.js';

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
