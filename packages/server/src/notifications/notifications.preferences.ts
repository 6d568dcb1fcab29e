import type { Kysely, Transaction } from 'kysely';
import { z } from 'zod';
import {
  type NotificationFeedEvent,
  type NotificationType,
  notificationTypes,
  type StoredNotification,
  type UserPreferences,
  userPreferencesSchema,
  type WorkspacePreferences,
  workspacePreferencesSchema,
} from './notifications.schema.js';
import { HotQuery } from '../infra/store/hot-query.js';
import type { NotificationTables } from './notifications.tables.js';

type Db = Kysely<NotificationTables> | Transaction<NotificationTables>;

/** The `user_id` of the row holding a workspace's defaults. */
export const WORKSPACE_DEFAULTS = '';

/** One scope's stored preferences and its revision (0 = never set). */
export interface Layer<T> {
  settings: T;
  revision: number;
}

// NOTE: one shared, frozen pair for every scope never set (most users): each notification
// subscriber's mute filter holds its layers for the stream's whole life, and fresh empties cost
// ~7 objects per subscriber. Layers are replaced, never mutated.
const EMPTY_USER: Layer<UserPreferences> = Object.freeze({
  settings: Object.freeze({
    kinds: Object.freeze({}),
    mutedConversations: Object.freeze([]) as unknown as string[],
  }),
  revision: 0,
});
const EMPTY_WORKSPACE: Layer<WorkspacePreferences> = Object.freeze({
  settings: Object.freeze({ kinds: Object.freeze({}), crisisMutable: false }),
  revision: 0,
});
export const emptyUser = (): Layer<UserPreferences> => EMPTY_USER;
export const emptyWorkspace = (): Layer<WorkspacePreferences> => EMPTY_WORKSPACE;

/** Whether the workspace defaults alone mute this notification (stored as `muted_default`). */
export function mutedByDefault(workspace: WorkspacePreferences, type: NotificationType): boolean {
  return workspace.kinds[type] === false;
}

/** Whether this notification is muted for a user with these preferences. */
export function mutedFor(
  user: UserPreferences,
  workspace: WorkspacePreferences,
  notification: Pick<StoredNotification, 'type' | 'data'>,
): boolean {
  const { type } = notification;
  // NOTE: while the workspace does not let members mute crisis alerts, only its default counts.
  const own = type === 'crisis' && !workspace.crisisMutable ? undefined : user.kinds[type];
  if ((own ?? workspace.kinds[type] ?? true) === false) return true;
  if (type === 'message') {
    const conversationId = (notification.data as { conversationId?: string } | undefined)?.conversationId;
    return conversationId !== undefined && user.mutedConversations.includes(conversationId);
  }
  return false;
}

/** What reaches a user now, per kind. */
export function effectiveKinds(
  user: UserPreferences,
  workspace: WorkspacePreferences,
  /** The router's kinds (an app's `notificationKinds`); default: the eight seed kinds. */
  types: readonly string[] = notificationTypes,
): Record<NotificationType, boolean> {
  const out: Record<string, boolean> = {};
  const own = user.kinds as Record<string, boolean | undefined>;
  const defaults = workspace.kinds as Record<string, boolean | undefined>;
  for (const type of types) {
    const mine = type === 'crisis' && !workspace.crisisMutable ? undefined : own[type];
    out[type] = mine ?? defaults[type] ?? true;
  }
  return out as Record<NotificationType, boolean>;
}

/** Every stored preference row of a workspace: the defaults and each user's own. */
export async function loadWorkspacePreferences(
  db: Db,
  workspaceId: string,
): Promise<{ workspace: Layer<WorkspacePreferences>; users: Map<string, Layer<UserPreferences>> }> {
  const rows = await db
    .selectFrom('pulse_notification_preferences')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .execute();
  let workspace = emptyWorkspace();
  const users = new Map<string, Layer<UserPreferences>>();
  for (const row of rows) {
    if (row.user_id === WORKSPACE_DEFAULTS) {
      workspace = { settings: parseWorkspace(row.settings), revision: Number(row.revision) };
    } else {
      users.set(row.user_id, { settings: parseUser(row.settings), revision: Number(row.revision) });
    }
  }
  return { workspace, users };
}

/** Read by every send to one user (a hot statement: built and compiled once). */
const userPreferencesQuery = new HotQuery((db, workspaceId: string, userId: string) =>
  (db as Kysely<NotificationTables>)
    .selectFrom('pulse_notification_preferences')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('user_id', 'in', [WORKSPACE_DEFAULTS, userId]),
);

