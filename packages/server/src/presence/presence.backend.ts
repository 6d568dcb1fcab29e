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
 * Where presence entries live: node memory by default (`presence.memory.ts`), Redis when many nodes
 * share it (`presence.redis.ts`).
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