/** One user's layer and the workspace's. */
export async function loadUserPreferences(
  db: Db,
  workspaceId: string,
  userId: string,
): Promise<{ workspace: Layer<WorkspacePreferences>; user: Layer<UserPreferences> }> {
  const { rows } = await userPreferencesQuery.execute(db, workspaceId, userId);
  let workspace = emptyWorkspace();
  let user = emptyUser();
  for (const row of rows) {
    if (row.user_id === WORKSPACE_DEFAULTS) {
      workspace = { settings: parseWorkspace(row.settings), revision: Number(row.revision) };
    } else {
      user = { settings: parseUser(row.settings), revision: Number(row.revision) };
    }
  }
  return { workspace, user };
}

/**
 * The layers of several users of one workspace (and the workspace's) in one read per 500 users:
 * the mute filters of the subscribers of a workspace resuming together (`NotificationService`).
 * Every asked user gets an entry (an empty layer when they never set anything).
 */
export async function loadUsersPreferences(
  db: Db,
  workspaceId: string,
  userIds: readonly string[],
): Promise<{ workspace: Layer<WorkspacePreferences>; users: Map<string, Layer<UserPreferences>> }> {
  const distinct = [...new Set(userIds)];
  let workspace = emptyWorkspace();
  const users = new Map<string, Layer<UserPreferences>>(distinct.map((id) => [id, emptyUser()]));
  // NOTE: chunks keep each statement under SQLite's and PostgreSQL's bound-parameter limits.
  for (let start = 0; start === 0 || start < distinct.length; start += 500) {
    const rows = await db
      .selectFrom('pulse_notification_preferences')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('user_id', 'in', [WORKSPACE_DEFAULTS, ...distinct.slice(start, start + 500)])
      .execute();
    for (const row of rows) {
      if (row.user_id === WORKSPACE_DEFAULTS) {
        workspace = { settings: parseWorkspace(row.settings), revision: Number(row.revision) };
      } else if (users.has(row.user_id)) {
        users.set(row.user_id, { settings: parseUser(row.settings), revision: Number(row.revision) });
      }
    }
  }
  return { workspace, users };
}

// NOTE: stored settings may name an app's own kinds (`notificationKinds`): the stored `kinds` are
// read as any kind name → boolean; the kinds a change may name are checked by the router's input.
const storedKinds = { kinds: z.record(z.string(), z.boolean()).default({}) };
const storedUser = userPreferencesSchema.extend(storedKinds);
const storedWorkspace = workspacePreferencesSchema.extend(storedKinds);

export function parseUser(json: string): UserPreferences {
  return storedUser.parse(JSON.parse(json)) as UserPreferences;
}

export function parseWorkspace(json: string): WorkspacePreferences {
  return storedWorkspace.parse(JSON.parse(json)) as WorkspacePreferences;
}

/** Where mute filters read a user's and the workspace's current layers (`loadUserPreferences`, or a shared read). */
export interface PreferenceSource {
  layers(
    workspaceId: string,
    userId: string,
  ): Promise<{ workspace: Layer<WorkspacePreferences>; user: Layer<UserPreferences> }>;
}

/**
 * A subscriber's mute rule for the live tail, kept at the stream's position: loaded from the store
 * after each replay, then moved on by the `preferences` events the stream carries (only newer
 * revisions, so a duplicate or an older event never turns a mute back). `notification` events of a
 * kind muted for the user are dropped; everything else passes. Sends read the preferences under the
 * same stream id lock as preference changes take, so a live notification is judged by exactly the
 * preferences it was sent under. Replays use the decision stored at send time instead.
 */
export class MuteFilter {
  private user = emptyUser();
  private workspace = emptyWorkspace();

  constructor(
    /** Shared by every filter of a service (no closure per subscriber). */
    private readonly source: PreferenceSource,
    private readonly workspaceId: string,
    private readonly userId: string,
  ) {}

  /** Reads the current preferences (after a replay). */
  async load(): Promise<void> {
    const loaded = await this.source.layers(this.workspaceId, this.userId);
    if (loaded.user.revision >= this.user.revision) this.user = loaded.user;
    if (loaded.workspace.revision >= this.workspace.revision) this.workspace = loaded.workspace;
  }

  /** Applies a `preferences` event; false for a `notification` muted for this user. */
  accept(event: NotificationFeedEvent): boolean {
    if (event.type === 'preferences') {
      if (
        event.scope === 'user' &&
        event.userId === this.userId &&
        event.user &&
        event.revision > this.user.revision
      ) {
        this.user = { settings: event.user, revision: event.revision };
      }
      if (event.scope === 'workspace' && event.workspace && event.revision > this.workspace.revision) {
        this.workspace = { settings: event.workspace, revision: event.revision };
      }
      return true;
    }
    // NOTE: defensive: the filter runs inside the transport, so a malformed event must not throw.
    if (event.type === 'notification' && event.notification) {
      return !mutedFor(this.user.settings, this.workspace.settings, event.notification);
    }
    return true;
  }
}
